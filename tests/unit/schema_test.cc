#include <doctest/doctest.h>

#include <chrono>

#include "catalog/yaml_reader.h"
#include "schema/annotations.h"
#include "schema/bundle.h"
#include "schema/index.h"
#include "schema/inspect.h"
#include "schema/shape.h"
#include "schema/typescript.h"
#include "schema/validator.h"

using namespace flow;
using namespace flow::schema;

namespace {

// Holds parsed schema files and an index over them.
struct Fixture {
  std::vector<std::unique_ptr<doc::Node>> nodes;
  Index index;
  Diagnostics diags;

  // A catalog source: registered as a resource, not indexed as a schema.
  void AddSource(const std::string& url, const std::string& yaml) {
    auto n = catalog::ReadYaml(yaml, url, &diags);
    REQUIRE(n);
    nodes.push_back(std::make_unique<doc::Node>(std::move(*n)));
    index.AddResource(url, nodes.back().get());
  }
  // The schema written inline at `pointer` of the source `url`, indexed as the loader does.
  SchemaLoc Inline(const std::string& url, const std::string& pointer) {
    std::string why;
    SchemaLoc whole = index.ResolveUrl(url + "#" + pointer, &why);
    REQUIRE(whole.node);
    SchemaLoc loc = InlineSchemaLoc(whole.node, url, pointer);
    std::vector<MissingResource> missing;
    index.IndexInlineSchema(loc, &missing);
    return loc;
  }
  SchemaLoc Add(const std::string& url, const std::string& yaml) {
    auto n = catalog::ReadYaml(yaml, url, &diags);
    REQUIRE(n);
    nodes.push_back(std::make_unique<doc::Node>(std::move(*n)));
    index.AddResource(url, nodes.back().get());
    std::vector<MissingResource> missing;
    SchemaLoc loc{nodes.back().get(), url, "", url};
    index.IndexSchema(loc, &missing);
    return loc;
  }
  std::shared_ptr<Validator> Compile(const SchemaLoc& loc) {
    auto bundle = BundleSchema(index, loc);
    auto v = Validator::Compile(bundle);
    REQUIRE(v);
    return v.value();
  }
  bool Valid(const std::shared_ptr<Validator>& v, const char* json) {
    rapidjson::Document d;
    d.Parse(json);
    REQUIRE_FALSE(d.HasParseError());
    return v->Validate(d, d.GetAllocator()).empty();
  }
};

}  // namespace

TEST_CASE("shapes: types, required, and must-exist along the path") {
  Fixture f;
  auto loc = f.Add("file:///s.yaml", R"(
type: object
required: [a]
properties:
  a: {type: object, required: [b], properties: {b: {type: integer}, c: {type: [string, "null"]}}}
  d: {type: number}
)");
  auto shape = InferShape(f.index, loc, &f.diags);
  CHECK(f.diags.empty());
  auto b = ShapeAt(shape, *doc::Pointer::Parse("/a/b", nullptr));
  std::string why;
  CHECK(b.shape->types == kInteger);
  CHECK(b.must_exist);
  auto c = ShapeAt(shape, *doc::Pointer::Parse("/a/c", &why));
  CHECK(c.shape->types == (kString | kNull));
  CHECK_FALSE(c.must_exist);
  auto d = ShapeAt(shape, *doc::Pointer::Parse("/d", &why));
  CHECK(d.shape->types == (kInteger | kNumber));
  CHECK_FALSE(d.must_exist);
  auto locations = EnumerateLocations(shape);
  REQUIRE(locations.size() == 5);  // "", /a, /a/b, /a/c, /d
  CHECK(locations[1].pointer.ToString() == "/a");
  CHECK(locations[2].pointer.ToString() == "/a/b");
}

TEST_CASE("shapes through $ref, allOf, oneOf and enum") {
  Fixture f;
  f.Add("file:///defs.yaml", R"(
$defs:
  id: {type: integer, title: An id}
  named:
    $anchor: Named
    type: object
    properties: {name: {type: string, maxLength: 20}}
    required: [name]
)");
  auto loc = f.Add("file:///s.yaml", R"(
type: object
allOf:
  - $ref: defs.yaml#Named
  - properties: {id: {$ref: "defs.yaml#/$defs/id"}}
    required: [id]
properties:
  kind: {enum: [a, b]}
  value:
    oneOf:
      - {type: integer}
      - {type: string}
)");
  auto shape = InferShape(f.index, loc, &f.diags);
  CHECK(f.diags.empty());
  std::string why;
  auto id = ShapeAt(shape, *doc::Pointer::Parse("/id", &why));
  CHECK(id.shape->types == kInteger);
  CHECK(id.must_exist);
  CHECK(id.shape->title == "An id");
  auto name = ShapeAt(shape, *doc::Pointer::Parse("/name", &why));
  CHECK(name.shape->types == kString);
  CHECK(name.must_exist);
  CHECK(name.shape->max_length == 20u);
  CHECK(ShapeAt(shape, *doc::Pointer::Parse("/kind", &why)).shape->types == kString);
  CHECK(ShapeAt(shape, *doc::Pointer::Parse("/value", &why)).shape->types == (kInteger | kString));
}

TEST_CASE("recursive schemas infer, bundle and validate") {
  Fixture f;
  auto loc = f.Add("file:///tree.yaml", R"(
$defs:
  node:
    type: object
    properties:
      value: {type: integer}
      children: {type: array, items: {$ref: "#/$defs/node"}}
    required: [value]
$ref: "#/$defs/node"
)");
  auto shape = InferShape(f.index, loc, &f.diags);
  CHECK(f.diags.empty());
  std::string why;
  CHECK(ShapeAt(shape, *doc::Pointer::Parse("/value", &why)).shape->types == kInteger);
  auto v = f.Compile(loc);
  CHECK(f.Valid(v, R"({"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]})"));
  CHECK_FALSE(f.Valid(v, R"({"value": 1, "children": [{"value": "x"}]})"));
  CHECK_FALSE(f.Valid(v, R"({"children": []})"));
}

TEST_CASE("bundles resolve anchors, $id bases and $ref siblings across files") {
  Fixture f;
  f.Add("https://example.com/schemas/common.json", R"(
$defs:
  money: {$anchor: Money, type: number, minimum: 0}
)");
  auto loc = f.Add("file:///order.yaml", R"(
type: object
properties:
  total: {$ref: "https://example.com/schemas/common.json#Money", maximum: 100}
  nested:
    $id: https://example.com/schemas/nested.json
    properties:
      amount: {$ref: "common.json#/$defs/money"}
required: [total]
additionalProperties: false
)");
  auto v = f.Compile(loc);
  CHECK(f.Valid(v, R"({"total": 5})"));
  CHECK_FALSE(f.Valid(v, R"({"total": -1})"));
  CHECK_FALSE(f.Valid(v, R"({"total": 500})"));  // sibling `maximum` still applies
  CHECK(f.Valid(v, R"({"total": 5, "nested": {"amount": 3}})"));
  CHECK_FALSE(f.Valid(v, R"({"total": 5, "nested": {"amount": -3}})"));
  CHECK_FALSE(f.Valid(v, R"({"total": 5, "other": 1})"));
  // `_meta` is never rejected, even by a closed schema, and the document is unchanged.
  CHECK(f.Valid(v, R"({"total": 5, "_meta": {"uuid": "x"}})"));
  rapidjson::Document d;
  d.Parse(R"({"a": 1, "_meta": {"uuid": "x"}, "total": 5})");
  v->Validate(d, d.GetAllocator());
  CHECK(doc::JsonText(d) == R"({"a":1,"_meta":{"uuid":"x"},"total":5})");
}

TEST_CASE("validation errors name the document location") {
  Fixture f;
  auto loc = f.Add("file:///s.yaml", "type: object\nproperties: {a: {type: object, properties: {b: {type: integer}}}}\n");
  auto v = f.Compile(loc);
  rapidjson::Document d;
  d.Parse(R"({"a": {"b": "nope"}})");
  auto errors = v->Validate(d, d.GetAllocator());
  REQUIRE_FALSE(errors.empty());
  std::string text = FormatValidationErrors(errors, d);
  CHECK(text.find("at /a/b (value \"nope\"):") == 0);
  CHECK(text.find("at /a:") == std::string::npos);  // the enclosing failure is not repeated
  // Types are strict: a quoted number is a string.
  rapidjson::Document q;
  q.Parse(R"({"a": {"b": "5"}})");
  CHECK_FALSE(v->Validate(q, q.GetAllocator()).empty());
}

TEST_CASE("an integer multipleOf refuses a number that is not a multiple, of any size") {
  Fixture f;
  auto v = f.Compile(f.Add("file:///m.yaml", "type: object\nproperties: {n: {type: number, multipleOf: 3}}\n"));
  CHECK(f.Valid(v, R"({"n": 6})"));
  CHECK(f.Valid(v, R"({"n": 6.0})"));
  CHECK(f.Valid(v, R"({"n": -9})"));
  CHECK_FALSE(f.Valid(v, R"({"n": 3.5})"));  // valijson truncated it to 3
  CHECK_FALSE(f.Valid(v, R"({"n": 7})"));
  CHECK(f.Valid(v, R"({"n": 9.3e18})"));        // 93 * 10^17
  CHECK_FALSE(f.Valid(v, R"({"n": 9.2e18})"));  // 92 * 10^17
  CHECK(f.Valid(v, R"({"n": 3e20})"));          // beyond int64: no overflow
  CHECK_FALSE(f.Valid(v, R"({"n": 1e20})"));
}

TEST_CASE("unresolvable $refs are reported with their position") {
  Fixture f;
  f.Add("file:///s.yaml", "properties:\n  a: {$ref: '#/$defs/missing'}\n  b: {$ref: '#Nope'}\n");
  f.index.CheckRefs(&f.diags);
  REQUIRE(f.diags.size() == 2);
  CHECK(f.diags.items()[0].mark.line == 2);
  CHECK(f.diags.items()[0].message.find("resolves to nothing") != std::string::npos);
  CHECK(f.diags.items()[1].message.find("no `$anchor: Nope`") != std::string::npos);
}

TEST_CASE("inline schemas are resources of their own") {
  Fixture f;
  // `#` inside each inline schema is that schema: its `$defs`, `definitions` and anchors,
  // never the file's (whose root `$defs` would make `n` a boolean) nor the other schema's.
  f.AddSource("file:///c/flow.yaml", R"(
$defs:
  amount: {type: boolean}
collections:
  - name: a
    schema:
      $defs:
        amount: {type: integer}
        unit: {$anchor: unit, enum: [kg, lb]}
      definitions:
        id: {type: string}
      properties:
        id: {$ref: "#/definitions/id"}
        n: {$ref: "#/$defs/amount"}
        unit: {$ref: "#unit"}
        price: {$ref: "schemas/money.yaml#/$defs/cents"}
  - name: b
    schema:
      $defs:
        amount: {type: string}
        unit: {$anchor: unit, type: integer}
      properties:
        n: {$ref: "#/$defs/amount"}
        unit: {$ref: "#unit"}
)");
  f.Add("file:///c/schemas/money.yaml", "$defs:\n  cents: {type: integer, minimum: 0}\n");
  SchemaLoc a = f.Inline("file:///c/flow.yaml", "/collections/0/schema");
  SchemaLoc b = f.Inline("file:///c/flow.yaml", "/collections/1/schema");
  CHECK(a.base == "file:///c/flow.yaml?ptr=/collections/0/schema");
  f.index.CheckRefs(&f.diags);
  CHECK(f.diags.empty());

  auto va = f.Compile(a);
  CHECK(f.Valid(va, R"({"id": "x", "n": 1, "unit": "kg", "price": 5})"));
  CHECK_FALSE(f.Valid(va, R"({"n": "one"})"));
  CHECK_FALSE(f.Valid(va, R"({"n": true})"));
  CHECK_FALSE(f.Valid(va, R"({"id": 1})"));
  CHECK_FALSE(f.Valid(va, R"({"unit": 1})"));
  CHECK_FALSE(f.Valid(va, R"({"price": -1})"));  // relative to the file, not the query
  auto vb = f.Compile(b);
  CHECK(f.Valid(vb, R"({"n": "one", "unit": 1})"));
  CHECK_FALSE(f.Valid(vb, R"({"n": 1})"));
  CHECK_FALSE(f.Valid(vb, R"({"unit": "kg"})"));

  std::string why;
  auto sa = InferShape(f.index, a, &f.diags);
  auto sb = InferShape(f.index, b, &f.diags);
  CHECK(f.diags.empty());
  CHECK(ShapeAt(sa, *doc::Pointer::Parse("/n", &why)).shape->types == kInteger);
  CHECK(ShapeAt(sa, *doc::Pointer::Parse("/id", &why)).shape->types == kString);
  CHECK(ShapeAt(sa, *doc::Pointer::Parse("/price", &why)).shape->types == kInteger);
  CHECK(ShapeAt(sb, *doc::Pointer::Parse("/n", &why)).shape->types == kString);
  CHECK(ShapeAt(sb, *doc::Pointer::Parse("/unit", &why)).shape->types == kInteger);

  // The inline schema is addressable by its URL, and so is any other place of the source.
  CHECK(f.index.ResolveUrl("file:///c/flow.yaml?ptr=/collections/1/schema#unit", &why).node);
  CHECK(
      f.index.ResolveUrl("file:///c/flow.yaml?ptr=/collections/1/schema#/$defs/amount", &why).node);
  CHECK(f.index.ResolveUrl("file:///c/flow.yaml?ptr=/$defs/amount", &why).node);
  CHECK_FALSE(f.index.ResolveUrl("file:///c/flow.yaml?ptr=/collections/7/schema", &why).node);
  CHECK(why == "`/c/flow.yaml` has no location `/collections/7/schema`");
  CHECK_FALSE(
      f.index.ResolveUrl("file:///c/flow.yaml?ptr=/collections/1/schema#/$defs/x", &why).node);
  CHECK(why ==
        "the inline schema at /collections/1/schema of `/c/flow.yaml` has no location `/$defs/x`");
}

TEST_CASE("inline schemas: $id re-bases, relative to the source file") {
  Fixture f;
  f.AddSource("file:///c/flow.yaml", R"(
collections:
  - schema:
      $id: labels.json
      $defs:
        amount: {type: string}
      properties:
        n: {$ref: "#/$defs/amount"}
        also: {$ref: "labels.json#/$defs/amount"}
        price:
          $id: schemas/price.json
          $ref: "money.yaml#/$defs/cents"
)");
  f.Add("file:///c/schemas/money.yaml", "$defs:\n  cents: {type: integer, minimum: 0}\n");
  SchemaLoc loc = f.Inline("file:///c/flow.yaml", "/collections/0/schema");
  f.index.CheckRefs(&f.diags);
  CHECK(f.diags.empty());
  auto v = f.Compile(loc);
  CHECK(f.Valid(v, R"({"n": "x", "also": "y", "price": 3})"));
  CHECK_FALSE(f.Valid(v, R"({"also": 1})"));
  CHECK_FALSE(f.Valid(v, R"({"price": -3})"));
  std::string why;
  auto shape = InferShape(f.index, loc, &f.diags);
  CHECK(f.diags.empty());
  CHECK(ShapeAt(shape, *doc::Pointer::Parse("/n", &why)).shape->types == kString);
  // Through the nested `$id`: schemas/money.yaml, not money.yaml beside flow.yaml.
  CHECK(ShapeAt(shape, *doc::Pointer::Parse("/price", &why)).shape->types == kInteger);
}

TEST_CASE("inline schema URLs") {
  CHECK(InlineSchemaUrl("file:///c/flow.yaml", "/collections/0/schema") ==
        "file:///c/flow.yaml?ptr=/collections/0/schema");
  // RFC 6901 escapes stay; what a URL cannot hold is percent-encoded.
  std::string url = InlineSchemaUrl("file:///c/flow.yaml", "/x/a~1b/fr om#1%/schema");
  CHECK(url == "file:///c/flow.yaml?ptr=/x/a~1b/fr%20om%231%25/schema");
  std::string file, ptr;
  REQUIRE(SplitInlineSchemaUrl(url, &file, &ptr));
  CHECK(file == "file:///c/flow.yaml");
  CHECK(ptr == "/x/a~1b/fr om#1%/schema");
  CHECK_FALSE(SplitInlineSchemaUrl("file:///c/flow.yaml", &file, &ptr));
  CHECK_FALSE(SplitInlineSchemaUrl("https://x.com/s.json?v=2", &file, &ptr));
}

TEST_CASE("bad $refs inside inline schemas point into the source file") {
  Fixture f;
  f.AddSource("file:///c/flow.yaml", R"(collections:
  - schema:
      $defs:
        node: {type: object}
      properties:
        a: {$ref: "#/$defs/nope"}
        b: {$ref: "#/collections/0/schema/$defs/node"}
        c: {$ref: "#Nope"}
)");
  f.Inline("file:///c/flow.yaml", "/collections/0/schema");
  f.index.CheckRefs(&f.diags);
  f.diags.SortAndDedupe();
  REQUIRE(f.diags.size() == 3);
  const auto& d = f.diags.items();
  CHECK(d[0].file == "/c/flow.yaml");
  CHECK(d[0].mark.line == 6);
  CHECK(d[0].mark.col == 19);
  CHECK(d[0].message ==
        "$ref `#/$defs/nope` resolves to nothing: the inline schema at /collections/0/schema "
        "of `/c/flow.yaml` has no location `/$defs/nope`");
  CHECK(d[0].scope == "schema at /collections/0/schema/properties/a");
  // The form that meant the whole file before inline schemas were resources of their own.
  CHECK(d[1].mark.line == 7);
  CHECK(d[1].hint ==
        "`#` is the inline schema at /collections/0/schema itself, not the whole file "
        "(write `#/$defs/node`)");
  CHECK(d[2].mark.line == 8);
  CHECK(d[2].message ==
        "$ref `#Nope` resolves to nothing: no `$anchor: Nope` in the inline schema at "
        "/collections/0/schema of `/c/flow.yaml`");
}

TEST_CASE("reduction inspections of a schema that recurses twice take linear time") {
  // A tree whose node refers to itself twice: walking every path of its unrolling took
  // 2^depth steps (`flowctl build` never finished).
  Fixture f;
  auto loc = f.Add("file:///tree.yaml", R"(
$defs:
  node:
    type: object
    reduce: {strategy: merge}
    properties:
      left: {$ref: "#/$defs/node"}
      right: {$ref: "#/$defs/node"}
      n: {type: integer, reduce: {strategy: sum}}
      bad:
        type: object
        properties: {m: {type: integer, reduce: {strategy: sum}}}
type: object
reduce: {strategy: merge}
properties:
  tree: {$ref: "#/$defs/node"}
)");
  auto shape = InferShape(f.index, loc, &f.diags);
  auto start = std::chrono::steady_clock::now();
  InspectReductions(f.index, loc, shape, "collection `x`", &f.diags);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  // The one mistake (a sum under `bad`, which has no annotation) is reported once.
  REQUIRE(f.diags.items().size() == 1);
  INFO(f.diags.items()[0].message);
  CHECK(f.diags.items()[0].message.find("/bad has no reduce annotation") != std::string::npos);
}

TEST_CASE("reduction inspections follow branches") {
  // The messages of every diagnostic; warnings start "warning: ".
  auto inspect = [](const std::string& yaml) {
    Fixture f;
    auto loc = f.Add("file:///s.yaml", yaml);
    auto shape = InferShape(f.index, loc, &f.diags);
    InspectReductions(f.index, loc, shape, "collection `x`", &f.diags);
    std::vector<std::string> out;
    for (const auto& d : f.diags.items()) out.push_back((d.is_warning() ? "warning: " : "") + d.message);
    return out;
  };
  // The SPEC's tagged union: each branch reduces its own way.
  CHECK(inspect(R"(
oneOf:
  - type: object
    reduce: {strategy: lastWriteWins}
    properties: {type: {const: reset}, n: {type: integer}}
  - type: object
    reduce: {strategy: merge}
    properties:
      type: {const: add, reduce: {strategy: firstWriteWins}}
      n: {type: integer, reduce: {strategy: sum}}
)").empty());
  CHECK(inspect(R"(
type: object
reduce: {strategy: merge}
properties:
  members:
    type: object
    reduce: {strategy: set}
    properties:
      add: {type: object, additionalProperties: {type: integer, reduce: {strategy: sum}}}
      remove: {type: object}
)").empty());
  CHECK(inspect(R"(
type: object
reduce: {strategy: merge}
properties:
  best:
    type: object
    reduce: {strategy: maximize, key: [/score]}
    properties: {score: {type: integer}, hits: {type: integer, reduce: {strategy: sum}}}
)").empty());
  // Flow's documentation style for sets: the parts are described by additionalProperties,
  // with a placeholder strategy on them; the members reduce by their own annotations.
  CHECK(inspect(R"(
type: object
reduce: {strategy: merge}
properties:
  value:
    type: object
    reduce: {strategy: set}
    additionalProperties:
      type: object
      reduce: {strategy: lastWriteWins}
      additionalProperties: {type: number, reduce: {strategy: sum}}
  byPattern:
    type: object
    reduce: {strategy: set}
    patternProperties:
      "^(add|intersect|remove)$":
        type: object
        additionalProperties: {type: integer, reduce: {strategy: sum}}
  cart:
    type: object
    reduce: {strategy: set, key: [/id]}
    additionalProperties:
      type: array
      items:
        type: object
        reduce: {strategy: merge}
        properties: {id: {type: integer}, qty: {type: integer, reduce: {strategy: sum}}}
)").empty());
  // A `$ref` with sibling keywords under array items (or additionalProperties): the types
  // come from the whole schema at that location, as at the root or under a property.
  {
    Fixture f;
    f.Add("file:///line.yaml", "type: object\nproperties: {sku: {type: string}, qty: {type: integer}}\n");
    auto loc = f.Add("file:///s.yaml", R"(
type: object
reduce: {strategy: merge}
properties:
  lines:
    type: array
    reduce: {strategy: merge, key: [/sku]}
    items:
      $ref: line.yaml
      reduce: {strategy: merge}
      properties: {qty: {reduce: {strategy: sum}}}
  byName:
    type: object
    reduce: {strategy: merge}
    additionalProperties:
      $ref: line.yaml
      reduce: {strategy: merge}
      properties: {qty: {reduce: {strategy: sum}}}
)");
    auto shape = InferShape(f.index, loc, &f.diags);
    InspectReductions(f.index, loc, shape, "collection `x`", &f.diags);
    for (const auto& d : f.diags.items()) INFO(d.message);
    CHECK(f.diags.empty());
  }
  // A child under a parent with another explicit strategy is legal; where it can never take
  // effect, it is one warning (not an error).
  {
    auto w = inspect(R"(
type: object
reduce: {strategy: merge}
properties:
  stats:
    type: object
    reduce: {strategy: lastWriteWins}
    properties: {n: {type: integer, reduce: {strategy: sum}}}
)");
    REQUIRE(w.size() == 1);
    CHECK(w[0].rfind("warning: `reduce: {strategy: sum}` can never take effect: its parent location "
                     "/stats reduces by `lastWriteWins`", 0) == 0);
  }
  {
    auto w = inspect(R"(
type: object
reduce: {strategy: maximize}
properties: {n: {type: integer, reduce: {strategy: sum}}}
)");
    REQUIRE(w.size() == 1);
    CHECK(w[0].find("warning: ") == 0);
    CHECK(w[0].find("reduces by `maximize`") != std::string::npos);
  }
  {
    // A set's part with a strategy other than the placeholders is ignored, and said so.
    auto w = inspect(R"(
type: object
reduce: {strategy: set}
properties:
  add: {type: object, reduce: {strategy: append}}
)");
    REQUIRE(w.size() == 1);
    CHECK(w[0].find("warning: `reduce: {strategy: append}` is ignored: /add is a part of the set") == 0);
  }
  // Each broken schema yields exactly one error, containing (or, when `exact`, equal to)
  // the given text.
  struct Case {
    const char* schema;
    const char* message;
    bool exact = false;
  };
  const Case cases[] = {
      {"type: object\nproperties: {n: {type: integer, reduce: {strategy: sum}}}\n",
       "has no effect"},
      {"type: object\nreduce: {strategy: merge}\n"
       "properties: {n: {type: [integer, 'null'], reduce: {strategy: sum}}}\n",
       "may be integer | null"},
      {"type: object\nreduce: {strategy: merge}\n"
       "properties: {s: {type: object, reduce: {strategy: set}, properties: {other: {}}}}\n",
       "not `other`"},
      {"type: object\nreduce: {strategy: merge}\n"
       "properties: {s: {type: string, reduce: {strategy: merge}}}\n",
       "object or array"},
      {"type: object\nreduce: {strategy: merg}\n", "unknown reduce strategy `merg`", true},
  };
  for (const auto& c : cases) {
    INFO(c.schema);
    auto errs = inspect(c.schema);
    REQUIRE(errs.size() == 1);
    if (c.exact) {
      CHECK(errs[0] == c.message);
    } else {
      CHECK(errs[0].find(c.message) != std::string::npos);
    }
  }
}

TEST_CASE("validator: a schema valijson cannot compile is an error, not an abort") {
  // Found by fuzz/catalog_build: `flowctl build` of a catalog whose tested collection had
  // `type: inetger` died with SIGABRT.
  for (const char* text :
       {R"({"type":"inetger"})", R"({"properties":{"id":{"type":["string","inetger"]}}})"}) {
    rapidjson::Document d;
    d.Parse(text);
    REQUIRE_FALSE(d.HasParseError());
    auto v = Validator::Compile(d);
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().message.find("inetger") != std::string::npos);
  }
}

TEST_CASE("$ref cycles that consume no input are reported at a $ref, naming the cycle") {
  Fixture f;
  f.Add("file:///c.yaml", R"($defs:
  self: {$ref: "#/$defs/self"}
  a: {$ref: "#/$defs/b"}
  b: {allOf: [{type: object}, {$ref: "#/$defs/a"}]}
  c: {if: {$ref: "#/$defs/d"}}
  d: {anyOf: [{not: {oneOf: [{$ref: "#/$defs/c"}]}}]}
  e: {dependentSchemas: {x: {$ref: "#/$defs/e"}}}
  tree: {type: object, properties: {kids: {items: {$ref: "#/$defs/tree"}}}}
  wrapped: {$ref: "#/$defs/tree"}
  deep: {additionalProperties: {$ref: "#/$defs/deep"}, not: {$ref: "#/$defs/wrapped"}}
)");
  f.index.CheckRefCycles(&f.diags);
  f.diags.SortAndDedupe();
  REQUIRE(f.diags.size() == 4);
  const auto& d = f.diags.items();
  CHECK(d[0].mark.line == 2);
  CHECK(d[0].message ==
        "$ref `#/$defs/self` is a cycle that consumes no input: "
        "/$defs/self → /$defs/self");
  CHECK(d[1].mark.line == 3);  // the first $ref of the cycle in the file
  CHECK(d[1].message ==
        "$ref `#/$defs/b` is a cycle that consumes no input: "
        "/$defs/a → /$defs/b → /$defs/b/allOf/1 → /$defs/a");
  CHECK(d[2].mark.line == 5);
  CHECK(d[2].message.find(": /$defs/c/if → /$defs/d → /$defs/d/anyOf/0 → "
                          "/$defs/d/anyOf/0/not → /$defs/d/anyOf/0/not/oneOf/0 → /$defs/c → "
                          "/$defs/c/if") != std::string::npos);
  CHECK(d[3].mark.line == 7);
  CHECK(d[3].scope == "schema at /$defs/e/dependentSchemas/x");

  // A bundle written by an older version that holds such a cycle is refused, not run.
  Fixture g;
  auto loc = g.Add("file:///s.yaml", R"(type: object
properties: {id: {type: string}}
allOf: [{$ref: "#/$defs/a"}]
$defs:
  a: {$ref: "#/$defs/b"}
  b: {$ref: "#/$defs/a"}
)");
  auto bundle = BundleSchema(g.index, loc);
  std::string cycle = FindInPlaceRefCycle(bundle);
  CHECK(cycle.find("s.yaml#/$defs/a → ") != std::string::npos);
  CHECK(cycle.find("s.yaml#/$defs/b → ") != std::string::npos);
  CHECK(cycle.size() - cycle.rfind("s.yaml#/$defs/a") == std::string("s.yaml#/$defs/a").size());
  auto v = Validator::Compile(bundle);
  REQUIRE_FALSE(v);
  CHECK(v.error().message.find("a $ref cycle consumes no input") != std::string::npos);
  CHECK_FALSE(Annotations::Compile(bundle));
  // Recursion through `properties`/`items` is fine.
  Fixture h;
  auto tree = h.Add("file:///t.yaml",
                    "$defs:\n  t: {items: {$ref: '#/$defs/t'}, allOf: [{}]}\n"
                    "$ref: '#/$defs/t'\n");
  h.index.CheckRefCycles(&h.diags);
  CHECK(h.diags.empty());
  CHECK(FindInPlaceRefCycle(BundleSchema(h.index, tree)).empty());
}

TEST_CASE("shapes as TypeScript types: closed objects, index signatures, enums, tuples") {
  Fixture f;
  f.Add("file:///defs.yaml", R"(
$defs:
  money: {type: number, title: An amount}
)");
  auto loc = f.Add("file:///s.yaml", R"(
type: object
properties:
  id: {type: integer}
  total: {$ref: "defs.yaml#/$defs/money"}
  status: {enum: [open, paid]}
  code: {const: 7}
  note: {type: [string, "null"]}
  tags: {type: array, items: {type: [string, integer]}}
  pair: {type: array, items: [{type: string}, {type: boolean}], minItems: 1}
  attrs: {type: object, additionalProperties: {type: string}}
  extra: {type: object, properties: {a: {type: string}}, additionalProperties: true}
  anything: {}
  bag: {type: object}
  nested: {properties: {"odd key": {type: boolean}}, required: ["odd key"]}
  gone: false
required: [id, status]
)");
  auto shape = InferShape(f.index, loc, &f.diags);
  CHECK(f.diags.empty());
  CHECK(TypeScriptOf(*shape) == R"({
  anything?: unknown;
  attrs?: {
    [k: string]: string;
  };
  bag?: {
    [k: string]: unknown;
  };
  code?: 7;
  extra?: {
    a?: string;
    [k: string]: unknown;
  };
  id: number;
  nested?: {
    "odd key": boolean;
  };
  note?: string | null;
  pair?: [string, boolean?];
  status: "open" | "paid";
  tags?: (number | string)[];
  /** An amount */
  total?: number;
})");

  // Recursion is cut (unknown), and an enum narrowed by allOf keeps the common values.
  auto rec = f.Add("file:///r.yaml", R"(
$defs:
  node:
    type: object
    properties:
      next: {$ref: "#/$defs/node"}
      kind: {allOf: [{enum: [a, b, c]}, {enum: [b, c, d]}]}
$ref: "#/$defs/node"
)");
  auto rshape = InferShape(f.index, rec, &f.diags);
  CHECK(TypeScriptOf(*rshape) == R"({
  kind?: "b" | "c";
  next?: unknown;
})");
  CHECK(TypeScriptProperty("amount") == "amount");
  CHECK(TypeScriptProperty("a-b") == "\"a-b\"");
  CHECK(TypeScriptProperty("say \"hi\"") == "\"say \\\"hi\\\"\"");
}
