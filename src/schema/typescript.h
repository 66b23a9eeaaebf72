// TypeScript types of shapes, for the declarations of nodeJS lambdas (`flowctl build`
// type-checks lambdas against them; `flowctl generate-types` writes them for editors).
//
// The mapping (docs/derivations.md, "Types of TypeScript lambdas"):
// - string -> string; integer and number -> number; boolean; null; `enum`/`const` of
//   scalars -> a union of literals; a type list -> a union;
// - array -> T[] of its `items` (unknown[] without), tuple `items` -> a tuple whose
//   elements beyond `minItems` are optional, with `...T[]` for `additionalItems`;
// - object -> an object type of its `properties` (`?` unless `required`), closed unless
//   `additionalProperties` (other than false) or `patternProperties` is given, which adds
//   an index signature; an object that declares no properties is an open record (see
//   TypeScriptOf's `output` for the documents a lambda returns);
// - a schema without `type` that declares `properties` (or `items`) is taken as an object
//   (an array); `$ref`, `allOf`, `anyOf`/`oneOf` are resolved by shape inference
//   (shape.h), and a recursive `$ref` is `unknown`; anything else (no constraint) is
//   `unknown`.
#pragma once

#include <string>

#include "schema/shape.h"

namespace flow::schema {

// The TypeScript type of the values of shape `s`, as a type expression. Object types span
// several lines, their members indented by `indent` + 2 spaces; property titles and
// descriptions become doc comments.
//
// With `output`, the type of the documents a lambda may return, which schema validation
// checks in full anyway: only the types of the properties given are checked. Objects are
// open unless `additionalProperties` is false (JSON Schema allows undeclared properties),
// every property is optional (a register spread into an output may be known to hold a
// property its schema leaves optional), and `enum`s are their values' types rather than
// literal unions (a string read from a register typed `string` may be published where an
// enum is expected).
std::string TypeScriptOf(const Shape& s, int indent = 0, bool output = false);

// `name` as a TypeScript property name: itself when it is an identifier, else a quoted
// string.
std::string TypeScriptProperty(const std::string& name);

}  // namespace flow::schema
