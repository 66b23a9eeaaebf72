// Property tests of reductions (random trees vs. left folds, per strategy) and the
// combiner's spill path (tiny budget vs. in-memory, byte for byte).
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include "doc/pack.h"
#include "doc/pointer.h"
#include "doc/value.h"
#include "reduce/combiner.h"
#include "reduce/reduce.h"
#include "schema/annotations.h"

using namespace flow;
using doc::Value;

namespace {

using Alloc = doc::Allocator;

std::string Json(const Value& v) {
  std::string out;
  doc::AppendJson(v, &out);
  return out;
}

doc::Pointer Ptr(const char* s) {
  std::string why;
  auto p = doc::Pointer::Parse(s, &why);
  REQUIRE_MESSAGE(p.has_value(), why);
  return *p;
}

// A reducer for `schema` (JSON text), compiled as the bundle
// {"$ref": "#/$defs/s0", "$defs": {"s0": schema}}.
std::shared_ptr<const reduce::Reducer> MakeReducer(std::string_view schema) {
  rapidjson::Document s;
  s.Parse(schema.data(), schema.size());
  REQUIRE_MESSAGE(!s.HasParseError(), schema);
  rapidjson::Document bundle;
  bundle.SetObject();
  auto& a = bundle.GetAllocator();
  bundle.AddMember("$ref", "#/$defs/s0", a);
  Value defs(rapidjson::kObjectType);
  defs.AddMember("s0", Value(s, a), a);
  bundle.AddMember("$defs", defs, a);
  auto compiled = schema::Annotations::Compile(bundle);
  REQUIRE_MESSAGE(compiled.ok(), compiled.error().message);
  return std::make_shared<reduce::Reducer>(compiled.value());
}

// Random values for documents, all built in one allocator.
class Gen {
 public:
  Gen(uint64_t seed, Alloc& alloc) : rng_(seed), alloc_(alloc) {}

  size_t Below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool Chance(int percent) { return Below(100) < static_cast<size_t>(percent); }
  int64_t Int(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng_); }
  std::mt19937_64& rng() { return rng_; }
  Alloc& alloc() { return alloc_; }

  Value Str(std::string_view s) { return Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), alloc_); }
  // A multiple of 1/8 (exact in binary, so float sums are exact in any order).
  Value Eighth(int64_t max_eighths = 800) { return Value(static_cast<double>(Int(-max_eighths, max_eighths)) / 8.0); }

  std::string Text() {
    static const std::vector<std::string> pool = {
        "", "a", "b", "ab", "z", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", std::string("a\0b", 3), "x y"};
    return pool[Below(pool.size())];
  }
  std::string Name() {
    static const std::vector<std::string> pool = {"a", "b", "c", "d", "e", "\xc3\xa9", "", "B", std::string("\0", 1)};
    return pool[Below(pool.size())];
  }

  Value Scalar() {
    switch (Below(9)) {
      case 0: return Value();
      case 1: return Value(Chance(50));
      case 2: return Value(Int(-3, 3));
      case 3: return Value(static_cast<double>(Int(-3, 3)));  // twins of the integers
      case 4: return Eighth(40);
      case 5: return Value(Chance(50) ? Int(std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max())
                                      : static_cast<int64_t>(Int(0, 3)));
      case 6: return Value(std::numeric_limits<uint64_t>::max() - static_cast<uint64_t>(Below(3)));
      default: return Str(Text());
    }
  }

  // Any JSON value; objects have distinct names in random order.
  Value Any(int depth) {
    size_t k = depth <= 0 ? 0 : Below(10);
    if (k < 6) return Scalar();
    if (k < 8) {
      Value a(rapidjson::kArrayType);
      for (size_t i = 0, n = Below(4); i < n; ++i) a.PushBack(Any(depth - 1), alloc_);
      return a;
    }
    Value o(rapidjson::kObjectType);
    for (const auto& name : Names(Below(4))) o.AddMember(Str(name), Any(depth - 1), alloc_);
    return o;
  }

  // `n` distinct names, in random order.
  std::vector<std::string> Names(size_t n) {
    static const std::vector<std::string> pool = {"a", "b", "c", "d", "e", "f", "\xc3\xa9", "", "B"};
    std::vector<std::string> names = pool;
    std::shuffle(names.begin(), names.end(), rng_);
    names.resize(std::min(n, names.size()));
    return names;
  }

  // An object with the given members (name, value), in random order.
  Value Object(std::vector<std::pair<std::string, Value>> members) {
    std::shuffle(members.begin(), members.end(), rng_);
    Value o(rapidjson::kObjectType);
    for (auto& [name, value] : members) o.AddMember(Str(name), value, alloc_);
    return o;
  }

 private:
  std::mt19937_64 rng_;
  Alloc& alloc_;
};

using DocGen = std::function<Value(Gen&)>;

uint64_t SeedOf(std::string_view name) {
  uint64_t h = 1469598103934665603ull;
  for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return h;
}

struct Folds {
  const reduce::Reducer& reducer;
  Alloc& alloc;
  std::string error;

  bool Reduce(Value& l, Value& r, bool full) {
    auto res = reducer.Reduce(l, r, full, alloc);
    if (!res.ok()) error = res.error().message;
    return res.ok();
  }

  // d[lo] ⊕p ... ⊕p d[hi-1], grouped as a random binary tree; `shape` describes it.
  bool Tree(const std::vector<Value>& docs, size_t lo, size_t hi, Gen& g, Value* out, std::string* shape) {
    if (hi - lo == 1) {
      *out = Value(docs[lo], alloc);
      *shape += std::to_string(lo);
      return true;
    }
    size_t mid = lo + 1 + g.Below(hi - lo - 1);
    Value left, right;
    *shape += "(";
    if (!Tree(docs, lo, mid, g, &left, shape)) return false;
    *shape += " ";
    if (!Tree(docs, mid, hi, g, &right, shape)) return false;
    *shape += ")";
    if (!Reduce(left, right, false)) return false;
    *out = std::move(left);
    return true;
  }

  // The partial left fold of d[lo..hi).
  bool Partial(const std::vector<Value>& docs, size_t lo, size_t hi, Value* out) {
    Value acc(docs[lo], alloc);
    for (size_t i = lo + 1; i < hi; ++i) {
      Value r(docs[i], alloc);
      if (!Reduce(acc, r, false)) return false;
    }
    *out = std::move(acc);
    return true;
  }

  // Finalize(d[0]) ⊕f d[1] ⊕f ... ⊕f d[hi-1].
  bool Full(const std::vector<Value>& docs, size_t hi, Value* out) {
    Value acc(docs[0], alloc);
    if (auto r = reducer.Finalize(acc, alloc); !r.ok()) {
      error = r.error().message;
      return false;
    }
    for (size_t i = 1; i < hi; ++i) {
      Value r(docs[i], alloc);
      if (!Reduce(acc, r, true)) return false;
    }
    *out = std::move(acc);
    return true;
  }
};

// For `trials` random sequences of 1..12 documents from `gen`, checks that
//  (a) a random tree of partial reductions equals the partial left fold,
//  (b) Finalize(tree) equals the full left fold Finalize(d1) ⊕f d2 ⊕f ... ⊕f dn,
//  (c) a full fold of a prefix ⊕f the partial tree of the rest equals the full left fold
//      (how a combiner reduces deltas into a fully reduced base),
// comparing JSON text exactly. `last` optionally checks the full result against the docs.
void CheckAssociative(const std::string& name, std::string_view schema, const DocGen& gen, int trials = 300,
                      const std::function<std::string(const std::vector<Value>&)>& expect = nullptr) {
  auto reducer = MakeReducer(schema);
  const uint64_t base_seed = SeedOf(name);
  int passed = 0;
  for (int t = 0; t < trials; ++t) {
    const uint64_t seed = base_seed + static_cast<uint64_t>(t);
    CAPTURE(name);
    CAPTURE(seed);
    Alloc alloc;
    Gen g(seed, alloc);
    size_t n = 1 + g.Below(12);
    std::vector<Value> docs;
    std::string inputs;
    for (size_t i = 0; i < n; ++i) {
      docs.push_back(gen(g));
      inputs += (i ? "\n  " : "  ") + Json(docs.back());
    }
    CAPTURE(inputs);
    Folds f{*reducer, alloc, ""};

    Value left;
    REQUIRE_MESSAGE(f.Partial(docs, 0, n, &left), f.error);
    std::string shape;
    Value tree;
    REQUIRE_MESSAGE(f.Tree(docs, 0, n, g, &tree, &shape), f.error);
    CAPTURE(shape);
    const std::string left_json = Json(left), tree_json = Json(tree);
    CHECK(tree_json == left_json);

    Value full;
    REQUIRE_MESSAGE(f.Full(docs, n, &full), f.error);
    const std::string full_json = Json(full);
    auto finalized = reducer->Finalize(tree, alloc);
    REQUIRE_MESSAGE(finalized.ok(), finalized.error().message);
    const std::string finalized_json = Json(tree);
    CHECK(finalized_json == full_json);

    std::string based_json = full_json;
    if (n > 1) {
      size_t k = 1 + g.Below(n - 1);
      Value base, rest;
      std::string rest_shape;
      REQUIRE_MESSAGE(f.Full(docs, k, &base), f.error);
      REQUIRE_MESSAGE(f.Tree(docs, k, n, g, &rest, &rest_shape), f.error);
      REQUIRE_MESSAGE(f.Reduce(base, rest, true), f.error);
      based_json = Json(base);
      CAPTURE(k);
      CHECK(based_json == full_json);
    }
    std::string expected = expect ? expect(docs) : full_json;
    CHECK(full_json == expected);
    if (tree_json != left_json || finalized_json != full_json || based_json != full_json || full_json != expected) break;
    ++passed;
  }
  CHECK(passed == trials);
}

// ---- generators ----------------------------------------------------------------------------

Value IntArray(Gen& g, size_t max_len) {
  Value a(rapidjson::kArrayType);
  for (size_t i = 0, n = g.Below(max_len + 1); i < n; ++i) {
    a.PushBack(g.Chance(10) ? Value() : Value(g.Int(-20, 20)), g.alloc());
  }
  return a;
}

// A set instruction in map form: some of add/intersect/remove, members from a small pool.
Value MapSet(Gen& g, const std::function<Value(Gen&)>& add_value) {
  static const char* kParts[] = {"add", "intersect", "remove"};
  std::vector<std::pair<std::string, Value>> parts;
  for (const char* part : kParts) {
    if (!g.Chance(part[0] == 'a' ? 70 : 35)) continue;
    std::vector<std::pair<std::string, Value>> members;
    for (const auto& name : g.Names(g.Below(5))) {
      members.emplace_back(name, part[0] == 'a' ? add_value(g) : Value(g.Int(0, 3)));
    }
    parts.emplace_back(part, g.Object(std::move(members)));
  }
  return g.Object(std::move(parts));
}

// A set instruction in array form; `item(g, id)` makes a member with identity `id`.
// `allow_empty`: may be `{}` (no parts at all; see "set: an empty instruction ...").
Value ArraySet(Gen& g, size_t pool, const std::function<Value(Gen&, size_t, bool add)>& item,
               bool allow_empty = true) {
  static const char* kParts[] = {"add", "intersect", "remove"};
  std::vector<std::pair<std::string, Value>> parts;
  for (const char* part : kParts) {
    if (!g.Chance(part[0] == 'a' ? 70 : 35) && !(part[0] == 'r' && parts.empty() && !allow_empty)) continue;
    std::vector<size_t> ids(pool);
    for (size_t i = 0; i < pool; ++i) ids[i] = i;
    std::shuffle(ids.begin(), ids.end(), g.rng());  // unsorted: the reducer sorts
    ids.resize(g.Below(pool / 2 + 2));
    Value items(rapidjson::kArrayType);
    for (size_t id : ids) items.PushBack(item(g, id, part[0] == 'a'), g.alloc());
    parts.emplace_back(part, std::move(items));
  }
  return g.Object(std::move(parts));
}

Value StringSet(Gen& g, bool allow_empty = true) {
  static const char* kWords[] = {"red", "green", "blue", "\xc3\xa9t\xc3\xa9", "", "a", "b"};
  return ArraySet(
      g, std::size(kWords), [](Gen& g2, size_t id, bool) { return g2.Str(kWords[id]); }, allow_empty);
}

// Items keyed by /id, sorted by it, with distinct ids (as an int, or the same as a float).
Value KeyedItems(Gen& g) {
  std::vector<int64_t> ids;
  for (int64_t id = 0; id < 8; ++id) {
    if (g.Chance(40)) ids.push_back(id);
  }
  Value a(rapidjson::kArrayType);
  for (int64_t id : ids) {
    std::vector<std::pair<std::string, Value>> m;
    m.emplace_back("id", g.Chance(25) ? Value(static_cast<double>(id)) : Value(id));
    if (g.Chance(80)) m.emplace_back("n", Value(g.Int(-5, 5)));
    if (g.Chance(40)) m.emplace_back("s", g.Str(g.Text()));
    if (g.Chance(30)) {
      Value tags(rapidjson::kArrayType);
      tags.PushBack(g.Str(g.Text()), g.alloc());
      m.emplace_back("tags", std::move(tags));
    }
    a.PushBack(g.Object(std::move(m)), g.alloc());
  }
  return a;
}

// Scalars and containers from a small pool, so that equal values (in several
// representations) are frequent.
Value Tieable(Gen& g) {
  static const char* kPool[] = {
      "null", "false", "true", "0", "-0.0", "1", "1.0", "-1", "2.5", "\"a\"", "\"b\"", "[]", "[1]", "[1.0]",
      "[1,\"x\"]", "{\"a\":1}", "{\"a\":1.0,\"b\":2}", "{\"b\":2,\"a\":1}", "{\"b\":{\"y\":1,\"x\":2}}",
      "{\"b\":{\"x\":2.0,\"y\":1}}"};
  if (g.Chance(30)) return g.Any(2);
  rapidjson::Document d(&g.alloc());
  d.Parse(kPool[g.Below(std::size(kPool))]);
  Value v;
  v = std::move(static_cast<Value&>(d));
  return v;
}

constexpr const char* kMixedSchema = R"({
  "type": "object",
  "reduce": {"strategy": "merge"},
  "$defs": {
    "member": {
      "type": "object",
      "reduce": {"strategy": "merge"},
      "properties": {
        "n": {"reduce": {"strategy": "sum"}},
        "tags": {"reduce": {"strategy": "set"}}
      }
    },
    "event": {
      "type": "object",
      "properties": {"s": {"reduce": {"strategy": "set"}}}
    }
  },
  "properties": {
    "total": {"reduce": {"strategy": "sum"}},
    "ratio": {"reduce": {"strategy": "sum"}},
    "first": {"reduce": {"strategy": "firstWriteWins"}},
    "last": {"reduce": {"strategy": "lastWriteWins"}},
    "log": {"type": "array", "reduce": {"strategy": "append"}, "items": {"$ref": "#/$defs/s0/$defs/event"}},
    "best": {
      "reduce": {"strategy": "maximize", "key": ["/score"]},
      "properties": {"hits": {"reduce": {"strategy": "sum"}}, "tags": {"reduce": {"strategy": "set"}}}
    },
    "low": {"reduce": {"strategy": "minimize"}},
    "members": {
      "reduce": {"strategy": "set"},
      "properties": {"add": {"additionalProperties": {"$ref": "#/$defs/s0/$defs/member"}}}
    },
    "byIndex": {"reduce": {"strategy": "merge"}, "items": {"reduce": {"strategy": "maximize"}}},
    "byKey": {
      "reduce": {"strategy": "merge", "key": ["/id"]},
      "items": {"$ref": "#/$defs/s0/$defs/member"}
    },
    "nested": {"reduce": {"strategy": "merge"}, "additionalProperties": {"$ref": "#/$defs/s0"}}
  }
})";

Value MixedMember(Gen& g) {
  std::vector<std::pair<std::string, Value>> m;
  if (g.Chance(80)) m.emplace_back("n", Value(g.Int(-3, 9)));
  if (g.Chance(40)) m.emplace_back("tags", StringSet(g));
  if (g.Chance(20)) m.emplace_back("note", g.Str(g.Text()));
  return g.Object(std::move(m));
}

Value MixedDoc(Gen& g, int depth) {
  std::vector<std::pair<std::string, Value>> m;
  if (g.Chance(50)) m.emplace_back("total", g.Chance(8) ? Value() : Value(g.Int(-100, 100)));
  if (g.Chance(30)) m.emplace_back("ratio", g.Chance(50) ? g.Eighth() : Value(g.Int(-4, 4)));
  if (g.Chance(30)) m.emplace_back("first", g.Any(2));
  if (g.Chance(30)) m.emplace_back("last", g.Any(2));
  if (g.Chance(40)) {
    Value log(rapidjson::kArrayType);
    for (size_t i = 0, n = g.Below(3); i < n; ++i) {
      std::vector<std::pair<std::string, Value>> e;
      e.emplace_back("at", Value(g.Int(0, 99)));
      if (g.Chance(50)) e.emplace_back("s", StringSet(g));
      log.PushBack(g.Object(std::move(e)), g.alloc());
    }
    m.emplace_back("log", std::move(log));
  }
  if (g.Chance(40)) {
    std::vector<std::pair<std::string, Value>> b;
    if (g.Chance(85)) b.emplace_back("score", Value(g.Int(0, 3)));
    b.emplace_back("hits", Value(g.Int(0, 5)));
    if (g.Chance(50)) b.emplace_back("name", g.Str(g.Text()));
    if (g.Chance(40)) b.emplace_back("tags", StringSet(g));
    m.emplace_back("best", g.Object(std::move(b)));
  }
  if (g.Chance(30)) m.emplace_back("low", Tieable(g));
  if (g.Chance(40)) m.emplace_back("members", MapSet(g, MixedMember));
  if (g.Chance(30)) {
    Value a(rapidjson::kArrayType);
    for (size_t i = 0, n = g.Below(4); i < n; ++i) a.PushBack(Tieable(g), g.alloc());
    m.emplace_back("byIndex", std::move(a));
  }
  if (g.Chance(30)) {
    Value a = KeyedItems(g);
    // Members of byKey have `tags` as a set (an array of tags appends elsewhere).
    for (auto& item : a.GetArray()) {
      item.RemoveMember("tags");
      if (g.Chance(30)) item.AddMember("tags", StringSet(g), g.alloc());
    }
    m.emplace_back("byKey", std::move(a));
  }
  if (depth > 0 && g.Chance(30)) {
    std::vector<std::pair<std::string, Value>> nested;
    for (const auto& name : g.Names(g.Below(3))) nested.emplace_back(name, MixedDoc(g, depth - 1));
    m.emplace_back("nested", g.Object(std::move(nested)));
  }
  if (g.Chance(15)) m.emplace_back("other", g.Any(1));
  return g.Object(std::move(m));
}

}  // namespace

// ---- per-strategy properties ------------------------------------------------------------------

TEST_CASE("reduce property: lastWriteWins and firstWriteWins") {
  auto last = [](const std::vector<Value>& docs) { return Json(docs.back()); };
  auto first = [](const std::vector<Value>& docs) { return Json(docs.front()); };
  CheckAssociative("lww", R"({"reduce": {"strategy": "lastWriteWins"}})", [](Gen& g) { return g.Any(3); }, 300, last);
  CheckAssociative("lww (no annotation)", R"({"type": "object", "properties": {"a": {"type": "integer"}}})",
                   [](Gen& g) { return g.Chance(70) ? g.Any(3) : g.Object({}); }, 200, last);
  CheckAssociative("fww", R"({"reduce": {"strategy": "firstWriteWins"}})", [](Gen& g) { return g.Any(3); }, 300, first);
}

TEST_CASE("reduce property: append") {
  CheckAssociative("append", R"({"reduce": {"strategy": "append"}})", [](Gen& g) {
    if (g.Chance(6)) return Value();
    Value a(rapidjson::kArrayType);
    for (size_t i = 0, n = g.Below(4); i < n; ++i) a.PushBack(g.Any(2), g.alloc());
    return a;
  });
  // Without nulls the result is simply every item in order.
  CheckAssociative(
      "append (no nulls)", R"({"reduce": {"strategy": "append"}})",
      [](Gen& g) { return IntArray(g, 3); }, 200, [](const std::vector<Value>& docs) {
        Alloc alloc;
        Value all(rapidjson::kArrayType);
        for (const auto& d : docs) {
          for (const auto& item : d.GetArray()) all.PushBack(Value(item, alloc), alloc);
        }
        return Json(all);
      });
}

TEST_CASE("reduce property: sum of integers") {
  const char* schema = R"({"reduce": {"strategy": "sum"}})";
  // Ranges chosen so that no grouping overflows: small, signed near ±2^59 (totals within
  // int64), and unsigned up to 2^60 (totals past INT64_MAX, into uint64).
  CheckAssociative("sum small", schema, [](Gen& g) { return g.Chance(5) ? Value() : Value(g.Int(-100, 100)); });
  CheckAssociative("sum signed", schema, [](Gen& g) {
    return g.Chance(5) ? Value() : Value(g.Int(-(int64_t{1} << 59), int64_t{1} << 59));
  });
  CheckAssociative("sum unsigned", schema, [](Gen& g) {
    return g.Chance(5) ? Value() : Value(static_cast<uint64_t>(g.Int(0, int64_t{1} << 60)));
  });
  // The exact total, as an integer.
  CheckAssociative(
      "sum exact", schema, [](Gen& g) { return Value(g.Int(0, int64_t{1} << 60)); }, 100,
      [](const std::vector<Value>& docs) {
        unsigned __int128 total = 0;
        for (const auto& d : docs) total += static_cast<uint64_t>(d.GetInt64());
        return std::to_string(static_cast<uint64_t>(total));
      });
}

TEST_CASE("reduce property: sum of floats (multiples of 1/8) and integers") {
  CheckAssociative("sum floats", R"({"reduce": {"strategy": "sum"}})", [](Gen& g) {
    switch (g.Below(10)) {
      case 0: return Value();
      case 1: return Value(-0.0);
      case 2:
      case 3: return Value(g.Int(-1000, 1000));
      default: return g.Eighth(1 << 20);
    }
  });
}

TEST_CASE("reduce property: sum overflow is an error, not a wrap") {
  auto reducer = MakeReducer(R"({"reduce": {"strategy": "sum"}})");
  Alloc alloc;
  auto sum = [&](Value l, Value r) -> std::string {
    auto res = reducer->Reduce(l, r, false, alloc);
    return res.ok() ? Json(l) : "error: " + res.error().message;
  };
  const uint64_t u64_max = std::numeric_limits<uint64_t>::max();
  const int64_t i64_min = std::numeric_limits<int64_t>::min(), i64_max = std::numeric_limits<int64_t>::max();
  std::string over = sum(Value(u64_max), Value(1));
  CHECK(over.rfind("error: ", 0) == 0);
  CHECK(over.find("overflow") != std::string::npos);
  CHECK(sum(Value(i64_min), Value(-1)).find("overflow") != std::string::npos);
  CHECK(sum(Value(u64_max - 5), Value(u64_max - 5)).find("overflow") != std::string::npos);
  // Within range, across the int64/uint64 boundary, no error.
  CHECK(sum(Value(i64_max), Value(1)) == "9223372036854775808");
  CHECK(sum(Value(i64_min), Value(u64_max)) == "9223372036854775807");
  CHECK(sum(Value(u64_max), Value(-1)) == "18446744073709551614");
  CHECK(sum(Value(i64_min), Value(0)) == "-9223372036854775808");
  // A float anywhere makes a float sum, which does not overflow.
  CHECK(sum(Value(u64_max), Value(1.0)) == "18446744073709553000.0");
}

TEST_CASE("reduce property: minimize and maximize") {
  CheckAssociative("minimize", R"({"reduce": {"strategy": "minimize"}})", Tieable);
  CheckAssociative("maximize", R"({"reduce": {"strategy": "maximize"}})", Tieable);
  // With a key: only the keyed values compare; ties deep-merge (hits summed, tags appended).
  const char* keyed = R"({
    "reduce": {"strategy": "%s", "key": %s},
    "properties": {"hits": {"reduce": {"strategy": "sum"}}, "tags": {"reduce": {"strategy": "append"}}}
  })";
  auto scored = [](Gen& g) {
    std::vector<std::pair<std::string, Value>> m;
    switch (g.Below(6)) {
      case 0: break;  // absent: null
      case 1: m.emplace_back("score", Value(static_cast<double>(g.Int(0, 2)))); break;
      case 2: m.emplace_back("score", g.Str(g.Chance(50) ? "x" : "y")); break;
      default: m.emplace_back("score", Value(g.Int(0, 2)));
    }
    if (g.Chance(70)) m.emplace_back("name", g.Str(g.Chance(50) ? "a" : "b"));
    if (g.Chance(80)) m.emplace_back("hits", Value(g.Int(0, 5)));
    if (g.Chance(40)) m.emplace_back("tags", IntArray(g, 2));
    if (g.Chance(30)) m.emplace_back("other", g.Any(1));
    return g.Object(std::move(m));
  };
  for (const char* strategy : {"minimize", "maximize"}) {
    for (const char* key : {R"(["/score"])", R"(["/score", "/name"])"}) {
      char schema[1024];
      std::snprintf(schema, sizeof(schema), keyed, strategy, key);
      CheckAssociative(std::string(strategy) + " key " + key, schema, scored, 200);
    }
  }
}

TEST_CASE("reduce property: merge of objects") {
  const char* schema = R"({
    "type": ["object", "null"],
    "reduce": {"strategy": "merge"},
    "properties": {
      "n": {"reduce": {"strategy": "sum"}},
      "f": {"reduce": {"strategy": "firstWriteWins"}},
      "t": {"reduce": {"strategy": "append"}},
      "o": {"reduce": {"strategy": "merge"}, "additionalProperties": {"reduce": {"strategy": "sum"}}}
    }
  })";
  CheckAssociative("merge objects", schema, [](Gen& g) {
    if (g.Chance(3)) return Value();
    std::vector<std::pair<std::string, Value>> m;
    if (g.Chance(50)) m.emplace_back("n", g.Chance(10) ? Value() : Value(g.Int(-50, 50)));
    if (g.Chance(40)) m.emplace_back("f", g.Any(2));
    if (g.Chance(40)) m.emplace_back("t", g.Chance(5) ? Value() : IntArray(g, 3));
    if (g.Chance(50)) {
      if (g.Chance(5)) {
        m.emplace_back("o", Value());
      } else {
        std::vector<std::pair<std::string, Value>> o;
        for (const auto& name : g.Names(g.Below(4))) o.emplace_back(name, Value(g.Int(-9, 9)));
        m.emplace_back("o", g.Object(std::move(o)));
      }
    }
    for (const auto& name : g.Names(g.Below(3))) m.emplace_back("x" + name, g.Any(2));
    return g.Object(std::move(m));
  });
}

TEST_CASE("reduce property: merge of arrays, by index and by key") {
  CheckAssociative("merge arrays by index",
                   R"({"reduce": {"strategy": "merge"}, "items": {"reduce": {"strategy": "sum"}}})",
                   [](Gen& g) { return g.Chance(3) ? Value() : IntArray(g, 5); });
  CheckAssociative("merge arrays by index (nested)", R"({
      "reduce": {"strategy": "merge"},
      "items": {"reduce": {"strategy": "merge"}, "additionalProperties": {"reduce": {"strategy": "sum"}}}
    })",
                   [](Gen& g) {
                     Value a(rapidjson::kArrayType);
                     for (size_t i = 0, n = g.Below(4); i < n; ++i) {
                       std::vector<std::pair<std::string, Value>> o;
                       for (const auto& name : g.Names(g.Below(3))) o.emplace_back(name, Value(g.Int(-9, 9)));
                       a.PushBack(g.Object(std::move(o)), g.alloc());
                     }
                     return a;
                   });
  const char* keyed = R"({
    "reduce": {"strategy": "merge", "key": ["/id"]},
    "items": {
      "reduce": {"strategy": "merge"},
      "properties": {"n": {"reduce": {"strategy": "sum"}}, "tags": {"reduce": {"strategy": "append"}}}
    }
  })";
  CheckAssociative("merge arrays by key", keyed, [](Gen& g) { return g.Chance(3) ? Value() : KeyedItems(g); });
  // A composite key whose first component is sometimes absent (null) or of another type.
  const char* composite = R"({
    "reduce": {"strategy": "merge", "key": ["/g", "/id"]},
    "items": {"reduce": {"strategy": "merge"}, "properties": {"n": {"reduce": {"strategy": "sum"}}}}
  })";
  CheckAssociative("merge arrays by composite key", composite, [](Gen& g) {
    Alloc& alloc = g.alloc();
    std::vector<Value> items;
    for (int gi = 0; gi < 4; ++gi) {
      for (int64_t id = 0; id < 3; ++id) {
        if (!g.Chance(30)) continue;
        std::vector<std::pair<std::string, Value>> m;
        switch (gi) {
          case 0: break;  // absent
          case 1: m.emplace_back("g", Value(true)); break;
          case 2: m.emplace_back("g", g.Chance(50) ? Value(7) : Value(7.0)); break;
          default: m.emplace_back("g", g.Str("g")); break;
        }
        m.emplace_back("id", Value(id));
        m.emplace_back("n", Value(g.Int(0, 9)));
        items.push_back(g.Object(std::move(m)));
      }
    }
    Value a(rapidjson::kArrayType);
    for (auto& item : items) a.PushBack(item, alloc);  // built in key order
    return a;
  });
}

TEST_CASE("reduce property: set in map form and in keyed-array form") {
  CheckAssociative("set map", R"({
      "reduce": {"strategy": "set"},
      "properties": {"add": {"additionalProperties": {"reduce": {"strategy": "sum"}}}}
    })",
                   [](Gen& g) { return MapSet(g, [](Gen& g2) { return Value(g2.Int(1, 5)); }); });
  CheckAssociative("set map of merged objects", R"({
      "reduce": {"strategy": "set"},
      "properties": {"add": {"additionalProperties": {
        "reduce": {"strategy": "merge"},
        "properties": {"n": {"reduce": {"strategy": "sum"}}, "tags": {"reduce": {"strategy": "set"}}}
      }}}
    })",
                   [](Gen& g) { return MapSet(g, MixedMember); });
  CheckAssociative("set keyed array", R"({
      "reduce": {"strategy": "set", "key": ["/k"]},
      "properties": {"add": {"items": {
        "reduce": {"strategy": "merge"},
        "properties": {"n": {"reduce": {"strategy": "sum"}}}
      }}}
    })",
                   [](Gen& g) {
                     return ArraySet(g, 8, [](Gen& g2, size_t id, bool add) {
                       std::vector<std::pair<std::string, Value>> m;
                       m.emplace_back("k", g2.Chance(20) ? Value(static_cast<double>(id)) : Value(static_cast<int64_t>(id)));
                       if (add || g2.Chance(30)) m.emplace_back("n", Value(g2.Int(0, 9)));
                       if (g2.Chance(20)) m.emplace_back("s", g2.Str(g2.Text()));
                       return g2.Object(std::move(m));
                     });
                   });
  CheckAssociative("set array of strings", R"({"reduce": {"strategy": "set"}})", [](Gen& g) { return StringSet(g); });
}

// Parses `json` into a value owned by `alloc`.
Value ParseInto(const char* json, Alloc& alloc) {
  rapidjson::Document d(&alloc);
  d.Parse(json);
  Value v;
  v = std::move(static_cast<Value&>(d));
  return v;
}

TEST_CASE("reducer: Finalizes says whether any reachable schema has a set") {
  // A materialization skips finalizing its keys when nothing can change: a `set` anywhere
  // (behind $ref, anyOf, items or additionalProperties) must count. (MakeReducer bundles
  // the schema at #/$defs/s0.)
  CHECK_FALSE(MakeReducer(R"({"type": "object", "reduce": {"strategy": "merge"},
      "properties": {"n": {"reduce": {"strategy": "sum"}}}})")
                  ->Finalizes());
  CHECK(MakeReducer(R"({"reduce": {"strategy": "set"}})")->Finalizes());
  CHECK(MakeReducer(R"({"properties": {"a": {"$ref": "#/$defs/s0/$defs/s"}},
      "$defs": {"s": {"reduce": {"strategy": "set"}}}})")
            ->Finalizes());
  CHECK(MakeReducer(R"({"anyOf": [{"items": {"reduce": {"strategy": "set"}}}]})")->Finalizes());
  CHECK(MakeReducer(R"({"additionalProperties": {"reduce": {"strategy": "set"}}})")->Finalizes());
  // And a document of a schema without one comes out of Finalize as it went in.
  auto reducer = MakeReducer(R"({"reduce": {"strategy": "merge"}})");
  Alloc alloc;
  Value v = ParseInto(R"({"add": [1], "remove": [2]})", alloc);
  REQUIRE(reducer->Finalize(v, alloc).ok());
  CHECK(Json(v) == R"({"add":[1],"remove":[2]})");
}

TEST_CASE("set: an empty instruction does not fix an array-form set to map form") {
  // `{}` is a set instruction with no parts (all empty). Reducing it with no prior set
  // (Finalize) or combining two of them once fixed the set to the map form: a later
  // array-form instruction then failed as "malformed set: one side uses objects and the
  // other arrays". Empty parts now fit either form.
  auto reducer = MakeReducer(R"({"reduce": {"strategy": "set", "key": ["/id"]}})");
  Alloc alloc;
  auto parse = [&](const char* json) { return ParseInto(json, alloc); };
  {  // full: Finalize({}) ⊕f {"add":[{"id":1}]}
    Value l = parse("{}"), r = parse(R"({"add":[{"id":1}]})");
    REQUIRE(reducer->Finalize(l, alloc).ok());
    auto res = reducer->Reduce(l, r, true, alloc);
    CHECK_MESSAGE(res.ok(), res.error().message);
    if (res.ok()) CHECK(Json(l) == R"({"add":[{"id":1}]})");
  }
  {  // partial: ({} ⊕p {}) ⊕p {"remove":[{"id":1}]}
    Value l = parse("{}"), r = parse("{}"), r2 = parse(R"({"remove":[{"id":1}]})");
    REQUIRE(reducer->Reduce(l, r, false, alloc).ok());
    auto res = reducer->Reduce(l, r2, false, alloc);
    CHECK_MESSAGE(res.ok(), res.error().message);
    if (res.ok()) CHECK(Json(l) == R"({"add":[],"remove":[{"id":1}]})");
  }
  // Empty parts of either form mix with non-empty parts of the other.
  {
    Value l = parse(R"({"add":{},"remove":[{"id":2}]})"), r = parse(R"({"add":[{"id":1}],"intersect":{}})");
    auto res = reducer->Reduce(l, r, false, alloc);
    CHECK_MESSAGE(res.ok(), res.error().message);
    if (res.ok()) CHECK(Json(l) == R"({"add":[{"id":1}],"intersect":[]})");
  }
}

TEST_CASE("set: the form of an empty result does not depend on the grouping") {
  // Regression: {} ⊕ {} once gave {"add":{}}, whose empty object then counted as a hint
  // for the map form and won over the array form of the left side:
  //   ({"add":[]} ⊕ {}) ⊕ {}  =  {"add":[]}    but    {"add":[]} ⊕ ({} ⊕ {})  =  {"add":{}}
  // Now {} ⊕ {} is {} and the leftmost empty part decides the form.
  auto reducer = MakeReducer(R"({"reduce": {"strategy": "set"}})");
  for (bool full : {false, true}) {
    CAPTURE(full);
    Alloc alloc;
    auto parse = [&](const char* json) { return ParseInto(json, alloc); };
    Value left = parse(R"({"add":[]})"), d2 = parse("{}"), d3 = parse("{}");
    if (full) REQUIRE(reducer->Finalize(left, alloc).ok());
    REQUIRE(reducer->Reduce(left, d2, full, alloc).ok());
    REQUIRE(reducer->Reduce(left, d3, full, alloc).ok());
    Value right = parse(R"({"add":[]})"), e2 = parse("{}"), e3 = parse("{}");
    REQUIRE(reducer->Reduce(e2, e3, false, alloc).ok());
    if (full) REQUIRE(reducer->Finalize(right, alloc).ok());
    REQUIRE(reducer->Reduce(right, e2, full, alloc).ok());
    CHECK(Json(left) == R"({"add":[]})");
    CHECK(Json(right) == Json(left));
  }
  // The property, with empty instructions frequent.
  CheckAssociative("set of strings with empty instructions", R"({"reduce": {"strategy": "set"}})",
                   [](Gen& g) { return g.Chance(30) ? g.Object({}) : StringSet(g); }, 200);
}

TEST_CASE("reduce property: mixed nested schema") {
  CheckAssociative("mixed", kMixedSchema, [](Gen& g) { return MixedDoc(g, 2); }, 400);
}

TEST_CASE("reduce property: a tagged union (oneOf) choosing the root strategy") {
  const char* schema = R"({
    "type": "object",
    "required": ["type"],
    "oneOf": [
      {"properties": {"type": {"const": "reset"}}, "reduce": {"strategy": "lastWriteWins"}},
      {
        "properties": {"type": {"const": "add"}, "n": {"reduce": {"strategy": "sum"}}},
        "reduce": {"strategy": "merge"}
      }
    ],
    "properties": {"type": {"reduce": {"strategy": "firstWriteWins"}}}
  })";
  CheckAssociative("tagged union", schema, [](Gen& g) {
    std::vector<std::pair<std::string, Value>> m;
    m.emplace_back("type", g.Str(g.Chance(25) ? "reset" : "add"));
    m.emplace_back("n", Value(g.Int(0, 9)));
    return g.Object(std::move(m));
  });
}

// ---- the combiner ------------------------------------------------------------------------------

namespace {

constexpr const char* kCombinerSchema = R"({
  "type": "object",
  "reduce": {"strategy": "merge"},
  "properties": {
    "k": {},
    "n": {"reduce": {"strategy": "sum"}},
    "f": {"reduce": {"strategy": "sum"}},
    "m": {"reduce": {"strategy": "maximize"}},
    "tags": {"reduce": {"strategy": "append"}},
    "s": {
      "reduce": {"strategy": "set"},
      "properties": {"add": {"additionalProperties": {"reduce": {"strategy": "sum"}}}}
    },
    "ks": {"reduce": {"strategy": "set", "key": ["/id"]}},
    "o": {"reduce": {"strategy": "merge"}, "additionalProperties": {"reduce": {"strategy": "sum"}}}
  }
})";

// Random documents over `keys` keys (integers and strings), as JSON lines.
std::vector<std::string> CombinerDocs(uint64_t seed, size_t count, int keys) {
  Alloc alloc;
  Gen g(seed, alloc);
  std::vector<std::string> out;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    std::vector<std::pair<std::string, Value>> m;
    int64_t k = g.Int(0, keys - 1);
    m.emplace_back("k", k % 5 == 0 ? g.Str("k" + std::to_string(k)) : Value(k));
    if (g.Chance(60)) m.emplace_back("n", Value(g.Int(-1000, 1000)));
    if (g.Chance(40)) m.emplace_back("f", g.Eighth(4000));
    if (g.Chance(30)) m.emplace_back("m", g.Scalar());
    if (g.Chance(30)) m.emplace_back("tags", IntArray(g, 2));
    if (g.Chance(30)) m.emplace_back("s", MapSet(g, [](Gen& g2) { return Value(g2.Int(1, 3)); }));
    if (g.Chance(20)) {
      m.emplace_back("ks", ArraySet(g, 6, [](Gen& g2, size_t id, bool) {
                       std::vector<std::pair<std::string, Value>> item;
                       item.emplace_back("id", Value(static_cast<int64_t>(id)));
                       item.emplace_back("v", g2.Str(g2.Text()));
                       return g2.Object(std::move(item));
                     }));
    }
    if (g.Chance(30)) {
      std::vector<std::pair<std::string, Value>> o;
      for (const auto& name : g.Names(g.Below(3))) o.emplace_back(name, Value(g.Int(-5, 5)));
      m.emplace_back("o", g.Object(std::move(o)));
    }
    out.push_back(Json(g.Object(std::move(m))));
  }
  return out;
}

// CombinerDocs, each with a member "pad" of `pad` to 2 * `pad` bytes, so that the live
// entries outgrow a few MiB.
std::vector<std::string> PaddedCombinerDocs(uint64_t seed, size_t n, int keys, size_t pad) {
  auto docs = CombinerDocs(seed, n, keys);
  Alloc alloc;
  std::mt19937_64 rng(seed);
  for (auto& text : docs) {
    rapidjson::Document d(&alloc);
    d.Parse<rapidjson::kParseFullPrecisionFlag>(text.c_str());
    std::string filler(pad + rng() % pad, static_cast<char>('a' + rng() % 26));
    d.AddMember("pad",
                Value(filler.c_str(), static_cast<rapidjson::SizeType>(filler.size()), alloc),
                alloc);
    text = Json(d);
  }
  return docs;
}

struct Drained {
  std::string text;        // one JSON line per key
  std::string error;
  reduce::CombinerStats stats;
  uint64_t memory_after = 0;  // Combiner::memory() once drained
  size_t keys = 0;
  bool ordered = true;     // packed keys strictly increasing, and matching the documents
};

// Feeds `docs` (the ones flagged in `fully_reduced` as bases) to a combiner and drains it.
// `scratch`: documents are parsed into the combiner's scratch allocator and added with
// AddScratch (copied in when kept) instead of parsed into its arena.
Drained RunCombiner(const std::shared_ptr<const reduce::Reducer>& reducer, const std::vector<std::string>& docs,
                    const std::vector<bool>& fully_reduced, uint64_t budget, bool full, bool scratch = false) {
  reduce::CombinerOptions options;
  options.memory_budget = budget;
  std::vector<doc::Pointer> key = {Ptr("/k")};
  reduce::Combiner combiner(reducer, key, options);
  Drained out;
  for (size_t i = 0; i < docs.size(); ++i) {
    rapidjson::Document d(scratch ? &combiner.scratch() : &combiner.allocator());
    d.Parse<rapidjson::kParseFullPrecisionFlag>(docs[i].data(), docs[i].size());
    if (d.HasParseError()) {
      out.error = "test input does not parse";
      return out;
    }
    bool base = !fully_reduced.empty() && fully_reduced[i];
    auto r = scratch ? combiner.AddScratch(d, base) : combiner.Add(d, base);
    if (!r.ok()) {
      out.error = r.error().message;
      return out;
    }
  }
  std::string prev;
  auto r = combiner.Drain(full, [&](std::string_view packed, Value& v) -> Result<bool> {
    std::string own;
    doc::PackKey(v, key, &own);
    if (own != packed || (out.keys > 0 && !(prev < packed))) out.ordered = false;
    prev = std::string(packed);
    ++out.keys;
    doc::AppendJson(v, &out.text);
    out.text += "\n";
    return true;
  });
  if (!r.ok()) out.error = r.error().message;
  out.stats = combiner.stats();
  out.memory_after = combiner.memory();
  return out;
}

// The same, folded directly with the reducer per key, in key order.
std::string FoldByKey(const reduce::Reducer& reducer, const std::vector<std::string>& docs,
                      const std::vector<bool>& fully_reduced, bool full) {
  Alloc alloc;
  std::vector<doc::Pointer> key = {Ptr("/k")};
  std::map<std::string, std::pair<Value, bool>> acc;  // packed key -> (doc, is fully reduced)
  for (size_t i = 0; i < docs.size(); ++i) {
    rapidjson::Document d(&alloc);
    d.Parse<rapidjson::kParseFullPrecisionFlag>(docs[i].data(), docs[i].size());
    Value v;
    v = std::move(static_cast<Value&>(d));
    std::string packed;
    doc::PackKey(v, key, &packed);
    bool base = !fully_reduced.empty() && fully_reduced[i];
    auto it = acc.find(packed);
    if (it == acc.end()) {
      acc.emplace(packed, std::make_pair(std::move(v), base));
      continue;
    }
    if (base) FAIL("bases come first for their key");
    auto r = reducer.Reduce(it->second.first, v, it->second.second, alloc);
    if (!r.ok()) FAIL(r.error().message);
  }
  std::string out;
  for (auto& [packed, entry] : acc) {
    if (full && !entry.second) {
      auto r = reducer.Finalize(entry.first, alloc);
      if (!r.ok()) FAIL(r.error().message);
    }
    doc::AppendJson(entry.first, &out);
    out += "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("combiner: spilling under a tiny budget gives byte-identical output") {
  auto reducer = MakeReducer(kCombinerSchema);
  const uint64_t seed = 31337;
  CAPTURE(seed);
  const auto docs = CombinerDocs(seed, 20000, 500);
  // Besides the tiny budget (a spill at every document) and the default one (none), a
  // range of budgets: some spill a few runs of many folded documents, others make the
  // combiner reclaim reduction garbage in memory. All must give the same bytes.
  const uint64_t tiny = 4 << 10;
  const uint64_t budgets[] = {1 << 20, 3 << 20, 8 << 20};
  for (bool full : {true, false}) {
    CAPTURE(full);
    Drained big = RunCombiner(reducer, docs, {}, reduce::CombinerOptions{}.memory_budget, full);
    Drained small = RunCombiner(reducer, docs, {}, tiny, full);
    REQUIRE_MESSAGE(big.error.empty(), big.error);
    REQUIRE_MESSAGE(small.error.empty(), small.error);
    CHECK(big.stats.spills == 0);
    CHECK(small.stats.spills > 0);
    CHECK(big.stats.added == 20000);
    CHECK(small.stats.added == 20000);
    CHECK(big.keys == 500);
    CHECK(small.keys == 500);
    CHECK(big.ordered);
    CHECK(small.ordered);
    CHECK(small.text == big.text);  // byte for byte
    for (uint64_t budget : budgets) {
      CAPTURE(budget);
      Drained mid = RunCombiner(reducer, docs, {}, budget, full);
      REQUIRE_MESSAGE(mid.error.empty(), mid.error);
      CHECK(mid.ordered);
      CHECK(mid.text == big.text);
    }
    CHECK(big.text == FoldByKey(*reducer, docs, {}, full));
    // Through the scratch allocator: the same bytes under every budget (the copies of kept
    // parts must not point into the cleared scratch memory).
    for (uint64_t budget : {reduce::CombinerOptions{}.memory_budget, tiny, uint64_t{1} << 20, uint64_t{3} << 20}) {
      CAPTURE(budget);
      Drained via = RunCombiner(reducer, docs, {}, budget, full, /*scratch=*/true);
      REQUIRE_MESSAGE(via.error.empty(), via.error);
      CHECK(via.ordered);
      CHECK(via.stats.added == 20000);
      CHECK(via.text == big.text);
    }
  }
}

TEST_CASE("combiner: a few spilled runs, each of many documents, merge like memory") {
  // Documents padded so that the live entries outgrow a few MiB: some budget in the range
  // spills a few runs (rather than one per document), mixing in-memory folds and merges.
  auto reducer = MakeReducer(kCombinerSchema);
  const uint64_t seed = 8080;
  CAPTURE(seed);
  auto docs = PaddedCombinerDocs(seed, 6000, 1500, 800);
  for (bool full : {true, false}) {
    CAPTURE(full);
    Drained big = RunCombiner(reducer, docs, {}, reduce::CombinerOptions{}.memory_budget, full);
    REQUIRE_MESSAGE(big.error.empty(), big.error);
    CHECK(big.stats.spills == 0);
    CHECK(big.text == FoldByKey(*reducer, docs, {}, full));
    bool some_mixed = false;
    for (uint64_t budget : {uint64_t{2} << 20, uint64_t{3} << 20, uint64_t{4} << 20, uint64_t{6} << 20}) {
      CAPTURE(budget);
      Drained mid = RunCombiner(reducer, docs, {}, budget, full);
      REQUIRE_MESSAGE(mid.error.empty(), mid.error);
      CHECK(mid.ordered);
      CHECK(mid.text == big.text);
      if (mid.stats.spills > 0 && mid.stats.spills * 20 < docs.size()) some_mixed = true;
    }
    CHECK(some_mixed);
  }
}

TEST_CASE("combiner: an arena moved into huge pages keeps its documents and its budget") {
  // Documents added with AddScratch (the combiner's arena is its own) whose entries outgrow
  // 2 MiB: under a budget of 8 MiB or more the arena moves into a region of huge pages,
  // counted only as far as it is used; under a smaller one it does not. The bytes drained
  // are the same either way, and the same as folding each key directly.
  auto reducer = MakeReducer(kCombinerSchema);
  const uint64_t seed = 4242;
  CAPTURE(seed);
  auto docs = PaddedCombinerDocs(seed, 12000, 3000, 600);
  for (bool full : {true, false}) {
    CAPTURE(full);
    const std::string want = FoldByKey(*reducer, docs, {}, full);
    const uint64_t default_budget = reduce::CombinerOptions{}.memory_budget;
    for (uint64_t budget :
         {default_budget, uint64_t{16} << 20, uint64_t{8} << 20, uint64_t{6} << 20}) {
      CAPTURE(budget);
      Drained got = RunCombiner(reducer, docs, {}, budget, full, /*scratch=*/true);
      REQUIRE_MESSAGE(got.error.empty(), got.error);
      CHECK(got.ordered);
      CHECK(got.text == want);
      if (budget >= (uint64_t{8} << 20)) {
        CHECK(got.stats.huge_pages == std::min<uint64_t>(budget / 2, 256u << 20));
      } else {
        CHECK(got.stats.huge_pages == 0);
      }
      // The region is not counted whole: 3000 keys of about 1.5 KB never reach half the
      // default budget (128 MiB, the size of its region), so nothing is compacted.
      if (budget == default_budget) {
        CHECK(got.stats.peak_memory < (uint64_t{32} << 20));
        CHECK(got.stats.compactions == 0);
        CHECK(got.memory_after < (uint64_t{1} << 20));  // drained: the region counts nothing
      } else {
        CHECK(got.stats.compactions + got.stats.spills > 0);
      }
    }
  }
}

TEST_CASE("combiner: a drain that keeps its documents leaves them valid until the next Add") {
  // A materialization moves the drained documents out instead of copying them: they must
  // stay as drained after the drain ended (the arena in huge pages included), and the next
  // Add must free them and start afresh. A combiner that spilled, or whose allocator was
  // handed out, refuses.
  auto reducer = MakeReducer(kCombinerSchema);
  const uint64_t seed = 977;
  CAPTURE(seed);
  auto docs = PaddedCombinerDocs(seed, 8000, 2000, 600);
  std::vector<doc::Pointer> key = {Ptr("/k")};
  auto add_all = [&](reduce::Combiner& c, const std::vector<std::string>& lines) {
    for (const auto& line : lines) {
      rapidjson::Document d(&c.scratch());
      d.Parse<rapidjson::kParseFullPrecisionFlag>(line.data(), line.size());
      REQUIRE(!d.HasParseError());
      REQUIRE(c.AddScratch(d).ok());
    }
  };
  const std::string want = FoldByKey(*reducer, docs, {}, false);
  reduce::Combiner c(reducer, key, {});
  add_all(c, docs);
  CHECK(c.stats().huge_pages > 0);
  REQUIRE(c.KeepDrained());
  std::vector<Value> moved;
  REQUIRE(c.Drain(false, [&](std::string_view, Value& v) -> Result<bool> {
             moved.push_back(std::move(v));
             return true;
           }).ok());
  CHECK(c.keys() == 0);
  CHECK(c.memory() > (uint64_t{1} << 20));  // the documents are still held
  std::string got;
  for (const auto& v : moved) {
    doc::AppendJson(v, &got);
    got += "\n";
  }
  CHECK(got == want);
  // The next Add frees them: only its own document is drained, and held memory drops.
  add_all(c, {docs[0]});
  CHECK(c.memory() < (uint64_t{1} << 20));
  std::string again;
  REQUIRE(c.Drain(false, [&](std::string_view, Value& v) -> Result<bool> {
             doc::AppendJson(v, &again);
             return true;
           }).ok());
  CHECK(again + "\n" == FoldByKey(*reducer, {docs[0]}, {}, false));
  CHECK(c.memory() < (uint64_t{1} << 20));  // not kept: KeepDrained holds for one drain

  reduce::CombinerOptions tiny;
  tiny.memory_budget = 256 << 10;
  reduce::Combiner spilled(reducer, key, tiny);
  add_all(spilled, docs);
  REQUIRE(spilled.stats().spills > 0);
  CHECK_FALSE(spilled.KeepDrained());
  reduce::Combiner exposed(reducer, key, {});
  static_cast<void>(exposed.allocator());
  CHECK_FALSE(exposed.KeepDrained());

  // A drain that gives nothing (no Add since) leaves what an earlier one kept.
  reduce::Combiner twice(reducer, key, {});
  add_all(twice, docs);
  REQUIRE(twice.KeepDrained());
  moved.clear();
  REQUIRE(twice
              .Drain(false,
                     [&](std::string_view, Value& v) -> Result<bool> {
                       moved.push_back(std::move(v));
                       return true;
                     })
              .ok());
  REQUIRE(twice.Drain(false, [&](std::string_view, Value&) -> Result<bool> { return true; }).ok());
  std::string after;
  for (const auto& v : moved) {
    doc::AppendJson(v, &after);
    after += "\n";
  }
  CHECK(after == want);
  // allocator() frees them first: what is parsed into it survives its Add.
  {
    rapidjson::Document d(&twice.allocator());
    const std::string line =
        R"({"k":"parsed into the allocator","pad":"a string longer than inline ones"})";
    d.Parse(line.data(), line.size());
    REQUIRE(!d.HasParseError());
    REQUIRE(twice.Add(d).ok());
  }
  std::string added;
  REQUIRE(twice
              .Drain(false,
                     [&](std::string_view, Value& v) -> Result<bool> {
                       doc::AppendJson(v, &added);
                       return true;
                     })
              .ok());
  CHECK(added == R"({"k":"parsed into the allocator","pad":"a string longer than inline ones"})");

  // An Add after the grant withdraws it: the drain does not keep (a spill may have come).
  reduce::Combiner late(reducer, key, tiny);
  REQUIRE(late.KeepDrained());
  add_all(late, docs);
  REQUIRE(late.stats().spills > 0);
  REQUIRE(late.Drain(false, [&](std::string_view, Value&) -> Result<bool> { return true; }).ok());
  CHECK(late.memory() < (uint64_t{1} << 20));
}

TEST_CASE("combiner: fully reduced documents are the base for later ones, with or without spilling") {
  auto reducer = MakeReducer(kCombinerSchema);
  const uint64_t seed = 4711;
  CAPTURE(seed);
  const auto deltas = CombinerDocs(seed, 4000, 200);
  // Bases for a third of the keys, each a finalized random document, added just before
  // the first delta of its key; a few bases have no deltas at all.
  const auto base_docs = CombinerDocs(seed + 1, 400, 260);
  Alloc alloc;
  std::map<std::string, std::string> bases;  // /k as JSON -> base document
  for (const auto& text : base_docs) {
    rapidjson::Document d(&alloc);
    d.Parse<rapidjson::kParseFullPrecisionFlag>(text.c_str());
    std::string k = Json(d["k"]);
    if (bases.count(k) || (d["k"].IsInt64() && d["k"].GetInt64() % 3 != 0)) continue;
    Value v;
    v = std::move(static_cast<Value&>(d));
    REQUIRE(reducer->Finalize(v, alloc).ok());
    bases[k] = Json(v);
  }
  std::vector<std::string> docs;
  std::vector<bool> flags;
  std::map<std::string, bool> seen;
  for (const auto& text : deltas) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseFullPrecisionFlag>(text.c_str());
    std::string k = Json(d["k"]);
    if (!seen[k] && bases.count(k)) {
      docs.push_back(bases[k]);
      flags.push_back(true);
    }
    seen[k] = true;
    docs.push_back(text);
    flags.push_back(false);
  }
  size_t alone = 0;
  for (const auto& [k, text] : bases) {
    if (!seen[k]) {
      docs.push_back(text);
      flags.push_back(true);
      ++alone;
    }
  }
  CHECK(alone > 0);
  for (bool full : {true, false}) {
    CAPTURE(full);
    Drained big = RunCombiner(reducer, docs, flags, reduce::CombinerOptions{}.memory_budget, full);
    Drained small = RunCombiner(reducer, docs, flags, 4 << 10, full);
    REQUIRE_MESSAGE(big.error.empty(), big.error);
    REQUIRE_MESSAGE(small.error.empty(), small.error);
    CHECK(big.stats.spills == 0);
    CHECK(small.stats.spills > 0);
    CHECK(big.ordered);
    CHECK(small.ordered);
    CHECK(small.text == big.text);
    CHECK(big.text == FoldByKey(*reducer, docs, flags, full));
    for (uint64_t budget : {reduce::CombinerOptions{}.memory_budget, uint64_t{4 << 10}}) {
      CAPTURE(budget);
      Drained via = RunCombiner(reducer, docs, flags, budget, full, /*scratch=*/true);
      REQUIRE_MESSAGE(via.error.empty(), via.error);
      CHECK(via.text == big.text);
    }
  }
  // A base really is reduced into (full mode), not combined: a set's remove drops members
  // of the base and is not kept.
  auto set_reducer = MakeReducer(R"({"type": "object", "reduce": {"strategy": "merge"},
      "properties": {"s": {"reduce": {"strategy": "set"}}}})");
  for (uint64_t budget : {reduce::CombinerOptions{}.memory_budget, uint64_t{4 << 10}}) {
    CAPTURE(budget);
    std::vector<std::string> input = {R"({"k":1,"s":{"add":{"a":1,"b":1}}})", R"({"k":2,"s":{"add":{"a":1}}})",
                                      R"({"k":1,"s":{"remove":{"a":0}}})", R"({"k":2,"s":{"remove":{"a":0}}})"};
    Drained d = RunCombiner(set_reducer, input, {true, false, false, false}, budget, false);
    REQUIRE_MESSAGE(d.error.empty(), d.error);
    CHECK(d.text == "{\"k\":1,\"s\":{\"add\":{\"b\":1}}}\n{\"k\":2,\"s\":{\"add\":{},\"remove\":{\"a\":0}}}\n");
  }
}

TEST_CASE("combiner: spilled floats come back exactly") {
  // Spilled documents are written as JSON and parsed back; RapidJSON's default (not
  // full-precision) number parsing is off by an ulp for many doubles, which made a
  // spilling combiner's output differ from the in-memory one (fixed in e3f838b). Only
  // lastWriteWins and maximize here: exact under any grouping, unlike sums of floats.
  auto reducer = MakeReducer(R"({"type": "object", "reduce": {"strategy": "merge"},
      "properties": {"x": {"reduce": {"strategy": "maximize"}}, "y": {}}})");
  std::mt19937_64 rng(2718);
  auto random_double = [&] {
    for (;;) {
      double d = std::bit_cast<double>(rng());
      if (std::isfinite(d)) return d;
    }
  };
  std::vector<std::string> docs;
  for (int i = 0; i < 2000; ++i) {
    Value v(rapidjson::kObjectType);
    Alloc alloc;
    v.AddMember("k", Value(i % 50), alloc);
    v.AddMember("x", Value(random_double()), alloc);
    v.AddMember("y", Value(random_double()), alloc);
    docs.push_back(Json(v));
  }
  for (bool full : {true, false}) {
    Drained big = RunCombiner(reducer, docs, {}, reduce::CombinerOptions{}.memory_budget, full);
    Drained small = RunCombiner(reducer, docs, {}, 4 << 10, full);
    REQUIRE(big.error.empty());
    REQUIRE(small.error.empty());
    CHECK(small.stats.spills > 0);
    CHECK(big.text == FoldByKey(*reducer, docs, {}, full));
    // Compare line by line, to show the first difference only.
    auto lines = [](const std::string& text) {
      std::vector<std::string> out;
      for (size_t pos = 0; pos < text.size();) {
        size_t end = text.find('\n', pos);
        out.push_back(text.substr(pos, end - pos));
        pos = end + 1;
      }
      return out;
    };
    auto a = lines(big.text), b = lines(small.text);
    REQUIRE(a.size() == b.size());
    size_t differing = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i] != b[i] && differing++ == 0) CHECK(b[i] == a[i]);
    }
    CHECK(differing == 0);
  }
}

// MergeObjects remembers the order of the last object it reduced in place (per member
// count) and reuses it when the next one names the same members in the same order; every
// other case must come out as if each object were sorted afresh.
TEST_CASE("merge: objects listing their members in another order, or other members, than the one before") {
  auto reducer = MakeReducer(R"({
    "reduce": {"strategy": "merge"},
    "properties": {
      "a": {"reduce": {"strategy": "sum"}},
      "b": {"reduce": {"strategy": "sum"}},
      "c": {"reduce": {"strategy": "sum"}},
      "o": {"reduce": {"strategy": "merge"}, "additionalProperties": {"reduce": {"strategy": "maximize"}}}
    }
  })");
  // Folds `docs` (JSON texts) left to right, as deltas, and gives the result's JSON.
  auto fold = [&](std::vector<std::string> docs) {
    rapidjson::Document arena;
    Value acc;
    for (size_t i = 0; i < docs.size(); ++i) {
      rapidjson::Document d(&arena.GetAllocator());
      d.Parse(docs[i].c_str());
      REQUIRE_MESSAGE(!d.HasParseError(), docs[i]);
      Value v(std::move(static_cast<Value&>(d)));
      if (i == 0) {
        acc = std::move(v);
        continue;
      }
      auto r = reducer->Reduce(acc, v, false, arena.GetAllocator());
      REQUIRE_MESSAGE(r.ok(), r.error().message);
    }
    return Json(acc);
  };
  // The same order again and again (the remembered order is used from the third on).
  CHECK(fold({R"({"b":1,"a":2})", R"({"b":10,"a":20})", R"({"b":100,"a":200})", R"({"b":1000,"a":2000})"}) ==
        R"({"a":2222,"b":1111})");
  // After {"b","a"} was remembered: the other order, then other names of the same count.
  CHECK(fold({R"({"a":1,"b":1})", R"({"b":1,"a":1})", R"({"a":5,"b":7})", R"({"a":1,"c":3})", R"({"c":1,"b":1})"}) ==
        R"({"a":8,"b":10,"c":4})");
  CHECK(fold({R"({"b":1,"a":1})", R"({"b":1,"a":1})", R"({"b":1,"c":1})"}) == R"({"a":2,"b":3,"c":1})");
  // Both sides hold a name twice (a parser that keeps duplicates), after {"b","a"} was
  // remembered: never reduced in place, and the last value of the name counts on each side.
  CHECK(fold({R"({"b":1,"a":1})", R"({"b":1,"a":1})", R"({"b":1,"a":1})"}) == R"({"a":3,"b":3})");
  CHECK(fold({R"({"a":1,"a":2})", R"({"a":10,"a":20})"}) == R"({"a":22})");
  // Objects nested at several depths with as many members each.
  CHECK(fold({R"({"o":{"y":1,"x":2},"a":1})", R"({"o":{"y":1,"x":2},"a":1})", R"({"a":1,"o":{"x":5,"y":6}})",
              R"({"o":{"y":1,"x":1},"a":1})"}) == R"({"a":4,"o":{"x":5,"y":6}})");
  // ... whose members are in another order than their parent's: each level keeps its own.
  CHECK(fold({R"({"o":{"x":1,"y":2},"a":1})", R"({"o":{"x":1,"y":2},"a":1})", R"({"o":{"x":1,"y":2},"a":1})",
              R"({"o":{"x":10,"y":20},"a":100})"}) == R"({"a":103,"o":{"x":10,"y":20}})");
  // A nested object reduced before its parent's other members, in another order.
  CHECK(fold({R"({"o":{"y":2,"x":1},"p":1})", R"({"o":{"y":3,"x":1},"p":2})", R"({"o":{"y":1,"x":5},"p":3})",
              R"({"o":{"y":2,"x":1},"p":4})"}) == R"({"o":{"x":5,"y":3},"p":4})");
  // The same names in the same order under another parent schema (sums at the root,
  // maxima under /o): the schemas remembered for the root's {"b","a"} are not used for /o's.
  CHECK(fold({R"({"b":1,"a":1})", R"({"b":1,"a":1})", R"({"b":1,"a":1})"}) == R"({"a":3,"b":3})");
  CHECK(fold({R"({"o":{"b":1,"a":1},"a":1,"c":1})", R"({"o":{"b":2,"a":2},"a":1,"c":1})",
              R"({"o":{"b":3,"a":1},"a":1,"c":1})"}) == R"({"a":3,"c":3,"o":{"a":2,"b":3}})");
}

// The first merge into an object as it came (a key's first document, members in input order)
// sorts its members in place: the result is what building a sorted object gave, and the
// allocator gives out nothing for it (the old member array was garbage for every key).
TEST_CASE("merge: a first merge into an unsorted object of the same names sorts it in place") {
  auto reducer = MakeReducer(R"({
    "reduce": {"strategy": "merge"},
    "properties": {
      "a": {"reduce": {"strategy": "sum"}},
      "b": {"reduce": {"strategy": "sum"}},
      "z": {"reduce": {"strategy": "maximize"}}
    }
  })");
  rapidjson::Document arena;
  auto parse = [&](const char* text) {
    rapidjson::Document d(&arena.GetAllocator());
    d.Parse(text);
    REQUIRE_MESSAGE(!d.HasParseError(), text);
    return Value(std::move(static_cast<Value&>(d)));
  };
  Value acc = parse(R"({"z":1,"b":2,"a":3,"s":"x"})");
  Value next = parse(R"({"s":"y","a":30,"z":5,"b":20})");
  size_t before = arena.GetAllocator().Size();
  auto r = reducer->Reduce(acc, next, false, arena.GetAllocator());
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(arena.GetAllocator().Size() == before);
  CHECK(Json(acc) == R"({"a":33,"b":22,"s":"y","z":5})");
  // A name twice on the left (a parser that keeps duplicates): its last value counts, as
  // when a new object is built.
  acc = parse(R"({"b":1,"a":1,"a":2})");
  next = parse(R"({"b":5,"a":10,"z":0})");
  r = reducer->Reduce(acc, next, false, arena.GetAllocator());
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(Json(acc) == R"({"a":12,"b":6,"z":0})");
  // Other names than the right's: a new object, sorted, as before.
  acc = parse(R"({"z":1,"c":7})");
  next = parse(R"({"a":1,"b":1})");
  r = reducer->Reduce(acc, next, false, arena.GetAllocator());
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(Json(acc) == R"({"a":1,"b":1,"c":7,"z":1})");
}

// A caller's tag per document (where it was read): drained, each key has the tag of its
// latest document, whether the combiner spilled (runs merged in arrival order) or not; the
// documents are the same as without tags.
TEST_CASE("combiner: each key drains with the tag of its latest document, spilled or not") {
  auto reducer = MakeReducer(kCombinerSchema);
  const auto docs = CombinerDocs(4242, 6000, 300);
  std::vector<doc::Pointer> key = {Ptr("/k")};
  // The expected tags: document i's tag is i + 1; a key's is its last document's.
  std::map<std::string, uint64_t> want;
  {
    rapidjson::Document d;
    for (size_t i = 0; i < docs.size(); ++i) {
      d.Parse<rapidjson::kParseFullPrecisionFlag>(docs[i].data(), docs[i].size());
      std::string packed;
      doc::PackKey(d, key, &packed);
      want[packed] = i + 1;
    }
  }
  const std::string untagged = RunCombiner(reducer, docs, {}, 4 << 10, false).text;
  for (uint64_t budget : {uint64_t{4} << 10, uint64_t{64} << 10, reduce::CombinerOptions{}.memory_budget}) {
    CAPTURE(budget);
    reduce::CombinerOptions options;
    options.memory_budget = budget;
    reduce::Combiner combiner(reducer, key, options);
    rapidjson::Document d;
    for (size_t i = 0; i < docs.size(); ++i) {
      d.Parse<rapidjson::kParseFullPrecisionFlag>(docs[i].data(), docs[i].size());
      std::string packed;
      doc::PackKey(d, key, &packed);
      auto r = combiner.AddCopy(d, packed, reduce::Combiner::KeyHash(packed), i + 1);
      REQUIRE_MESSAGE(r.ok(), r.error().message);
    }
    CHECK((budget == reduce::CombinerOptions{}.memory_budget) == (combiner.stats().spills == 0));
    std::map<std::string, uint64_t> got;
    std::string text;
    for (;;) {
      std::string_view packed;
      Value* v = nullptr;
      uint64_t tag = 0;
      auto r = combiner.DrainNext(false, &packed, &v, &tag);
      REQUIRE_MESSAGE(r.ok(), r.error().message);
      if (!*r) break;
      got[std::string(packed)] = tag;
      doc::AppendJson(*v, &text);
      text += "\n";
    }
    CHECK(got == want);
    CHECK(text == untagged);
  }
}
