// Bundling: a self-contained copy of a schema, with every `$ref` rewritten to a local
// `#/$defs/sN` entry, `$id`s dropped and `$ref`-with-siblings turned into `allOf`. The
// built catalog stores bundles so later commands validate without the original files.
#pragma once

#include <rapidjson/document.h>

#include "schema/index.h"

namespace flow::schema {

// Returns {"$ref": "#/$defs/s0", "$defs": {"s0": <root>, "s1": ..., ...}}.
// Unresolvable `$ref`s (already reported by Index::CheckRefs) become `true`.
rapidjson::Document BundleSchema(const Index& index, const SchemaLoc& root);

// Describes a `$ref` cycle of `bundle` that consumes no input (Index::CheckRefCycles), as
// the source locations (`x-flow-source`) or bundle pointers of its schemas, or returns ""
// when there is none. Builds refuse such cycles; a bundle written by an older version may
// still hold one, and validating against it would recurse without end.
std::string FindInPlaceRefCycle(const rapidjson::Value& bundle);

}  // namespace flow::schema
