// Build-time checks (SPEC 1.5) and the derived facts a built catalog stores: resolved and
// bundled schemas, inferred shapes, projections (default and user), resolved shuffles and
// field selections. Every problem is reported into Diagnostics; checking goes on after
// errors so that one build reports all of them.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/diagnostics.h"
#include "catalog/loader.h"
#include "catalog/spec.h"
#include "schema/shape.h"

namespace flow::catalog {

struct BuiltProjection {
  std::string field;
  std::string location;
  bool user = false;
  bool partition = false;
  bool key = false;
  std::shared_ptr<schema::Shape> shape;  // null when the location is outside the schema
  bool must_exist = false;
};

struct BuiltCollection {
  const CollectionSpec* spec = nullptr;
  std::string schema_url;   // canonical URL of the root schema: file#pointer, or an
                            // inline schema's file?ptr=pointer (schema::InlineSchemaUrl)
  std::string bundle;       // self-contained schema JSON (schema/bundle.h)
  std::shared_ptr<schema::Shape> shape;
  std::vector<schema::Location> locations;
  std::vector<BuiltProjection> projections;  // sorted by field name
  std::vector<std::string> key_fields;       // one field per key pointer, in key order

  const BuiltProjection* Field(const std::string& name) const;
};

struct BuiltTransform {
  const TransformSpec* spec = nullptr;
  std::vector<std::string> shuffle;  // explicit, or the source collection's key
  std::string source_schema_url;     // empty unless `source.schema` was given
  std::string source_schema_bundle;
  std::shared_ptr<schema::Shape> source_shape;  // of `source.schema`; null without
  std::string dead_letters;  // the checked `deadLetters` collection; empty: none
};

struct BuiltDerivation {
  const CollectionSpec* collection = nullptr;
  std::string register_schema_url;
  std::string register_bundle;
  std::string register_initial;  // JSON text
  std::shared_ptr<schema::Shape> register_shape;
  std::vector<BuiltTransform> transforms;
};

struct BuiltBinding {
  const MaterializationBindingSpec* spec = nullptr;
  std::vector<std::string> fields;  // selected fields, `flow_document` last
  std::string dead_letters;         // the checked `deadLetters` collection; empty: none
};

struct Built {
  std::vector<BuiltCollection> collections;   // catalog order
  std::vector<BuiltDerivation> derivations;
  std::map<std::string, std::vector<BuiltBinding>> bindings;  // by materialization name

  const BuiltCollection* Collection(const std::string& name) const;
  std::map<std::string, size_t> by_name;
};

// Reports a problem at `where` with a message and a hint (may be empty).
using FieldError = std::function<void(const Where& where, const std::string& message, const std::string& hint)>;

// The fields a materialization binding of `c` selects (SPEC 1.7): the key, then the
// included fields (default: every projection of a single scalar type, one per location),
// minus the excluded, then `flow_document`. Unknown, multi-typed and unprojected object or
// array fields are reported through `error` (and left out).
std::vector<std::string> SelectFields(const BuiltCollection& c, const MaterializationBindingSpec& b,
                                      const FieldError& error);

// The source position of byte `offset` of the value of the scalar at `w` (a lambda's body,
// say): exact for a single-line scalar and a block scalar (`|`/`>`); other multi-line forms
// fall back to the scalar's start.
Mark LocateInScalar(const Catalog& cat, const Where& w, const std::string& value, size_t offset);

// Runs every check over a loaded catalog and fills `out`.
void CheckCatalog(const Loaded& loaded, Built* out, Diagnostics* diags);

}  // namespace flow::catalog
