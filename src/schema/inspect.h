// Reduction inspections (SPEC 1.5), as Flow had them: `sum` only on numbers, `merge` only on
// objects and arrays, `set` only on objects with add/intersect/remove parts (described by
// `properties` or by additionalProperties/patternProperties). A `reduce` whose parent
// location has no annotation at all is an error; one under a parent whose strategy never
// reduces children (lastWriteWins, an unkeyed maximize, ...) is a warning. Checked per
// schema branch, so a tagged `oneOf` union may reduce differently in each branch.
#pragma once

#include <memory>
#include <string>

#include "base/diagnostics.h"
#include "schema/index.h"
#include "schema/shape.h"

namespace flow::schema {

// Reports misused `reduce` annotations of the schema rooted at `root`, whose inferred
// shape is `root_shape`. `scope` names the owner (e.g. "collection `a/b`").
void InspectReductions(const Index& index, const SchemaLoc& root,
                       const std::shared_ptr<Shape>& root_shape, const std::string& scope,
                       Diagnostics* diags);

}  // namespace flow::schema
