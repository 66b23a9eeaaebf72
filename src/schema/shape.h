// Shapes: what a schema says about each document location — its possible types, whether
// it must exist, string details, title/description and its `reduce` annotation — inferred
// through `$ref`s and applicators (allOf intersects; anyOf/oneOf/if-then-else unite).
// Recursive schemas are cut where a `$ref` re-enters itself: beyond the cut, anything goes.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/diagnostics.h"
#include "doc/pointer.h"
#include "schema/index.h"

namespace flow::schema {

// Type bits. kNumber means "non-integer numbers"; JSON Schema `number` is kInteger|kNumber.
enum Types : uint8_t {
  kNull = 1,
  kBoolean = 2,
  kInteger = 4,
  kNumber = 8,
  kString = 16,
  kObject = 32,
  kArray = 64,
  kAnyType = 127,
};

// "integer", "number", "string | null", ... in a stable order.
std::string TypesToString(uint8_t types);
// The JSON-schema type names of a type set, e.g. ["integer", "null"].
std::vector<std::string> TypeNames(uint8_t types);
// The inverse: type bits of JSON-schema type names (unknown names are ignored).
uint8_t TypesFromNames(const std::vector<std::string>& names);

struct Reduce {
  std::string strategy;           // "merge", "sum", ...
  std::vector<std::string> key;   // for minimize/maximize/merge/set
  std::string declared_at;        // resource URL + '#' + pointer, for messages
  Mark mark;                      // of the `reduce` keyword
  std::string file;               // display name of its file
  bool operator==(const Reduce& o) const { return strategy == o.strategy && key == o.key; }
};

struct Shape {
  uint8_t types = kAnyType;
  std::optional<std::string> title, description;
  std::optional<std::string> format, content_encoding;
  std::optional<uint64_t> max_length;
  std::optional<Reduce> reduce;
  bool reduce_conflict = false;  // branches disagree about the reduction

  struct Property {
    std::string name;
    bool required = false;
    std::shared_ptr<Shape> shape;
  };
  std::vector<Property> properties;            // sorted by name
  std::vector<std::pair<std::string, std::shared_ptr<Shape>>> patterns;
  std::shared_ptr<Shape> additional;           // additionalProperties; null: anything
  std::vector<std::shared_ptr<Shape>> tuple;   // tuple `items`
  std::shared_ptr<Shape> items;                // `items` schema / `additionalItems`
  uint64_t min_items = 0;
  bool enumerated = false;                     // `enum`/`const` restricts values
  // When `enumerated`: the values allowed, as JSON texts (those every `allOf` branch allows,
  // those of any `anyOf`/`oneOf` branch), for TypeScript's literal unions.
  std::vector<std::string> enum_values;
  bool cut = false;                            // a recursive `$ref` stopped inference here

  const Property* FindProperty(const std::string& name) const;
};

// Infers the shape of the schema at `loc`. Malformed keywords (a `type` that is not a
// type name, `required` that is not a list of strings, a malformed `reduce`) are reported
// into `diags` when it is non-null.
std::shared_ptr<Shape> InferShape(const Index& index, const SchemaLoc& loc, Diagnostics* diags);

// The shape at a location, and whether the location must exist in every valid document.
struct LocatedShape {
  std::shared_ptr<Shape> shape;  // null: the schema forbids this location
  bool must_exist = true;
  // True when every step is declared (`properties`, `required`, tuple `items`, an `items`
  // or `additionalProperties`/`patternProperties` schema) rather than merely not forbidden.
  bool declared = true;
};
LocatedShape ShapeAt(const std::shared_ptr<Shape>& root, const doc::Pointer& ptr);

// One entry per location reachable through `properties` and tuple `items`, in document
// order (parents before children), starting with the root "".
struct Location {
  doc::Pointer pointer;
  std::shared_ptr<Shape> shape;
  bool must_exist = true;
};
std::vector<Location> EnumerateLocations(const std::shared_ptr<Shape>& root);

// True if the types are exactly one scalar type (string, integer, number or boolean),
// ignoring null. Sets `*name` to that type's name.
bool SingleScalarType(uint8_t types, std::string* name);

}  // namespace flow::schema
