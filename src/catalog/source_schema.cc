#include "catalog/source_schema.h"

namespace flow::catalog {

std::string_view CatalogSourceSchema() {
  return R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "$id": "https://flowctl.dev/schemas/catalog-source.json",
  "title": "flowctl catalog source",
  "description": "A YAML or JSON file of a flowctl catalog (SPEC section 1).",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "$schema": {"type": "string"},
    "import": {
      "description": "Other sources to include: paths relative to this file, file:// or http(s):// URLs.",
      "type": "array", "items": {"type": "string", "minLength": 1}
    },
    "collections": {"type": "array", "items": {"$ref": "#/definitions/collection"}},
    "materializationTargets": {
      "type": "object", "additionalProperties": {"$ref": "#/definitions/target"}
    },
    "materializations": {
      "type": "object", "additionalProperties": {"$ref": "#/definitions/materialization"}
    },
    "captures": {"type": "object", "additionalProperties": {"$ref": "#/definitions/capture"}},
    "tests": {
      "type": "object",
      "additionalProperties": {"type": "array", "items": {"$ref": "#/definitions/testStep"}}
    },
    "nodeDependencies": {
      "description": "npm package name to version range, importable from nodeJS lambdas.",
      "type": "object", "additionalProperties": {"type": "string"}
    }
  },
  "definitions": {
    "collectionName": {
      "type": "string",
      "pattern": "^[A-Za-z0-9_.\\-]+(/[A-Za-z0-9_.\\-]+)*$"
    },
    "pointer": {"type": "string", "pattern": "^(/([^~]|~[01])*)*$"},
    "schema": {
      "description": "A schema URL (relative or absolute, optionally with #/pointer or #anchor) or an inline schema, within which #/pointer and #anchor references resolve.",
      "type": ["string", "object", "boolean"]
    },
    "collection": {
      "type": "object",
      "additionalProperties": false,
      "required": ["name", "schema", "key"],
      "properties": {
        "name": {"$ref": "#/definitions/collectionName"},
        "schema": {"$ref": "#/definitions/schema"},
        "key": {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/pointer"}},
        "projections": {
          "type": "object",
          "additionalProperties": {
            "oneOf": [
              {"$ref": "#/definitions/pointer"},
              {
                "type": "object", "additionalProperties": false, "required": ["location"],
                "properties": {
                  "location": {"$ref": "#/definitions/pointer"},
                  "partition": {"type": "boolean"}
                }
              }
            ]
          }
        },
        "derivation": {"$ref": "#/definitions/derivation"},
        "journals": {
          "description": "How the collection's journals become lake fragments.",
          "type": "object",
          "additionalProperties": false,
          "properties": {
            "fragments": {
              "type": "object",
              "additionalProperties": false,
              "properties": {
                "compressionCodec": {"description": "gzip (default), zstd or none.", "type": "string"},
                "length": {"description": "Uncompressed bytes per fragment (default 64MiB).", "type": ["string", "integer"]},
                "flushInterval": {"description": "Persist a spool older than this (e.g. 5m).", "type": "string"}
              }
            }
          }
        }
      }
    },
    "derivation": {
      "type": "object",
      "additionalProperties": false,
      "required": ["transform"],
      "properties": {
        "register": {
          "type": "object", "additionalProperties": false,
          "properties": {"schema": {"$ref": "#/definitions/schema"}, "initial": true}
        },
        "bootstrap": {
          "description": "Lambdas run once, in order, each time the derivation's task starts, before any transform.",
          "type": "array", "items": {"$ref": "#/definitions/lambda"}
        },
        "lambdaTimeout": {
          "description": "How long a lambda of this derivation may take per invocation (its bootstraps, and transforms without their own); default 30s.",
          "$ref": "#/definitions/lambdaTimeout"
        },
        "transform": {
          "type": "object", "minProperties": 1,
          "additionalProperties": {"$ref": "#/definitions/transform"}
        }
      }
    },
    "transform": {
      "type": "object",
      "additionalProperties": false,
      "required": ["source"],
      "properties": {
        "source": {
          "oneOf": [
            {"$ref": "#/definitions/collectionName"},
            {
              "type": "object", "additionalProperties": false, "required": ["name"],
              "properties": {
                "name": {"$ref": "#/definitions/collectionName"},
                "schema": {"$ref": "#/definitions/schema"},
                "partitions": {"$ref": "#/definitions/partitionSelector"}
              }
            }
          ]
        },
        "shuffle": {
          "oneOf": [
            {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/pointer"}},
            {
              "type": "object", "additionalProperties": false, "required": ["key"],
              "properties": {"key": {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/pointer"}}}
            }
          ]
        },
        "readDelay": {"type": "string", "pattern": "^([0-9]+[smhd])+$"},
        "lambdaTimeout": {
          "description": "How long the transform's update or publish lambda may take per invocation; default: the derivation's, else 30s.",
          "$ref": "#/definitions/lambdaTimeout"
        },
        "update": {"$ref": "#/definitions/lambda"},
        "publish": {"$ref": "#/definitions/lambda"},
        "deadLetters": {
          "description": "A captured collection that receives the source documents this transform cannot process, with their errors, instead of halting the derivation.",
          "$ref": "#/definitions/deadLetters"
        }
      }
    },
    "deadLetters": {"$ref": "#/definitions/collectionName"},
    "lambdaTimeout": {"type": "string", "pattern": "^([0-9]+[smhd])+$"},
    "lambda": {
      "oneOf": [
        {"type": "object", "additionalProperties": false, "required": ["nodeJS"], "properties": {"nodeJS": {"type": "string"}}},
        {"type": "object", "additionalProperties": false, "required": ["sqlite"], "properties": {"sqlite": {"type": "string"}}},
        {"type": "object", "additionalProperties": false, "required": ["remote"], "properties": {"remote": {"type": "string", "pattern": "^https?://"}}},
        {"type": "object", "additionalProperties": false, "required": ["lambda"], "properties": {"lambda": {"$ref": "#/definitions/lambda"}}}
      ]
    },
    "partitionSelector": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "include": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": ["string", "integer", "boolean"]}}},
        "exclude": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": ["string", "integer", "boolean"]}}}
      }
    },
    "target": {
      "oneOf": [
        {
          "type": "object", "additionalProperties": false, "required": ["sqlite"],
          "properties": {
            "sqlite": {
              "type": "object", "additionalProperties": false,
              "properties": {"path": {"type": "string"}, "uri": {"type": "string"}}
            }
          }
        },
        {
          "type": "object", "additionalProperties": false, "required": ["postgres"],
          "properties": {
            "postgres": {
              "type": "object", "additionalProperties": false, "required": ["uri"],
              "properties": {"uri": {"type": "string", "pattern": "^postgres(ql)?://"}}
            }
          }
        }
      ]
    },
    "materialization": {
      "oneOf": [
        {"$ref": "#/definitions/boundMaterialization"},
        {"$ref": "#/definitions/inlineMaterialization"}
      ]
    },
    "inlineMaterialization": {
      "description": "The earliest preview form: one collection into one table of a database declared inline.",
      "oneOf": [
        {
          "type": "object", "additionalProperties": false, "required": ["collection", "sqlite"],
          "properties": {
            "collection": {"$ref": "#/definitions/collectionName"},
            "sqlite": {
              "description": "`path` (or `uri`, the preview's spelling) is relative to the declaring file.",
              "type": "object", "additionalProperties": false, "required": ["table"],
              "properties": {
                "path": {"type": "string"}, "uri": {"type": "string"},
                "table": {"type": "string", "minLength": 1}
              },
              "anyOf": [{"required": ["path"]}, {"required": ["uri"]}]
            },
            "deadLetters": {"$ref": "#/definitions/deadLetters"}
          }
        },
        {
          "type": "object", "additionalProperties": false, "required": ["collection", "postgres"],
          "properties": {
            "collection": {"$ref": "#/definitions/collectionName"},
            "postgres": {
              "type": "object", "additionalProperties": false, "required": ["uri", "table"],
              "properties": {
                "uri": {"type": "string", "pattern": "^postgres(ql)?://"},
                "table": {"type": "string", "minLength": 1}
              }
            },
            "deadLetters": {"$ref": "#/definitions/deadLetters"}
          }
        }
      ]
    },
    "boundMaterialization": {
      "description": "A target declared under materializationTargets and bindings of collections to its tables.",
      "type": "object",
      "additionalProperties": false,
      "required": ["target", "bindings"],
      "properties": {
        "target": {"type": "string"},
        "bindings": {
          "type": "array",
          "items": {
            "type": "object", "additionalProperties": false, "required": ["source", "table"],
            "properties": {
              "source": {"$ref": "#/definitions/collectionName"},
              "table": {"type": "string", "minLength": 1},
              "fields": {
                "type": "object", "additionalProperties": false,
                "properties": {
                  "include": {"type": "array", "items": {"type": "string"}},
                  "exclude": {"type": "array", "items": {"type": "string"}}
                }
              },
              "deltaUpdates": {"type": "boolean"},
              "deadLetters": {
                "description": "A captured collection that receives the documents of keys this binding cannot store, with their errors, instead of halting the materialization.",
                "$ref": "#/definitions/deadLetters"
              }
            }
          }
        }
      }
    },
    "capture": {
      "type": "object",
      "additionalProperties": false,
      "required": ["endpoint", "bindings"],
      "properties": {
        "endpoint": {
          "type": "object", "additionalProperties": false, "required": ["fileDrop"],
          "properties": {
            "fileDrop": {
              "type": "object", "additionalProperties": false, "required": ["path"],
              "properties": {
                "path": {"type": "string"},
                "format": {"enum": ["json", "csv", "tsv"]}
              }
            }
          }
        },
        "bindings": {
          "type": "array", "minItems": 1,
          "items": {
            "type": "object", "additionalProperties": false, "required": ["target"],
            "properties": {"target": {"$ref": "#/definitions/collectionName"}}
          }
        }
      }
    },
    "testStep": {
      "oneOf": [
        {
          "type": "object", "additionalProperties": false, "required": ["ingest"],
          "properties": {
            "ingest": {
              "type": "object", "additionalProperties": false, "required": ["collection", "documents"],
              "properties": {
                "collection": {"$ref": "#/definitions/collectionName"},
                "documents": {"type": "array"}
              }
            }
          }
        },
        {
          "type": "object", "additionalProperties": false, "required": ["verify"],
          "properties": {
            "verify": {
              "type": "object", "additionalProperties": false, "required": ["collection", "documents"],
              "properties": {
                "collection": {"$ref": "#/definitions/collectionName"},
                "documents": {"type": "array", "items": {"type": "object"}},
                "partitions": {"$ref": "#/definitions/partitionSelector"}
              }
            }
          }
        }
      ]
    }
  }
}
)json";
}

}  // namespace flow::catalog
