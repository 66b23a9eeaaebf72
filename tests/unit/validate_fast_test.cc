// The validation fast path (schema/fast_check.h) against plain valijson: for the reduction
// cases' schemas, the golden catalog's schemas and seeded random schemas, documents derived
// from each schema and mutated (wrong types, bounds, missing and extra properties, long and
// unicode strings, big integers, -0, 1.0 vs 1, repeated names, `_meta`) must get the same
// verdict from Validator (fast path, then valijson) as from valijson alone. The fast path may
// only ever say "valid" when valijson does.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <rapidjson/pointer.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "base/files.h"
#include "catalog/yaml_reader.h"
#include "catalog_scratch.h"
#include "doc/node.h"
#include "schema/bundle.h"
#include "schema/index.h"
#include "schema/validator.h"

namespace {

using namespace flow;
using rapidjson::Document;
using rapidjson::Value;
using Alloc = Document::AllocatorType;

struct Tally {
  size_t docs = 0, valid = 0, fast = 0;
};

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}
  size_t Below(size_t n) { return n ? std::uniform_int_distribution<size_t>(0, n - 1)(rng_) : 0; }
  bool Chance(int percent) { return Below(100) < static_cast<size_t>(percent); }

  std::string Str(size_t len) {
    static const char* const kPieces[] = {"a", "b", "z", "0", "9", "-",
                                          " ", "é", "€", "😀", "_", "x"};
    std::string s;
    for (size_t i = 0; i < len; ++i) s += Chance(85) ? kPieces[Below(5)] : kPieces[Below(12)];
    return s;
  }

  // An unusual value: the edges valijson and the fast path must agree on.
  void Odd(Value* out, Alloc& a) {
    switch (Below(22)) {
      case 0:
        out->SetNull();
        break;
      case 1:
        out->SetBool(Chance(50));
        break;
      case 2:
        out->SetInt(0);
        break;
      case 3:
        out->SetDouble(-0.0);
        break;
      case 4:
        out->SetDouble(1.0);
        break;
      case 5:
        out->SetInt(1);
        break;
      case 6:
        // Beyond int64 (an integer `multipleOf` takes the exact remainder of a double:
        // scripts/patches/valijson-multipleof-double.patch).
        out->SetDouble(Chance(50) ? 9.3e18 : 3e20);
        break;
      case 7:
        out->SetInt(-1);
        break;
      case 8:
        out->SetInt64(INT64_MAX);
        break;
      case 9:
        out->SetUint64(UINT64_MAX);
        break;
      case 10:
        out->SetDouble(1.5);
        break;
      case 11:
        out->SetString("", a);
        break;
      case 12:
        out->SetString(Str(1 + Below(3)).c_str(), a);
        break;
      case 13:
        out->SetString(Str(40 + Below(40)).c_str(), a);
        break;
      case 14:
        out->SetString(std::string("a\0b", 3).c_str(), 3, a);
        break;
      case 15:
        out->SetArray();
        break;
      case 16:
        out->SetObject();
        break;
      case 17: {
        out->SetArray();
        Value inner(rapidjson::kArrayType);
        inner.PushBack(Value(2), a);
        out->PushBack(Value(1), a).PushBack(inner, a);
        break;
      }
      case 18:
        out->SetString("12", a);
        break;
      case 19:
        out->SetInt64(INT64_MIN);
        break;
      case 20:
        out->SetDouble(0.1 * static_cast<double>(Below(100)));
        break;
      default:
        out->SetString("\xC0\x80\xFF\x80\x80\x80\x80\x80\x80z", a);
        break;
    }
  }

  // A document shaped like `schema` (valid more often than not), resolving $refs in `root`.
  void FromSchema(const Value& root, const Value& schema, int depth, Value* out, Alloc& a) {
    if (depth > 6 || !schema.IsObject()) {
      Odd(out, a);
      return;
    }
    if (auto r = schema.FindMember("$ref"); r != schema.MemberEnd() && r->value.IsString()) {
      std::string ref(r->value.GetString() + 1, r->value.GetStringLength() - 1);
      rapidjson::Pointer p(ref.c_str());
      const Value* t = p.IsValid() ? p.Get(root) : nullptr;
      if (t) return FromSchema(root, *t, depth + 1, out, a);
      Odd(out, a);
      return;
    }
    auto m = [&](const char* k) -> const Value* {
      auto it = schema.FindMember(k);
      return it == schema.MemberEnd() ? nullptr : &it->value;
    };
    if (const Value* c = m("const"); c && Chance(90)) return out->CopyFrom(*c, a), void();
    if (const Value* e = m("enum"); e && e->IsArray() && !e->Empty() && Chance(90)) {
      out->CopyFrom((*e)[static_cast<rapidjson::SizeType>(Below(e->Size()))], a);
      return;
    }
    for (const char* k : {"allOf", "anyOf", "oneOf"}) {
      if (const Value* l = m(k); l && l->IsArray() && !l->Empty() && Chance(60)) {
        return FromSchema(root, (*l)[static_cast<rapidjson::SizeType>(Below(l->Size()))], depth + 1,
                          out, a);
      }
    }
    std::string type;
    if (const Value* t = m("type")) {
      if (t->IsString()) type = t->GetString();
      if (t->IsArray() && !t->Empty() && (*t)[0].IsString()) {
        type = (*t)[static_cast<rapidjson::SizeType>(Below(t->Size()))].GetString();
      }
    } else if (m("properties") || m("required") || m("additionalProperties")) {
      type = "object";
    } else if (m("items")) {
      type = "array";
    }
    auto num = [&](const char* k, double dflt) {
      const Value* v = m(k);
      return v && v->IsNumber() ? v->GetDouble() : dflt;
    };
    if (type == "object") {
      out->SetObject();
      if (const Value* ps = m("properties"); ps && ps->IsObject()) {
        for (const auto& p : ps->GetObject()) {
          if (!Chance(80)) continue;
          Value v;
          FromSchema(root, p.value, depth + 1, &v, a);
          out->AddMember(Value(p.name, a), v, a);
        }
      }
      if (const Value* rs = m("required"); rs && rs->IsArray()) {
        for (const auto& r : rs->GetArray()) {
          if (r.IsString() && !out->HasMember(r)) out->AddMember(Value(r, a), Value(1), a);
        }
      }
      if (const Value* ap = m("additionalProperties"); ap && ap->IsObject() && Chance(50)) {
        Value v;
        FromSchema(root, *ap, depth + 1, &v, a);
        out->AddMember(Value(("extra" + std::to_string(Below(3))).c_str(), a), v, a);
      }
    } else if (type == "array") {
      out->SetArray();
      size_t n = Below(4);
      const Value* items = m("items");
      for (size_t i = 0; i < n; ++i) {
        Value v;
        const Value* s = items;
        if (items && items->IsArray())
          s = i < items->Size() ? &(*items)[static_cast<rapidjson::SizeType>(i)] : nullptr;
        if (s) {
          FromSchema(root, *s, depth + 1, &v, a);
        } else {
          Odd(&v, a);
        }
        out->PushBack(v, a);
      }
    } else if (type == "integer") {
      double lo = num("minimum", -50), hi = num("maximum", 50);
      out->SetInt64(static_cast<int64_t>(
          lo + static_cast<double>(Below(static_cast<size_t>(std::max(1.0, hi - lo + 1))))));
    } else if (type == "number") {
      double lo = num("minimum", -50), hi = num("maximum", 50);
      out->SetDouble(lo + (hi - lo) * static_cast<double>(Below(1000)) / 1000.0);
    } else if (type == "string") {
      out->SetString(Str(static_cast<size_t>(num("minLength", 0)) + Below(6)).c_str(), a);
    } else if (type == "boolean") {
      out->SetBool(Chance(50));
    } else if (type == "null") {
      out->SetNull();
    } else {
      Odd(out, a);
    }
  }

  // Mutates one location of `v` (a random walk from the root).
  void Mutate(Value* v, Alloc& a) {
    while (true) {
      if (v->IsObject() && v->MemberCount() > 0 && Chance(60)) {
        auto it = v->MemberBegin() + static_cast<ptrdiff_t>(Below(v->MemberCount()));
        if (Chance(30)) {
          switch (Below(4)) {
            case 0:
              v->EraseMember(it);
              return;
            case 1: {  // a repeated name
              Value copy(it->value, a);
              v->AddMember(Value(it->name, a), copy, a);
              return;
            }
            case 2: {
              Value x;
              Odd(&x, a);
              v->AddMember(Value(("extra" + std::to_string(Below(3))).c_str(), a), x, a);
              return;
            }
            default:
              Odd(&it->value, a);
              return;
          }
        }
        v = &it->value;
      } else if (v->IsArray() && !v->Empty() && Chance(60)) {
        if (Chance(20)) {
          Value x;
          Odd(&x, a);
          v->PushBack(x, a);
          return;
        }
        v = &(*v)[static_cast<rapidjson::SizeType>(Below(v->Size()))];
      } else {
        Odd(v, a);
        return;
      }
    }
  }

 private:
  std::mt19937_64 rng_;
};

// Checks one document both ways (and with a `_meta` added when it is an object).
void Agree(const schema::Validator& v, Document& d, const std::string& what, Tally* t) {
  bool slow = v.ValijsonAccepts(d);
  bool fast = v.FastPathAccepts(d, false);
  ++t->docs;
  t->valid += slow;
  t->fast += fast;
  if (fast && !slow)
    FAIL_CHECK(what << ": the fast path accepts a document valijson rejects: " << doc::JsonText(d));
  CHECK(v.IsValid(d) == slow);
  if (d.IsObject() && !d.HasMember("_meta")) {
    // Validate ignores a top-level _meta: its verdict is valijson's on the document without.
    d.AddMember("_meta", Value(rapidjson::kObjectType).AddMember("uuid", "u", d.GetAllocator()),
                d.GetAllocator());
    bool with_meta = v.Validate(d, d.GetAllocator()).empty();
    if (with_meta != slow)
      FAIL_CHECK(what << ": with _meta, Validate says " << with_meta << ": " << doc::JsonText(d));
    if (v.FastPathAccepts(d, true) && !slow)
      FAIL_CHECK(what << ": the fast path skips _meta wrongly");
    d.RemoveMember("_meta");
  }
}

// Derives `n` documents from `bundle` (and from `seeds`) and checks each.
void Exercise(const Value& bundle, const std::vector<const Value*>& seeds, size_t n, Gen& g,
              const std::string& what, Tally* t) {
  auto compiled = schema::Validator::Compile(bundle);
  REQUIRE_MESSAGE(compiled, what);
  const auto& v = *compiled.value();
  const Value& root = bundle;
  for (size_t i = 0; i < n; ++i) {
    Document d;
    if (!seeds.empty() && g.Chance(40)) {
      d.CopyFrom(*seeds[g.Below(seeds.size())], d.GetAllocator());
    } else {
      g.FromSchema(root, root, 0, &d, d.GetAllocator());
    }
    Agree(v, d, what, t);
    for (size_t k = 0, m = 1 + g.Below(3); k < m; ++k) {
      g.Mutate(&d, d.GetAllocator());
      Agree(v, d, what, t);
    }
  }
}

// A random schema of the keywords collections use, some the fast path delegates, and
// `$ref`s into `$defs` (recursive ones too); the bundle form {"$ref": "#/$defs/s0", ...}.
class SchemaGen {
 public:
  explicit SchemaGen(Gen& g) : g_(g) {}

  std::string Bundle() {
    std::string defs;
    for (int i = 0; i < 3; ++i) defs += fmt::format("{}\"s{}\": {}", i ? "," : "", i, Schema(0));
    return fmt::format("{{\"$ref\": \"#/$defs/s0\", \"$defs\": {{{}}}}}", defs);
  }

 private:
  // `consumed`: the schema applies below its $defs entry's own value (under properties or
  // items), so a $ref here cannot close a cycle that consumes no input (valijson would
  // follow one without end; builds refuse them).
  std::string Schema(int depth, bool consumed = false) {
    if (depth > 3 || (depth > 0 && g_.Chance(8))) {
      switch (g_.Below(4)) {
        case 0:
          return "true";
        case 1:
          return g_.Chance(20) ? "false" : "{}";
        default:
          return consumed ? fmt::format("{{\"$ref\": \"#/$defs/s{}\"}}", g_.Below(3)) : "{}";
      }
    }
    std::vector<std::string> kw;
    static const char* const kTypes[] = {"object", "array",   "string", "integer",
                                         "number", "boolean", "null"};
    std::string type = kTypes[g_.Below(depth == 0 ? 1 : 7)];
    if (g_.Chance(85)) {
      kw.push_back(g_.Chance(85)
                       ? fmt::format("\"type\": \"{}\"", type)
                       : fmt::format("\"type\": [\"{}\", \"{}\"]", type, kTypes[g_.Below(7)]));
    }
    if (type == "object") {
      std::string props;
      size_t n = 1 + g_.Below(5);
      std::vector<std::string> names;
      for (size_t i = 0; i < n; ++i) {
        names.push_back(std::string(1, static_cast<char>('a' + g_.Below(8))));
        props += fmt::format("{}\"{}\": {}", i ? "," : "", names.back(), Schema(depth + 1, true));
      }
      kw.push_back(fmt::format("\"properties\": {{{}}}", props));
      if (g_.Chance(60))
        kw.push_back(fmt::format("\"required\": [\"{}\"]", names[g_.Below(names.size())]));
      if (g_.Chance(30))
        kw.push_back(g_.Chance(50) ? "\"additionalProperties\": false"
                                   : "\"additionalProperties\": " + Schema(depth + 1, true));
      if (g_.Chance(10)) kw.push_back(fmt::format("\"minProperties\": {}", g_.Below(3)));
      if (g_.Chance(10)) kw.push_back(fmt::format("\"maxProperties\": {}", 1 + g_.Below(4)));
      if (g_.Chance(5)) kw.push_back("\"patternProperties\": {\"^x\": {\"type\": \"string\"}}");
      if (g_.Chance(5)) kw.push_back("\"dependencies\": {\"a\": [\"b\"]}");
    } else if (type == "array") {
      if (g_.Chance(75)) {
        kw.push_back("\"items\": " + Schema(depth + 1, true));
      } else {
        kw.push_back(
            fmt::format("\"items\": [{}, {}]", Schema(depth + 1, true), Schema(depth + 1, true)));
        if (g_.Chance(50))
          kw.push_back("\"additionalItems\": " +
                       (g_.Chance(50) ? "false" : Schema(depth + 1, true)));
      }
      if (g_.Chance(20)) kw.push_back(fmt::format("\"minItems\": {}", g_.Below(3)));
      if (g_.Chance(20)) kw.push_back(fmt::format("\"maxItems\": {}", 1 + g_.Below(4)));
      if (g_.Chance(8)) kw.push_back("\"uniqueItems\": true");
      if (g_.Chance(5)) kw.push_back("\"contains\": {\"type\": \"integer\"}");
    } else if (type == "string") {
      if (g_.Chance(30)) kw.push_back(fmt::format("\"minLength\": {}", g_.Below(4)));
      if (g_.Chance(30)) kw.push_back(fmt::format("\"maxLength\": {}", 1 + g_.Below(8)));
      if (g_.Chance(15))
        kw.push_back(g_.Chance(50) ? "\"pattern\": \"^[a-z]+$\"" : "\"pattern\": \"é|0\"");
      if (g_.Chance(10)) kw.push_back("\"enum\": [\"a\", \"b\", \"é\", 1, null]");
      if (g_.Chance(8)) kw.push_back("\"format\": \"date-time\"");
    } else if (type == "integer" || type == "number") {
      static const char* const kBounds[] = {"minimum", "maximum", "exclusiveMinimum",
                                            "exclusiveMaximum"};
      for (const char* b : kBounds) {
        if (g_.Chance(25))
          kw.push_back(fmt::format(
              "\"{}\": {}", b,
              g_.Chance(70) ? fmt::format("{}", static_cast<int>(g_.Below(20)) - 5) : "0.5"));
      }
      if (g_.Chance(15)) kw.push_back(g_.Chance(50) ? "\"multipleOf\": 3" : "\"multipleOf\": 0.25");
      if (g_.Chance(10)) kw.push_back("\"enum\": [0, 1, 1.0, 2.5, -0, 9223372036854775807]");
      if (g_.Chance(5)) kw.push_back("\"const\": 1");
    }
    if (g_.Chance(10)) kw.push_back("\"allOf\": [" + Schema(depth + 1, consumed) + "]");
    if (g_.Chance(10))
      kw.push_back("\"anyOf\": [" + Schema(depth + 1, consumed) + ", " +
                   Schema(depth + 1, consumed) + "]");
    if (g_.Chance(5))
      kw.push_back("\"oneOf\": [" + Schema(depth + 1, consumed) + ", " +
                   Schema(depth + 1, consumed) + "]");
    if (g_.Chance(3)) kw.push_back("\"not\": {\"type\": \"null\"}");
    if (g_.Chance(5)) kw.push_back("\"const\": {\"a\": [1, \"x\"]}");
    if (g_.Chance(10)) kw.push_back("\"title\": \"t\", \"reduce\": {\"strategy\": \"merge\"}");
    std::string out = "{";
    for (size_t i = 0; i < kw.size(); ++i) out += (i ? ", " : "") + kw[i];
    return out + "}";
  }
  Gen& g_;
};

// Bundles `schema` (a YAML/JSON node) as the catalog does.
Document BundleOf(const std::string& url, const doc::Node& schema, schema::Index* index) {
  index->AddResource(url, &schema);
  std::vector<schema::MissingResource> missing;
  schema::SchemaLoc loc{&schema, url, "", url};
  index->IndexSchema(loc, &missing);
  return schema::BundleSchema(*index, loc);
}

}  // namespace

TEST_CASE("validation fast path agrees with valijson: random schemas and mutated documents") {
  Gen g(20260419);
  Tally t;
  size_t with_fast = 0, schemas = 400;
  for (size_t i = 0; i < schemas; ++i) {
    SchemaGen sg(g);
    Document bundle;
    std::string text = sg.Bundle();
    bundle.Parse(text.c_str());
    REQUIRE_MESSAGE(!bundle.HasParseError(), text);
    auto v = schema::Validator::Compile(bundle);
    if (!v) continue;  // e.g. a $ref cycle that consumes no input
    with_fast += v.value()->HasFastPath();
    Exercise(bundle, {}, 20, g, "random schema " + text, &t);
  }
  MESSAGE(
      fmt::format("{} documents, {} valid, {} accepted by the fast path; {} of {} schemas with one",
                  t.docs, t.valid, t.fast, with_fast, schemas));
  CHECK(t.docs >= 20000);
  CHECK(t.valid * 8 >= t.docs);  // a fair share of valid documents, so both verdicts are tested
  CHECK(t.fast * 2 >= t.valid);  // and the fast path answers for most of them
}

TEST_CASE("validation fast path agrees with valijson: the reduction cases' schemas") {
  Gen g(7);
  Tally t;
  auto dir = std::filesystem::path(FLOWCTL_SOURCE_DIR) / "testdata" / "reductions";
  size_t cases = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    auto text = ReadFile(entry.path().string());
    REQUIRE(text);
    Diagnostics diags;
    auto file =
        catalog::ReadYaml(text.value(), "file:///" + entry.path().filename().string(), &diags);
    REQUIRE(file);
    const doc::Node* list = file->Find("cases");
    REQUIRE(list);
    size_t i = 0;
    for (const auto& c : list->items()) {
      const doc::Node* schema = c.Find("schema");
      const doc::Node* documents = c.Find("documents");
      if (!schema) continue;
      schema::Index index;
      std::string url =
          fmt::format("file:///reductions/{}/{}.schema.json", entry.path().stem().string(), i++);
      Document bundle = BundleOf(url, *schema, &index);
      if (!schema::Validator::Compile(bundle)) continue;  // cases about schemas that do not compile
      std::vector<Document> seeds;
      if (documents && documents->is_array()) {
        for (const auto& d : documents->items()) {
          seeds.emplace_back();
          d.ToJson(&seeds.back(), seeds.back().GetAllocator());
        }
      }
      std::vector<const Value*> seed_ptrs;
      for (auto& s : seeds) seed_ptrs.push_back(&s);
      Exercise(bundle, seed_ptrs, 40, g, url, &t);
      ++cases;
    }
  }
  MESSAGE(fmt::format("{} cases, {} documents, {} valid, {} accepted by the fast path", cases,
                      t.docs, t.valid, t.fast));
  CHECK(cases > 50);
  CHECK(t.fast > 0);
}

TEST_CASE("validation fast path agrees with valijson: the golden catalog's schemas") {
  std::string root = std::string(FLOWCTL_SOURCE_DIR) + "/testdata/golden";
  catalog::Fetcher fetcher(
      {{"https://example.com/", root + "/remote/"}, {"file:///flowctl-golden/", root + "/"}});
  Diagnostics diags;
  auto loaded = catalog::LoadCatalog(FileUrl(root + "/flow.yaml"), &fetcher, &diags);
  REQUIRE(loaded);
  catalog::Built built;
  catalog::CheckCatalog(*loaded, &built, &diags);
  std::vector<std::string> bundles;
  for (const auto& c : built.collections) bundles.push_back(c.bundle);
  for (const auto& d : built.derivations) {
    if (!d.register_bundle.empty()) bundles.push_back(d.register_bundle);
  }
  REQUIRE(bundles.size() >= 3);
  // The golden data's customers are seeds for every schema.
  std::vector<Document> seeds;
  std::ifstream in(root + "/data/customers.jsonl");
  for (std::string line; std::getline(in, line);) {
    seeds.emplace_back();
    seeds.back().Parse(line.c_str());
    REQUIRE_FALSE(seeds.back().HasParseError());
  }
  std::vector<const Value*> seed_ptrs;
  for (auto& s : seeds) seed_ptrs.push_back(&s);
  Gen g(11);
  Tally t;
  for (const auto& text : bundles) {
    Document bundle;
    bundle.Parse(text.c_str());
    REQUIRE_FALSE(bundle.HasParseError());
    Exercise(bundle, seed_ptrs, 400, g, "golden bundle", &t);
  }
  MESSAGE(fmt::format("{} bundles, {} documents, {} valid, {} accepted by the fast path",
                      bundles.size(), t.docs, t.valid, t.fast));
  CHECK(t.fast > 0);
}

TEST_CASE("validation fast path: errors stay valijson's, and `_meta` is ignored") {
  Document bundle;
  bundle.Parse(
      R"({"$ref": "#/$defs/s0", "$defs": {"s0": {"type": "object", "additionalProperties": false,
    "required": ["id"], "properties": {"id": {"type": "string", "pattern": "^[a-z]+$"},
    "n": {"type": "integer", "minimum": 0}, "kind": {"oneOf": [{"const": "a"}, {"const": "b"}]}}}}})");
  auto v = schema::Validator::Compile(bundle).value();
  REQUIRE(v->HasFastPath());
  Document d;
  d.Parse(R"({"id": "abc", "n": 3, "_meta": {"uuid": "x"}})");
  CHECK(v->FastPathAccepts(d, true));
  CHECK_FALSE(v->FastPathAccepts(d, false));  // closed: _meta is an extra property
  CHECK(v->Validate(d, d.GetAllocator()).empty());
  CHECK(doc::JsonText(d) == R"({"id":"abc","n":3,"_meta":{"uuid":"x"}})");
  d.Parse(R"({"id": "abc", "kind": "b"})");  // oneOf: delegated to valijson, for that property only
  CHECK(v->FastPathAccepts(d, true));
  d.Parse(R"({"id": "ABC", "n": -1})");
  auto errors = v->Validate(d, d.GetAllocator());
  auto specific = schema::MostSpecific(errors);
  REQUIRE(specific.size() == 2);
  CHECK(specific[0].pointer == "/id");
  CHECK(specific[0].message == "Failed to match regex specified by 'pattern' constraint.");
  CHECK(specific[1].pointer == "/n");
}
