// Tests of src/doc: the total order, packed keys, pointers on values, UUIDs, parse limits.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <rapidjson/document.h>

#include "doc/pack.h"
#include "doc/parse.h"
#include "doc/pointer.h"
#include "doc/uuid.h"
#include "doc/value.h"

using namespace flow;
using doc::Value;

namespace {

using Alloc = doc::Allocator;

int Sign(int c) { return c < 0 ? -1 : c > 0 ? 1 : 0; }

// memcmp order with the shorter prefix first.
int ByteOrder(const std::string& a, const std::string& b) {
  size_t n = std::min(a.size(), b.size());
  int c = n ? std::memcmp(a.data(), b.data(), n) : 0;
  if (c) return Sign(c);
  return a.size() < b.size() ? -1 : a.size() > b.size();
}

std::string Json(const Value& v) {
  std::string out;
  doc::AppendJson(v, &out);
  return out;
}

std::string Pack(const Value& v) {
  std::string out;
  doc::PackValue(v, &out);
  return out;
}

std::string Hex(std::string_view s) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 0xf]);
  }
  return out;
}

doc::Pointer Ptr(const char* s) {
  std::string why;
  auto p = doc::Pointer::Parse(s, &why);
  REQUIRE_MESSAGE(p, why);
  return *p;
}

// Parses test input exactly (full-precision floats).
Value Parsed(std::string_view json, Alloc& alloc) {
  rapidjson::Document d(&alloc);
  d.Parse<rapidjson::kParseFullPrecisionFlag>(json.data(), json.size());
  REQUIRE_MESSAGE(!d.HasParseError(), json);
  Value v;
  v = std::move(static_cast<Value&>(d));
  return v;
}

Value Str(std::string_view s, Alloc& alloc) {
  return Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), alloc);
}

Value I64(int64_t x) { return Value(x); }
Value U64(uint64_t x) { return Value(x); }
Value Dbl(double x) { return Value(x); }

// ---- random values --------------------------------------------------------------------

constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

class ValueGen {
 public:
  ValueGen(uint64_t seed, Alloc& alloc) : rng_(seed), alloc_(alloc) {}

  size_t Below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool Chance(int percent) { return Below(100) < static_cast<size_t>(percent); }

  Value Number() {
    static const int64_t ints[] = {
        0, 1, -1, 2, 3, -3, 7, 100, kI64Min, kI64Min + 1, kI64Max, kI64Max - 1,
        (1ll << 53) + 1, (1ll << 53) - 1, (1ll << 53), -(1ll << 53) - 1, -(1ll << 53) + 1,
        (1ll << 62) + 1, -(1ll << 62) - 1, kI64Max - 512, kI64Max - 511, kI64Min + 1023};
    static const uint64_t uints[] = {kU64Max, kU64Max - 1, 1ull << 63, (1ull << 63) + 1, (1ull << 63) + 1024,
                                     kU64Max - 1024, kU64Max - 2048, kU64Max - 2047};
    static const double dbls[] = {0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 2.0, 3.0, 0.1, -0.1,
                                  9007199254740992.0, 9007199254740994.0, -9007199254740992.0,
                                  9223372036854775808.0, -9223372036854775808.0, 9223372036854774784.0,
                                  18446744073709551616.0, 18446744073709549568.0, 4611686018427387904.0,
                                  1e300, -1e300, 5e-324, -5e-324, std::numeric_limits<double>::max(),
                                  -std::numeric_limits<double>::max(), 1e-300, 36893488147419103232.0};
    switch (Below(8)) {
      case 0: return I64(ints[Below(std::size(ints))]);
      case 1: return U64(uints[Below(std::size(uints))]);
      case 2: return Dbl(dbls[Below(std::size(dbls))]);
      case 3: return I64(static_cast<int64_t>(rng_()));
      case 4: return U64(rng_() | (1ull << 63));
      case 5: {  // any finite double
        for (;;) {
          double d = std::bit_cast<double>(rng_());
          if (std::isfinite(d)) return Dbl(d);
        }
      }
      case 6: {  // a double near a big integer, and that integer +-small
        double d = std::ldexp(1.0, static_cast<int>(50 + Below(15)));
        if (Chance(50)) d = -d;
        int64_t off = static_cast<int64_t>(Below(5)) - 2;
        if (Chance(50)) return Dbl(d);
        if (d > 0 && d >= 9223372036854775808.0) {
          if (d >= 18446744073709551616.0) return U64(kU64Max - static_cast<uint64_t>(Below(3)));
          return U64(static_cast<uint64_t>(d) + static_cast<uint64_t>(off + 2));
        }
        if (d < 0 && d <= -9223372036854775808.0) return I64(kI64Min + static_cast<int64_t>(Below(3)));
        return I64(static_cast<int64_t>(d) + off);
      }
      default: return I64(static_cast<int64_t>(Below(7)) - 3);
    }
  }

  std::string RandomString() {
    static const std::string pieces[] = {"a", "b", "z", "ab", std::string("\0", 1), "\x01", "\x7f", "~", "/",
                                         "\xc3\xa9" /* é */, "\xe2\x82\xac" /* € */, "\xef\xbf\xbf" /* U+FFFF */,
                                         "\xf0\x9f\x98\x80" /* 😀 */, " "};
    size_t n = Below(4);
    std::string s;
    for (size_t i = 0; i < n; ++i) s += pieces[Below(std::size(pieces))];
    return s;
  }

  Value Scalar() {
    switch (Below(6)) {
      case 0: return Value();
      case 1: return Value(Chance(50));
      case 2:
      case 3: return Number();
      default: return Str(RandomString(), alloc_);
    }
  }

  Value Any(int depth) {
    size_t k = depth <= 0 ? 0 : Below(10);
    if (k < 6) return Scalar();
    if (k < 8) {
      Value a(rapidjson::kArrayType);
      size_t n = Below(4);
      for (size_t i = 0; i < n; ++i) a.PushBack(Any(depth - 1), alloc_);
      return a;
    }
    Value o(rapidjson::kObjectType);
    static const char* names[] = {"", "a", "b", "ab", "\xc3\xa9", "z"};
    std::vector<std::string> pool(std::begin(names), std::end(names));
    pool.push_back(std::string("\0", 1));
    pool.push_back(std::string("a\0", 2));
    std::shuffle(pool.begin(), pool.end(), rng_);
    size_t n = Below(4);
    for (size_t i = 0; i < n; ++i) o.AddMember(Str(pool[i], alloc_), Any(depth - 1), alloc_);
    return o;
  }

  // A value equal to `v` in the total order with a different representation: integers as
  // floats when exact, -0.0 for 0, objects with their members in another order.
  Value Twin(const Value& v) {
    if (v.IsNumber()) {
      if (doc::IsInteger(v)) {
        double d = v.GetDouble();
        bool exact = v.IsInt64() ? (d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
                                    static_cast<int64_t>(d) == v.GetInt64())
                                 : (d < 18446744073709551616.0 && static_cast<uint64_t>(d) == v.GetUint64());
        if (exact) return Dbl(d == 0 && Chance(50) ? -0.0 : d);
        return Value(v, alloc_);
      }
      double d = v.GetDouble();
      if (d == 0) return Chance(50) ? I64(0) : Dbl(-d);
      if (std::trunc(d) == d && std::fabs(d) < 9223372036854775808.0) return I64(static_cast<int64_t>(d));
      return Dbl(d);
    }
    if (v.IsArray()) {
      Value a(rapidjson::kArrayType);
      for (const auto& item : v.GetArray()) a.PushBack(Twin(item), alloc_);
      return a;
    }
    if (v.IsObject()) {
      std::vector<const Value::Member*> ms;
      for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) ms.push_back(&*it);
      std::shuffle(ms.begin(), ms.end(), rng_);
      Value o(rapidjson::kObjectType);
      for (const auto* m : ms) o.AddMember(Value(m->name, alloc_), Twin(m->value), alloc_);
      return o;
    }
    return Value(v, alloc_);
  }

  std::mt19937_64& rng() { return rng_; }

 private:
  std::mt19937_64 rng_;
  Alloc& alloc_;
};

}  // namespace

// ---- the total order --------------------------------------------------------------------

TEST_CASE("compare: types order null < false < true < numbers < strings < arrays < objects") {
  Alloc alloc;
  std::vector<Value> chain;
  chain.push_back(Value());
  chain.push_back(Value(false));
  chain.push_back(Value(true));
  chain.push_back(Dbl(-1e300));
  chain.push_back(I64(kI64Min));
  chain.push_back(I64(-5));
  chain.push_back(I64(0));
  chain.push_back(Dbl(0.5));
  chain.push_back(I64(1));
  chain.push_back(U64(kU64Max));
  chain.push_back(Dbl(1e300));
  chain.push_back(Str("", alloc));
  chain.push_back(Str("0", alloc));
  chain.push_back(Str("a", alloc));
  chain.push_back(Parsed("[]", alloc));
  chain.push_back(Parsed("[null]", alloc));
  chain.push_back(Parsed("[{}]", alloc));
  chain.push_back(Parsed("{}", alloc));
  chain.push_back(Parsed(R"({"":null})", alloc));
  for (size_t i = 0; i < chain.size(); ++i) {
    for (size_t j = 0; j < chain.size(); ++j) {
      CAPTURE(Json(chain[i]));
      CAPTURE(Json(chain[j]));
      int want = i < j ? -1 : i > j ? 1 : 0;
      CHECK(Sign(doc::Compare(chain[i], chain[j])) == want);
      CHECK(ByteOrder(Pack(chain[i]), Pack(chain[j])) == want);
    }
  }
}

TEST_CASE("compare: numbers by value across integers and floats") {
  struct Case {
    Value a, b;
    int want;
  };
  std::vector<Case> cases;
  auto add = [&](Value a, Value b, int want) { cases.push_back({std::move(a), std::move(b), want}); };
  add(I64(1), Dbl(1.0), 0);
  add(U64(1), Dbl(1.0), 0);
  add(I64(0), Dbl(-0.0), 0);
  add(Dbl(0.0), Dbl(-0.0), 0);
  add(I64(-1), Dbl(-0.5), -1);
  add(I64(2), Dbl(1.5), 1);
  // int64 bounds against the doubles around them.
  add(I64(kI64Min), Dbl(-9223372036854775808.0), 0);
  add(I64(kI64Min), Dbl(-9223372036854777856.0), 1);  // the next double below -2^63
  add(I64(kI64Min + 1), Dbl(-9223372036854775808.0), 1);
  add(I64(kI64Max), Dbl(9223372036854775808.0), -1);  // 2^63 - 1 < 2^63
  add(I64(kI64Max), Dbl(9223372036854774784.0), 1);   // the double below 2^63
  add(U64(1ull << 63), Dbl(9223372036854775808.0), 0);
  add(U64((1ull << 63) + 1), Dbl(9223372036854775808.0), 1);
  add(I64(kI64Max), U64(1ull << 63), -1);
  add(I64(-1), U64(kU64Max), -1);
  add(I64(kI64Min), U64(kU64Max), -1);
  // uint64 max against 2^64 and the double below it.
  add(U64(kU64Max), Dbl(18446744073709551616.0), -1);
  add(U64(kU64Max), Dbl(18446744073709549568.0), 1);
  add(U64(kU64Max - 1), U64(kU64Max), -1);
  // Integers a double cannot hold.
  add(I64(9007199254740993), Dbl(9007199254740992.0), 1);
  add(I64(9007199254740993), Dbl(9007199254740994.0), -1);
  add(I64(9007199254740992), Dbl(9007199254740992.0), 0);
  add(I64(-9007199254740993), Dbl(-9007199254740992.0), -1);
  add(I64(-9007199254740993), Dbl(-9007199254740994.0), 1);
  add(I64(9007199254740993), I64(9007199254740992), 1);
  add(Dbl(1e300), U64(kU64Max), 1);
  add(Dbl(-1e300), I64(kI64Min), -1);
  add(Dbl(5e-324), I64(0), 1);
  add(Dbl(-5e-324), Dbl(-0.0), -1);
  for (auto& c : cases) {
    CAPTURE(Json(c.a));
    CAPTURE(Json(c.b));
    CHECK(Sign(doc::Compare(c.a, c.b)) == c.want);
    CHECK(Sign(doc::Compare(c.b, c.a)) == -c.want);
    CHECK(ByteOrder(Pack(c.a), Pack(c.b)) == c.want);
    if (c.want == 0) CHECK(Hex(Pack(c.a)) == Hex(Pack(c.b)));
  }
}

TEST_CASE("compare: strings by UTF-8 bytes, including non-ASCII and NUL") {
  Alloc alloc;
  // Sorted by UTF-8 bytes. U+FFFF sorts before U+1F600 in UTF-8 (not in UTF-16).
  std::vector<std::string> sorted = {
      "",
      std::string("\0", 1),
      std::string("\0\0", 2),
      "\x01",
      "a",
      std::string("a\0", 2),
      std::string("a\0b", 3),
      "a\x01",
      "ab",
      "b",
      "z",
      "\x7f",
      "\xc3\xa9",          // é
      "\xc3\xa9t\xc3\xa9",  // été
      "\xe2\x82\xac",      // €
      "\xef\xbf\xbf",      // U+FFFF
      "\xf0\x9f\x98\x80",  // U+1F600
  };
  for (size_t i = 0; i < sorted.size(); ++i) {
    for (size_t j = 0; j < sorted.size(); ++j) {
      Value a = Str(sorted[i], alloc), b = Str(sorted[j], alloc);
      CAPTURE(i);
      CAPTURE(j);
      int want = i < j ? -1 : i > j ? 1 : 0;
      CHECK(Sign(doc::Compare(a, b)) == want);
      CHECK(ByteOrder(Pack(a), Pack(b)) == want);
    }
  }
}

// Every pair of `sorted` (ascending, distinct) compares, and packs, in list order.
void CheckSorted(const std::vector<const char*>& sorted, Alloc& alloc) {
  for (size_t i = 0; i < sorted.size(); ++i) {
    for (size_t j = 0; j < sorted.size(); ++j) {
      Value a = Parsed(sorted[i], alloc), b = Parsed(sorted[j], alloc);
      CAPTURE(sorted[i]);
      CAPTURE(sorted[j]);
      int want = i < j ? -1 : i > j ? 1 : 0;
      CHECK(Sign(doc::Compare(a, b)) == want);
      CHECK(ByteOrder(Pack(a), Pack(b)) == want);
    }
  }
}

TEST_CASE("compare: arrays lexicographically, shorter prefix first") {
  Alloc alloc;
  std::vector<const char*> sorted = {
      "[]", "[null]", "[null,null]", "[false]", "[1]", "[1,null]", "[1,2]", "[1.5]", "[2]", "[\"\"]",
      "[[]]", "[[1]]", "[[1,0]]", "[[2]]", "[{}]",
  };
  CheckSorted(sorted, alloc);
  CHECK(doc::Compare(Parsed("[1,2.0,[3]]", alloc), Parsed("[1.0,2,[3.0]]", alloc)) == 0);
}

TEST_CASE("compare: objects by (name, value) pairs in name order, whatever the member order") {
  Alloc alloc;
  std::vector<const char*> sorted = {
      "{}",
      R"({"":1})",
      R"({"a":null})",
      R"({"a":1})",
      R"({"a":1,"b":0})",
      R"({"a":1,"b":1})",
      R"({"a":1,"c":0})",
      R"({"a":2})",
      R"({"a":"x"})",
      R"({"a":[]})",
      R"({"a":{}})",
      R"({"ab":0})",
      R"({"b":0})",
      R"({"é":0})",
  };
  CheckSorted(sorted, alloc);
  Value x = Parsed(R"({"b":2,"a":1,"c":{"y":1,"x":[1]}})", alloc);
  Value y = Parsed(R"({"c":{"x":[1.0],"y":1},"a":1.0,"b":2})", alloc);
  CHECK(doc::Compare(x, y) == 0);
  CHECK(Pack(x) == Pack(y));
  // {"b":1} vs {"a":1,"b":1}: the first pairs are ("b",1) and ("a",1).
  CHECK(doc::Compare(Parsed(R"({"b":1})", alloc), Parsed(R"({"b":1,"a":1})", alloc)) > 0);
}

TEST_CASE("compare at pointers: absent counts as null") {
  Alloc alloc;
  Value a = Parsed(R"({"k":1,"n":{"x":"a"}})", alloc);
  Value b = Parsed(R"({"k":1.0,"n":{"x":"b"},"z":null})", alloc);
  CHECK(doc::CompareAt(a, b, {Ptr("/k")}) == 0);
  CHECK(doc::CompareAt(a, b, {Ptr("/k"), Ptr("/n/x")}) < 0);
  CHECK(doc::CompareAt(a, b, {Ptr("/z")}) == 0);        // absent == null
  CHECK(doc::CompareAt(a, b, {Ptr("/missing")}) == 0);  // both absent
  CHECK(doc::CompareAt(b, a, {Ptr("/n/x"), Ptr("/k")}) > 0);
  CHECK(doc::CompareAt(a, b, {}) == 0);
}

// ---- packed keys --------------------------------------------------------------------------

TEST_CASE("packed values: the documented byte format") {
  Alloc alloc;
  CHECK(Hex(Pack(Value())) == "01");
  CHECK(Hex(Pack(Value(false))) == "02");
  CHECK(Hex(Pack(Value(true))) == "03");
  // 1.0 is 0x3ff0000000000000; positives get the sign bit set.
  CHECK(Hex(Pack(I64(1))) == "04bff000000000000080");
  CHECK(Hex(Pack(Dbl(1.0))) == "04bff000000000000080");
  CHECK(Hex(Pack(I64(0))) == "04800000000000000080");
  CHECK(Hex(Pack(Dbl(-0.0))) == "04800000000000000080");
  // Negatives have every bit flipped: -1.0 is 0xbff0000000000000.
  CHECK(Hex(Pack(I64(-1))) == "04400fffffffffffff80");
  // 2^53+1 rounds to 2^53 (0x4340000000000000), remainder +1 follows tag 81.
  CHECK(Hex(Pack(I64(9007199254740993))) == "04c3400000000000008180000000000000" "01");
  // UINT64_MAX rounds to 2^64 (0x43f0000000000000), remainder -1 follows tag 7f.
  CHECK(Hex(Pack(U64(kU64Max))) == "04c3f00000000000007f7fffffffffffffff");
  CHECK(Hex(Pack(Str(std::string("a\0b", 3), alloc))) == "056100ff620001");
  CHECK(Hex(Pack(Str("", alloc))) == "050001");
  CHECK(Hex(Pack(Parsed(R"([null,true])", alloc))) == "06010300");
  CHECK(Hex(Pack(Parsed(R"({"b":null,"a":false})", alloc))) == "07" "05610001" "02" "05620001" "01" "00");
}

TEST_CASE("packed values: byte order equals the total order over a random corpus") {
  Alloc alloc;
  const uint64_t seed = 20240611;
  CAPTURE(seed);
  ValueGen gen(seed, alloc);
  std::vector<Value> corpus;
  for (int i = 0; i < 360; ++i) corpus.push_back(gen.Any(3));
  // Twins: equal values in another representation.
  for (int i = 0; i < 120; ++i) corpus.push_back(gen.Twin(corpus[gen.Below(corpus.size())]));
  std::vector<std::string> packed;
  for (const auto& v : corpus) packed.push_back(Pack(v));

  size_t mismatches = 0, equal_pairs = 0, pairs = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    for (size_t j = i; j < corpus.size(); ++j) {
      ++pairs;
      int c = Sign(doc::Compare(corpus[i], corpus[j]));
      int rc = Sign(doc::Compare(corpus[j], corpus[i]));
      int p = ByteOrder(packed[i], packed[j]);
      if (c == 0) ++equal_pairs;
      if (c != p || rc != -c || (c == 0 && packed[i] != packed[j])) {
        if (++mismatches <= 5) {
          CAPTURE(Json(corpus[i]));
          CAPTURE(Json(corpus[j]));
          CAPTURE(Hex(packed[i]));
          CAPTURE(Hex(packed[j]));
          CHECK(c == p);
          CHECK(rc == -c);
        }
      }
    }
  }
  CHECK(mismatches == 0);
  CHECK(pairs > 100000);
  CHECK(equal_pairs > 120);  // the twins (and repeated scalars) exercise equality

  // Sorting by packed bytes and by Compare give the same order.
  std::vector<size_t> by_bytes(corpus.size()), by_compare(corpus.size());
  for (size_t i = 0; i < corpus.size(); ++i) by_bytes[i] = by_compare[i] = i;
  std::stable_sort(by_bytes.begin(), by_bytes.end(), [&](size_t a, size_t b) { return packed[a] < packed[b]; });
  std::stable_sort(by_compare.begin(), by_compare.end(),
                   [&](size_t a, size_t b) { return doc::Compare(corpus[a], corpus[b]) < 0; });
  for (size_t i = 0; i < corpus.size(); ++i) {
    CHECK(doc::Compare(corpus[by_bytes[i]], corpus[by_compare[i]]) == 0);
  }
}

TEST_CASE("packed values: equal values pack identically and unpack to equal values") {
  Alloc alloc;
  CHECK(Pack(I64(1)) == Pack(Dbl(1.0)));
  CHECK(Pack(U64(1)) == Pack(Dbl(1.0)));
  CHECK(Pack(I64(0)) == Pack(Dbl(-0.0)));
  CHECK(Pack(U64(1ull << 63)) == Pack(Dbl(9223372036854775808.0)));
  CHECK(Pack(I64(kI64Min)) == Pack(Dbl(-9223372036854775808.0)));
  CHECK(Pack(Parsed(R"({"a":[1,2],"b":"x"})", alloc)) == Pack(Parsed(R"({"b":"x","a":[1.0,2.0]})", alloc)));

  const uint64_t seed = 7;
  CAPTURE(seed);
  ValueGen gen(seed, alloc);
  for (int i = 0; i < 2000; ++i) {
    Value v = gen.Any(3);
    std::string p = Pack(v);
    Value twin = gen.Twin(v);
    CAPTURE(Json(v));
    CHECK(Pack(twin) == p);
    std::string_view in = p;
    Value u;
    REQUIRE(doc::UnpackValue(&in, &u, alloc));
    CHECK(in.empty());
    CHECK(doc::Compare(u, v) == 0);
    CHECK(Pack(u) == p);
  }
  // Integers come back as integers (also from floats that hold them exactly), exact at
  // the edges of the 64-bit range; other floats come back as floats.
  struct RoundTrip {
    Value in;
    const char* json;
  };
  RoundTrip trips[] = {
      {U64(kU64Max), "18446744073709551615"},       {U64(kU64Max - 1), "18446744073709551614"},
      {I64(kI64Min), "-9223372036854775808"},       {I64(kI64Max), "9223372036854775807"},
      {I64(9007199254740993), "9007199254740993"}, {I64(-9007199254740993), "-9007199254740993"},
      {Dbl(2.0), "2"},                              {Dbl(-0.0), "0"},
      {Dbl(0.25), "0.25"},                          {Dbl(1e300), "1e300"},
      {Dbl(18446744073709551616.0), "18446744073709553000.0"},
  };
  for (auto& t : trips) {
    std::string p = Pack(t.in);
    std::string_view in = p;
    Value u;
    REQUIRE(doc::UnpackValue(&in, &u, alloc));
    CHECK(Json(u) == t.json);
  }
  // Malformed input is refused.
  for (std::string bad : {std::string(""), std::string("\x04\x01", 2), std::string("\x05" "ab"),
                          std::string("\x06\x01"), std::string("\x07\x01\x00", 3), std::string("\x09"),
                          std::string("\x05\x00\x02", 3)}) {
    std::string_view in = bad;
    Value u;
    CAPTURE(Hex(bad));
    CHECK_FALSE(doc::UnpackValue(&in, &u, alloc));
  }
}

TEST_CASE("packed keys: composite keys order like CompareAt; absent is null; KeyToJson") {
  Alloc alloc;
  std::vector<doc::Pointer> key = {Ptr("/a"), Ptr("/b/c"), Ptr("/d/0")};
  const uint64_t seed = 99;
  CAPTURE(seed);
  ValueGen gen(seed, alloc);
  std::vector<Value> docs;
  for (int i = 0; i < 300; ++i) {
    Value d(rapidjson::kObjectType);
    if (!gen.Chance(15)) d.AddMember("a", gen.Chance(50) ? gen.Scalar() : I64(static_cast<int64_t>(gen.Below(3))), alloc);
    if (!gen.Chance(15)) {
      Value b(rapidjson::kObjectType);
      if (!gen.Chance(20)) b.AddMember("c", gen.Any(2), alloc);
      d.AddMember("b", b, alloc);
    }
    if (gen.Chance(70)) {
      Value arr(rapidjson::kArrayType);
      size_t n = gen.Below(3);
      for (size_t k = 0; k < n; ++k) arr.PushBack(gen.Scalar(), alloc);
      d.AddMember("d", arr, alloc);
    }
    docs.push_back(std::move(d));
  }
  std::vector<std::string> packed;
  for (const auto& d : docs) {
    std::string p;
    doc::PackKey(d, key, &p);
    packed.push_back(p);
  }
  size_t mismatches = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    for (size_t j = 0; j < docs.size(); ++j) {
      int c = Sign(doc::CompareAt(docs[i], docs[j], key));
      if (c != ByteOrder(packed[i], packed[j]) && ++mismatches <= 5) {
        CAPTURE(Json(docs[i]));
        CAPTURE(Json(docs[j]));
        CHECK(c == ByteOrder(packed[i], packed[j]));
      }
    }
  }
  CHECK(mismatches == 0);

  // Absent components encode as null, exactly.
  Value d = Parsed(R"({"a":"x","b":{"c":1.5},"e":null})", alloc);
  std::string p;
  doc::PackKey(d, {Ptr("/a"), Ptr("/b/c"), Ptr("/missing"), Ptr("/e")}, &p);
  std::string q = Pack(Str("x", alloc)) + Pack(Dbl(1.5)) + Pack(Value()) + Pack(Value());
  CHECK(Hex(p) == Hex(q));
  CHECK(doc::KeyToJson(p) == R"(["x",1.5,null,null])");

  Value e = Parsed(R"({"id":18446744073709551615,"s":"a\u0000é","n":2.0,"o":{"z":[1],"y":true}})", alloc);
  std::string k;
  doc::PackKey(e, {Ptr("/id"), Ptr("/s"), Ptr("/n"), Ptr("/o")}, &k);
  CHECK(doc::KeyToJson(k) == "[18446744073709551615,\"a\\u0000\xc3\xa9\",2,{\"y\":true,\"z\":[1]}]");
  CHECK(doc::KeyToJson("") == "[]");
}

// ---- pointers on values ---------------------------------------------------------------------

TEST_CASE("lookup: RFC 6901 escapes, indices, `-` and leading zeros") {
  Alloc alloc;
  Value d = Parsed(R"({"a/b":1,"m~n":2,"~1":3,"arr":[10,20,{"x":30}],"":4," ":5,"0":6,"01":7,"s":"str"})", alloc);
  auto at = [&](const char* p) -> std::string {
    const Value* v = doc::Lookup(d, Ptr(p));
    return v ? Json(*v) : "absent";
  };
  CHECK(at("/a~1b") == "1");
  CHECK(at("/m~0n") == "2");
  CHECK(at("/~01") == "3");  // `~01` is `~1`, not `~/`
  CHECK(at("/a/b") == "absent");
  CHECK(at("/arr/0") == "10");
  CHECK(at("/arr/1") == "20");
  CHECK(at("/arr/2/x") == "30");
  CHECK(at("/arr/3") == "absent");
  CHECK(at("/arr/-") == "absent");  // the element after the last never exists
  CHECK(at("/arr/01") == "absent");  // leading zero
  CHECK(at("/arr/00") == "absent");
  CHECK(at("/arr/-1") == "absent");
  CHECK(at("/arr/+1") == "absent");
  CHECK(at("/arr/1e0") == "absent");
  CHECK(at("/arr/") == "absent");
  CHECK(at("/arr/99999999999999999999999") == "absent");
  CHECK(at("/") == "4");  // the empty name
  CHECK(at("/ ") == "5");
  CHECK(at("/0") == "6");   // in an object, digits are a name
  CHECK(at("/01") == "7");  // including leading zeros
  CHECK(at("/s/0") == "absent");  // no lookup into a scalar
  CHECK(at("/arr/2/x/y") == "absent");
  CHECK(at("") == Json(d));
  CHECK(doc::Lookup(d, Ptr("")) == &d);

  std::string why;
  CHECK_FALSE(doc::Pointer::Parse("/a~2", &why));
  CHECK_FALSE(doc::Pointer::Parse("/a~", &why));
  CHECK_FALSE(doc::Pointer::Parse("a", &why));
  CHECK(Ptr("/a~1b/~0/0").tokens() == std::vector<std::string>{"a/b", "~", "0"});
  CHECK(Ptr("/a~1b/~0/0").ToString() == "/a~1b/~0/0");
  CHECK(doc::Pointer::AsIndex("0") == size_t{0});
  CHECK(doc::Pointer::AsIndex("10") == size_t{10});
  CHECK_FALSE(doc::Pointer::AsIndex("01"));
  CHECK_FALSE(doc::Pointer::AsIndex("-"));
  CHECK_FALSE(doc::Pointer::AsIndex(""));
}

TEST_CASE("create: missing parents, `-` appends, escapes, and refusals") {
  Alloc alloc;
  Value d;  // null: becomes an object
  auto create = [&](const char* p) { return doc::Create(d, Ptr(p), alloc); };
  Value* v = create("/a/b");
  REQUIRE(v);
  v->SetInt(1);
  CHECK(Json(d) == R"({"a":{"b":1}})");
  CHECK(create("/a/b") == doc::Lookup(d, Ptr("/a/b")));  // existing: returned as is
  CHECK(create("/a/b")->GetInt() == 1);

  REQUIRE(create("/x/-"));  // `-` under a missing parent creates an array
  create("/x/-")->SetInt(2);  // appends again
  CHECK(Json(d) == R"({"a":{"b":1},"x":[null,2]})");
  REQUIRE(create("/x/2"));  // index == size appends
  CHECK(doc::Lookup(d, Ptr("/x"))->Size() == 3);
  CHECK(create("/x/4") == nullptr);   // past the end
  CHECK(create("/x/01") == nullptr);  // leading zero
  CHECK(create("/x/a") == nullptr);   // not an index
  create("/x/0")->SetString("first");  // existing index
  CHECK(Json(*doc::Lookup(d, Ptr("/x"))) == R"(["first",2,null])");

  create("/y/0/z")->SetBool(true);  // `0` under a missing parent creates an array
  create("/y/-/w")->SetBool(false);
  CHECK(Json(*doc::Lookup(d, Ptr("/y"))) == R"([{"z":true},{"w":false}])");

  create("/a~1b")->SetInt(3);
  create("/m~0n/~1")->SetInt(4);
  CHECK(Json(*doc::Lookup(d, Ptr("/a~1b"))) == "3");
  CHECK(Json(*doc::Lookup(d, Ptr("/m~0n"))) == R"({"/":4})");
  CHECK(create("/a/b/c") == nullptr);  // /a/b is a scalar
  CHECK(create("") == &d);

  Value arr = Parsed("[]", alloc);
  REQUIRE(doc::Create(arr, Ptr("/0"), alloc));
  REQUIRE(doc::Create(arr, Ptr("/-"), alloc));
  CHECK(arr.Size() == 2);
  CHECK(doc::Create(arr, Ptr("/name"), alloc) == nullptr);
  CHECK(Json(d) ==
        R"({"a":{"b":1},"x":["first",2,null],"y":[{"z":true},{"w":false}],"a/b":3,"m~n":{"/":4}})");
}

// ---- UUIDs -----------------------------------------------------------------------------------

TEST_CASE("uuid: a known vector computed from the layout") {
  // 2023-11-14T22:13:20Z = 1700000000 s. Ticks of 100 ns since 1582-10-15:
  // 17000000000000000 + 0x01B21DD213814000 = 139192928000000000 = 0x1EE833B04AFC000.
  // time_low 04afc000, time_mid 833b, time_hi_and_version 1|1ee, clock_seq 10|0101|0000000010.
  const int64_t nanos = 1700000000ll * 1000000000ll;
  doc::Clock clock = doc::ClockFromUnixNanos(nanos);
  CHECK(clock == (0x1EE833B04AFC000ull << 4));
  CHECK(doc::ClockToUnixNanos(clock) == nanos);
  doc::Uuid u;
  u.producer.bytes = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab};
  u.clock = clock | 5;
  u.flags = doc::kFlagAckTxn;
  CHECK(doc::FormatUuid(u) == "04afc000-833b-11ee-9402-0123456789ab");
  auto back = doc::ParseUuid("04afc000-833b-11ee-9402-0123456789ab");
  REQUIRE(back);
  CHECK(back->clock == (clock | 5));
  CHECK(back->flags == doc::kFlagAckTxn);
  CHECK(back->producer == u.producer);
  CHECK(doc::ClockToUnixNanos(back->clock) == nanos);  // the sequence is not time

  // The extremes of every field.
  doc::Uuid max;
  max.producer.bytes = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  max.clock = ~doc::Clock{0};
  max.flags = 0x3ff;
  CHECK(doc::FormatUuid(max) == "ffffffff-ffff-1fff-bfff-ffffffffffff");
  doc::Uuid zero;
  CHECK(doc::FormatUuid(zero) == "00000000-0000-1000-8000-000000000000");
  // Flags beyond 10 bits do not leak into the sequence or the variant.
  doc::Uuid wide = zero;
  wide.flags = 0xffff;
  CHECK(doc::FormatUuid(wide) == "00000000-0000-1000-83ff-000000000000");
}

TEST_CASE("uuid: format/parse round trip of producer, clock with sequence, and flags") {
  std::mt19937_64 rng(4242);
  CAPTURE(4242);
  for (int i = 0; i < 2000; ++i) {
    doc::Uuid u;
    u.producer = doc::ProducerId::Random();
    u.clock = rng();  // any clock: 60 bits of ticks, 4 bits of sequence
    u.flags = static_cast<uint16_t>(rng() & 0x3ff);
    std::string text = doc::FormatUuid(u);
    CAPTURE(text);
    REQUIRE(text.size() == 36);
    CHECK(text[8] == '-');
    CHECK(text[13] == '-');
    CHECK(text[18] == '-');
    CHECK(text[23] == '-');
    CHECK(text[14] == '1');  // version 1
    CHECK(std::string("89ab").find(text[19]) != std::string::npos);  // variant 10
    CHECK(std::all_of(text.begin(), text.end(), [](char c) { return c == '-' || (std::isxdigit(c) && !std::isupper(c)); }));
    auto back = doc::ParseUuid(text);
    REQUIRE(back);
    CHECK(back->clock == u.clock);
    CHECK((back->clock & 0xf) == (u.clock & 0xf));
    CHECK(back->flags == u.flags);
    CHECK(back->producer == u.producer);
  }
}

TEST_CASE("uuid: random producers have the multicast bit; clocks increase") {
  std::set<std::array<uint8_t, 6>> seen;
  for (int i = 0; i < 200; ++i) {
    auto p = doc::ProducerId::Random();
    CHECK((p.bytes[0] & 0x01) == 0x01);
    seen.insert(p.bytes);
  }
  CHECK(seen.size() > 190);

  doc::ClockSource source;
  doc::Clock prev = source.Next();
  bool increasing = true;
  for (int i = 0; i < 100000; ++i) {
    doc::Clock c = source.Next();
    if (c <= prev) increasing = false;
    prev = c;
  }
  CHECK(increasing);
  // The clock tracks real time (within a second).
  auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  CHECK(std::llabs(doc::ClockToUnixNanos(source.Next()) - now) < 1000000000ll);

  doc::Clock future = doc::ClockFromUnixNanos(now + 3600ll * 1000000000ll);
  source.AdvanceTo(future);
  CHECK(source.Next() >= future);
  CHECK(source.Next() > future);
}

TEST_CASE("uuid: clock conversions within 100 ns") {
  std::mt19937_64 rng(11);
  std::vector<int64_t> times = {0, 1, 99, 100, 101, -1, -100, -101, 1700000000123456789ll, 4102444800000000000ll,
                                std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()};
  for (int i = 0; i < 10000; ++i) {
    times.push_back(static_cast<int64_t>(rng() % 8000000000000000000ull) - 1000000000000000000ll);
  }
  for (int64_t t : times) {
    CAPTURE(t);
    int64_t back = doc::ClockToUnixNanos(doc::ClockFromUnixNanos(t));
    CHECK(std::llabs(back - t) < 100);
  }
  // Clocks order like times.
  CHECK(doc::ClockFromUnixNanos(1000) < doc::ClockFromUnixNanos(1100));
}

TEST_CASE("uuid: parse rejects non-v1, wrong variant, bad hex and wrong length") {
  const std::string good = "04afc000-833b-11ee-9402-0123456789ab";
  REQUIRE(doc::ParseUuid(good));
  CHECK(doc::ParseUuid("04AFC000-833B-11EE-9402-0123456789AB"));  // hex digits in either case
  auto with = [&](size_t at, char c) {
    std::string s = good;
    s[at] = c;
    return s;
  };
  for (char v : {'0', '2', '3', '4', '5', 'f'}) CHECK_FALSE(doc::ParseUuid(with(14, v)));  // version
  for (char v : {'0', '3', '7', 'c', 'd', 'f'}) CHECK_FALSE(doc::ParseUuid(with(19, v)));  // variant
  for (char v : {'8', '9', 'a', 'b'}) CHECK(doc::ParseUuid(with(19, v)));
  CHECK_FALSE(doc::ParseUuid(with(0, 'g')));
  CHECK_FALSE(doc::ParseUuid(with(35, 'z')));
  CHECK_FALSE(doc::ParseUuid(with(3, ' ')));
  CHECK_FALSE(doc::ParseUuid(with(8, '0')));   // a dash replaced
  CHECK_FALSE(doc::ParseUuid(with(23, ':')));
  CHECK_FALSE(doc::ParseUuid(good.substr(0, 35)));
  CHECK_FALSE(doc::ParseUuid(good + "0"));
  CHECK_FALSE(doc::ParseUuid(""));
  CHECK_FALSE(doc::ParseUuid("04afc000833b11ee94020123456789ab"));
  CHECK_FALSE(doc::ParseUuid("{04afc000-833b-11ee-9402-0123456789a}"));
  CHECK_FALSE(doc::ParseUuid("04afc000-833b-11ee-94020-123456789ab"));  // dash moved
}

// ---- parsing with limits --------------------------------------------------------------------

namespace {

struct Parsing {
  rapidjson::Document doc;
  doc::ParseError error;
  bool ok = false;
};

Parsing ParseText(std::string_view text, doc::ParseLimits limits = {}) {
  Parsing p;
  p.ok = doc::ParseDocument(text, &p.doc, &p.error, limits);
  return p;
}

}  // namespace

TEST_CASE("parse: nesting up to 256 levels") {
  auto nested = [](int depth, bool objects) {
    std::string s;
    for (int i = 0; i < depth; ++i) s += objects ? "{\"a\":" : "[";
    s += "1";
    for (int i = 0; i < depth; ++i) s += objects ? "}" : "]";
    return s;
  };
  for (bool objects : {false, true}) {
    CAPTURE(objects);
    CHECK(ParseText(nested(256, objects)).ok);
    auto p = ParseText(nested(257, objects));
    CHECK_FALSE(p.ok);
    CHECK(p.error.message.find("nested") != std::string::npos);
    CHECK(p.error.message.find("256") != std::string::npos);
    CHECK(p.error.offset == static_cast<size_t>(256 * (objects ? 5 : 1)));  // the 257th opener
  }
  // Mixed, and brackets inside strings do not count.
  std::string mixed;
  for (int i = 0; i < 128; ++i) mixed += "[{\"[{\\\"[\":";
  mixed += "\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"";
  for (int i = 0; i < 128; ++i) mixed += "}]";
  CHECK(ParseText(mixed).ok);
  CHECK(ParseText("[" + mixed + "]").ok == false);
  // A smaller limit.
  doc::ParseLimits limits;
  limits.max_depth = 2;
  CHECK(ParseText("[[1]]", limits).ok);
  CHECK_FALSE(ParseText("[[[1]]]", limits).ok);
  CHECK(ParseText("[[1],[2],{\"a\":1}]", limits).ok);
}

TEST_CASE("parse: integers within the 64-bit range") {
  auto p = ParseText("18446744073709551615");
  REQUIRE(p.ok);
  CHECK(p.doc.IsUint64());
  CHECK(p.doc.GetUint64() == kU64Max);
  p = ParseText("-9223372036854775808");
  REQUIRE(p.ok);
  CHECK(p.doc.IsInt64());
  CHECK(p.doc.GetInt64() == kI64Min);
  CHECK(ParseText("9223372036854775808").doc.IsUint64());
  CHECK(ParseText("[-0, 0, 1, -1, 10000000000000000000]").ok);

  for (const char* bad : {"18446744073709551616", "18446744073709551620", "99999999999999999999",
                          "100000000000000000000", "-9223372036854775809", "-9999999999999999999",
                          "-10000000000000000000", "123456789012345678901234567890"}) {
    CAPTURE(bad);
    auto q = ParseText(bad);
    CHECK_FALSE(q.ok);
    CHECK(q.error.message.find("64-bit") != std::string::npos);
    CHECK(q.error.offset == 0);
  }
  auto q = ParseText(R"({"a": [1, 18446744073709551616]})");
  CHECK_FALSE(q.ok);
  CHECK(q.error.offset == 10);
  CHECK(q.error.message.find("18446744073709551616") != std::string::npos);
  // Digits inside strings are not numbers.
  CHECK(ParseText(R"(["18446744073709551616", "-99999999999999999999"])").ok);
  // Floats may be large.
  CHECK(ParseText("18446744073709551616.0").ok);
  CHECK(ParseText("1e30").ok);
  CHECK(ParseText("-92233720368547758090e-1").ok == true);
}

TEST_CASE("parse: floats with many digits after the point are floats, not integers") {
  // The pre-scan for oversized integers once took the digits of a fraction or an exponent
  // for an integer (fixed in e3f838b). The first text is what AppendJson itself writes
  // for the double -1.4315041174973555e-06.
  std::string own = Json(Value(-1.4315041174973555e-06));
  CHECK(own == "-0.0000014315041174973555");
  for (std::string text : {own, std::string("0.12345678901234567890123"), std::string("3.14159265358979323846"),
                           std::string("0.1000000000000000055511151231257827"),
                           std::string("[0.99999999999999999999]"), std::string("1e-0000000000000000000001"),
                           std::string("-1.0E+0000000000000000000002"), std::string("[1.5e308, -2.5e-308]"),
                           std::string("{\"a\":12345678901234567890.123456789012345678901}")}) {
    CAPTURE(text);
    auto p = ParseText(text);
    CHECK_MESSAGE(p.ok, p.error.message);
  }
  // Integer parts are still checked, after a sign and before a fraction or exponent.
  CHECK(ParseText("1e2").doc.IsDouble());
  CHECK_FALSE(ParseText("[0.5, 18446744073709551616]").ok);
  CHECK_FALSE(ParseText("[1e5,-9223372036854775809]").ok);
}

TEST_CASE("parse: floats are read exactly (round trip of shortest text)") {
  // AppendJson writes the shortest text that reads back as the same double; reading must
  // be correctly rounded for documents to pass through unchanged. RapidJSON's default
  // (not full-precision) number parsing is off by an ulp for about a quarter of doubles
  // (fixed in e3f838b).
  for (std::string text : {"-97570.19231092371", "1.8088101387491814e-140", "2.1805483275354614e-35",
                           "3.936162278297495e69"}) {
    CAPTURE(text);
    auto p = ParseText(text);
    REQUIRE(p.ok);
    CHECK(Json(p.doc) == text);
  }
  std::mt19937_64 rng(5);
  int changed = 0, total = 0;
  for (int i = 0; i < 2000; ++i) {
    double d = std::bit_cast<double>(rng());
    if (!std::isfinite(d)) continue;
    ++total;
    std::string text = Json(Value(d));
    auto p = ParseText(text);
    if (!p.ok || std::bit_cast<uint64_t>(p.doc.GetDouble()) != std::bit_cast<uint64_t>(d)) ++changed;
  }
  CAPTURE(total);
  CHECK(changed == 0);
}

TEST_CASE("parse: numbers RapidJSON 1.1 misreads are read exactly") {
  // RapidJSON 1.1's full-precision slow path turned a zero written with many digits or a
  // large exponent, and 21-digit numbers starting 18446744073709551615, into garbage
  // (`0e-23` into -1.75e-192; undefined behaviour, found by fuzz/doc_parse).
  struct Case {
    const char* text;
    double value;
  };
  for (const Case& c :
       {Case{"0e-23", 0.0}, Case{"-0e300", -0.0}, Case{"0.0e-50", 0.0},
        Case{"0.000000000000000000000000", 0.0}, Case{"0.000000000000000e-9", 0.0},
        Case{"0.184467440737095516159", 0.18446744073709551},
        Case{"1844674407370955161.59e-19", 0.18446744073709551}, Case{"1e-400", 0.0},
        Case{"-1e-400", -0.0}, Case{"2e-324", 0.0}, Case{"3e-324", 4.9406564584124654e-324},
        Case{"1e23", 1e23}, Case{"0.30000000000000004", 0.30000000000000004},
        Case{"1.7976931348623157e308", 1.7976931348623157e308}}) {
    for (bool terminated : {false, true}) {
      CAPTURE(c.text);
      CAPTURE(terminated);
      std::string text =
          std::string("[1, ") + c.text + ", {\"a\": [-0, 18446744073709551615, 2.5]}]";
      Parsing p;
      p.ok = terminated ? doc::ParseTerminatedDocument(text, &p.doc, &p.error)
                        : doc::ParseDocument(text, &p.doc, &p.error);
      REQUIRE_MESSAGE(p.ok, p.error.message);
      REQUIRE(p.doc[1].IsDouble());
      CHECK(std::bit_cast<uint64_t>(p.doc[1].GetDouble()) == std::bit_cast<uint64_t>(c.value));
      // The other numbers of such a document keep their types and values.
      CHECK(Json(p.doc[2]) == "{\"a\":[0,18446744073709551615,2.5]}");
      CHECK(p.doc[2]["a"][0].IsInt());
      CHECK(p.doc[0].IsInt());
    }
  }
  // Beyond the largest double; RapidJSON read the third as infinity, which no JSON holds.
  for (const char* big :
       {"1e400", "-1e400", "1.7976931348623159e308", "-17976931348623159e292", "0.001e312"}) {
    CAPTURE(big);
    auto p = ParseText(std::string("[0.0000000000000000000000001, ") + big + "]");
    CHECK_FALSE(p.ok);
    CHECK(p.error.offset == 30);
    CHECK(p.error.message == "invalid JSON: Number too big to be stored in double.");
  }
  // Up to 19 significant digits RapidJSON's own conversion is kept: it must agree with
  // std::from_chars (correctly rounded) on every slow-path shape of token.
  std::mt19937_64 rng(19);
  int disagreements = 0;
  for (int i = 0; i < 30000 && disagreements < 5; ++i) {
    int digits = 1 + static_cast<int>(rng() % 19);
    std::string mantissa(1, static_cast<char>('1' + rng() % 9));
    for (int k = 1; k < digits; ++k) mantissa += static_cast<char>('0' + rng() % 10);
    std::string token;
    switch (rng() % 3) {
      case 0:
        token = mantissa;
        break;  // an integer part only, then an exponent
      case 1:
        token = "0." + std::string(rng() % 30, '0') + mantissa;
        break;
      default: {
        size_t point = 1 + rng() % mantissa.size();
        token = mantissa.substr(0, point) + "." +
                (point < mantissa.size() ? mantissa.substr(point) : "0");
      }
    }
    if (rng() % 2) token = "-" + token;
    if (token.find('.') == std::string::npos || rng() % 2) {
      token += (rng() % 2 ? "e" : "E") + std::to_string(static_cast<int>(rng() % 660) - 340);
    }
    double want;
    if (std::from_chars(token.data(), token.data() + token.size(), want).ec != std::errc())
      continue;
    auto q = ParseText(token);
    if (!q.ok || !q.doc.IsDouble() ||
        std::bit_cast<uint64_t>(q.doc.GetDouble()) != std::bit_cast<uint64_t>(want)) {
      ++disagreements;
      CAPTURE(token);
      CHECK_MESSAGE(q.ok, q.error.message);
      if (q.ok) CHECK(q.doc.GetDouble() == want);
    }
  }
  CHECK(disagreements == 0);
  // Syntax errors and repeated names are still found in such a document.
  auto p = ParseText("[0e-23, 1,]");
  CHECK_FALSE(p.ok);
  CHECK(p.error.message.rfind("invalid JSON", 0) == 0);
  p = ParseText("{\"a\": 0e-23, \"a\": 1}");
  CHECK_FALSE(p.ok);
  CHECK(p.error.message.find("member name \"a\" is repeated") != std::string::npos);
}

TEST_CASE("parse: what is accepted can be written and read back") {
  // An escaped lone surrogate was accepted and stored as bytes that are not UTF-8 (ED B0
  // 80), which flowctl then wrote out and could not read back (fixed in e3f838b).
  for (std::string text : {R"("\udc00")", R"(["a\udfff"])", R"({"\udc00":1})", R"("\ud800")", R"("\ud83dx")",
                           R"("\ud83d\u0041")", R"("\ud83d\ud83d")"}) {
    CAPTURE(text);
    auto p = ParseText(text);
    CHECK_FALSE(p.ok);
  }
  for (std::string text : {R"("\ud83d\ude00")", R"("\\udc00")", R"("\u00e9\u0000\uffff")", R"("\uDBFF\uDFFF")"}) {
    CAPTURE(text);
    auto p = ParseText(text);
    REQUIRE_MESSAGE(p.ok, p.error.message);
    std::string out = Json(p.doc);
    auto q = ParseText(out);
    CHECK_MESSAGE(q.ok, "written as " << Hex(out) << ": " << q.error.message);
  }
  // Random values: the written text parses back to the same text (numbers of every
  // kind, strings with NUL and non-ASCII, nesting).
  Alloc alloc;
  const uint64_t seed = 1234;
  CAPTURE(seed);
  ValueGen gen(seed, alloc);
  int failures = 0;
  for (int i = 0; i < 3000 && failures < 3; ++i) {
    Value v = gen.Any(4);
    std::string text = Json(v);
    auto p = ParseText(text);
    if (!p.ok || Json(p.doc) != text || doc::Compare(p.doc, v) != 0) {
      ++failures;
      CAPTURE(text);
      CHECK_MESSAGE(p.ok, p.error.message);
      if (p.ok) CHECK(Json(p.doc) == text);
    }
  }
  CHECK(failures == 0);
}

TEST_CASE("parse: NaN and Infinity tokens, invalid UTF-8, trailing garbage, size") {
  for (const char* bad : {"NaN", "Infinity", "-Infinity", "[NaN]", "{\"a\":Infinity}", "nan", "inf", "-inf"}) {
    CAPTURE(bad);
    auto p = ParseText(bad);
    CHECK_FALSE(p.ok);
    CHECK(p.error.message.rfind("invalid JSON", 0) == 0);
  }
  // Invalid UTF-8 inside strings: a stray continuation byte, a truncated sequence, an
  // overlong encoding, 0xff, and a code point above U+10FFFF.
  for (std::string bad : {std::string("\"\x80\""), std::string("\"\xc3\""), std::string("[\"ok\",\"\xc3\x28\"]"),
                          std::string("\"\xc0\xaf\""), std::string("\"\xff\""), std::string("\"\xf4\x90\x80\x80\""),
                          std::string("{\"\xe2\x82\":1}")}) {
    CAPTURE(Hex(bad));
    auto p = ParseText(bad);
    CHECK_FALSE(p.ok);
    CHECK(p.error.message.find("invalid JSON") != std::string::npos);
  }
  CHECK(ParseText("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"").ok);  // valid multi-byte text
  CHECK(ParseText(R"("\ud83d\ude00")").ok);
  CHECK_FALSE(ParseText(R"("\ud83d")").ok);  // an unpaired high surrogate

  // Exactly one value.
  auto p = ParseText("{} x");
  CHECK_FALSE(p.ok);
  CHECK(p.error.offset == 3);
  p = ParseText("1 2");
  CHECK_FALSE(p.ok);
  CHECK(p.error.offset == 2);
  CHECK_FALSE(ParseText("{}{}").ok);
  CHECK_FALSE(ParseText("").ok);
  CHECK_FALSE(ParseText("   ").ok);
  CHECK(ParseText(" {} \n\t").ok);
  // A NUL byte after a complete value ended RapidJSON's input unnoticed: a CSV cell or a
  // request body `{"a":1}<NUL>{"b":2}` read as {"a":1}.
  for (std::string nul : {std::string("{\"a\":1}\0{\"b\":2}", 15), std::string("[1]\0", 4),
                          std::string("\"a\0\"", 4)}) {
    CAPTURE(Hex(nul));
    p = ParseText(nul);
    CHECK_FALSE(p.ok);
    CHECK(p.error.message == "invalid JSON: a NUL byte");
    CHECK(p.error.offset == nul.find('\0'));
  }

  // Size limit: the text length, not the value.
  doc::ParseLimits limits;
  limits.max_bytes = 10;
  CHECK(ParseText("[1,2,3,45]", limits).ok);
  p = ParseText("[1,2,3,4,5]", limits);
  CHECK_FALSE(p.ok);
  CHECK(p.error.message.find("11 bytes") != std::string::npos);
  CHECK_FALSE(ParseText("\"" + std::string(100, 'x') + "\"", limits).ok);
  CHECK(ParseText("[" + std::string(1000, ' ') + "]").ok);  // the default limit is 16 MiB
}

TEST_CASE("parse: errors report the offset of the problem") {
  struct Case {
    const char* text;
    size_t offset;
  };
  Case cases[] = {
      {R"({"a":1,})", 7},        // a name expected
      {R"([1,2,@])", 5},         // a value expected
      {R"({"a" 1})", 5},         // a colon expected
      {R"({"a":1 "b":2})", 7},   // a comma expected
      {R"(["abc)", 1},           // an unterminated string
      {R"(  tru)", 2},           // a bad literal
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    auto p = ParseText(c.text);
    CHECK_FALSE(p.ok);
    CHECK(p.error.message.rfind("invalid JSON: ", 0) == 0);
    CHECK(p.error.message.size() > 20);
    CHECK(p.error.offset >= c.offset);
    CHECK(p.error.offset <= c.offset + 5);
  }
  // A valid document parses into the given Document, integers and floats distinct.
  auto p = ParseText(R"({"i":1,"f":1.0,"u":18446744073709551615,"s":"a\u0000b"})");
  REQUIRE(p.ok);
  CHECK(p.doc["i"].IsInt64());
  CHECK(p.doc["f"].IsDouble());
  CHECK(p.doc["s"].GetStringLength() == 3);
  CHECK(Json(p.doc) == R"({"i":1,"f":1.0,"u":18446744073709551615,"s":"a\u0000b"})");
}

TEST_CASE("copy: a deep copy equals the original and outlives its allocator") {
  std::string long_string(300, 'x');
  std::string text = R"({"n":null,"t":true,"f":false,"i":-7,"u":18446744073709551615,"d":0.1,"short":"abc",)"
                     R"("long":")" + long_string + R"(","emoji":"😀 café","empty":"","a":[1,[2,{"b":[]}],{}],)"
                     R"("o":{"p":{"q":"deep string that is longer than inline"}},"nul":"a\u0000b"})";
  doc::Allocator target;
  Value copy;
  std::string expected;
  {
    doc::Allocator source;
    rapidjson::Document d(&source);
    d.Parse<rapidjson::kParseFullPrecisionFlag>(text.c_str());
    REQUIRE_FALSE(d.HasParseError());
    copy = doc::Copy(d, target);
    expected = Json(d);
    CHECK(doc::Compare(copy, d) == 0);
    // Members keep their order, and a constant string is shared as CopyFrom shares it.
    Value with_const(rapidjson::kObjectType);
    with_const.AddMember("c", rapidjson::StringRef("constant"), source);
    Value c = doc::Copy(with_const, target);
    CHECK(c["c"].GetString() == with_const["c"].GetString());
    source.Clear();  // the copy must not point into the source's memory
  }
  CHECK(Json(copy) == expected);
  CHECK(copy["nul"].GetStringLength() == 3);
  CHECK(copy["long"].GetStringLength() == 300);
  CHECK(copy.MemberBegin()->name == "n");
  // Copies of scalars and empty containers.
  for (const char* s : {"1", "\"\"", "[]", "{}", "null", "-0.0", "1e300"}) {
    CAPTURE(s);
    doc::Allocator a;
    rapidjson::Document d(&a);
    d.Parse<rapidjson::kParseFullPrecisionFlag>(s);
    CHECK(Json(doc::Copy(d, target)) == Json(d));
  }
}

TEST_CASE("copy: AssignString writes over a string's own buffer only, and only when it fits") {
  doc::Allocator a;
  Value longer("a string longer than inline ones", a);  // a buffer of its own
  const char* buffer = longer.GetString();
  Value fits("shorter, not inline", a);
  REQUIRE(doc::AssignString(longer, fits));
  CHECK(longer == fits);
  CHECK(longer.GetStringLength() == fits.GetStringLength());
  CHECK(longer.GetString() == buffer);         // written in place
  Value nul(rapidjson::StringRef("x\0y", 3));  // NUL bytes are characters like any other
  REQUIRE(doc::AssignString(longer, nul));
  CHECK(longer.GetStringLength() == 3);
  CHECK(std::string(longer.GetString(), 3) == std::string("x\0y", 3));
  CHECK(doc::AssignString(longer, Value("", a)));
  CHECK(longer == Value(""));
  // Left alone: a longer string, a non-string, and a target that is not a string with a
  // buffer of its own (inline, constant, or no string at all).
  Value own("twenty-two characters!", a);
  CHECK_FALSE(doc::AssignString(own, Value("twenty-three characters", a)));
  CHECK_FALSE(doc::AssignString(own, Value(7)));
  CHECK(own == Value("twenty-two characters!"));
  Value inline_string("inline", a);
  CHECK_FALSE(doc::AssignString(inline_string, Value("abc", a)));
  const char* text = "a constant string shared with its source";
  Value constant(rapidjson::StringRef(text));
  CHECK_FALSE(doc::AssignString(constant, Value("another", a)));
  CHECK(std::string(text) == "a constant string shared with its source");
  Value number(42);
  CHECK_FALSE(doc::AssignString(number, Value("42", a)));
  CHECK(number.GetInt() == 42);
}

TEST_CASE("copy: AssignInPlace equals Copy, in place where the memory is there") {
  doc::Allocator a;
  auto parse = [&](const char* json) {
    rapidjson::Document d(&a);
    d.Parse(json);
    REQUIRE_FALSE(d.HasParseError());
    return doc::Copy(d, a);
  };
  // An object of the same names in the same order: member by member, in place.
  Value to = parse(R"({"brand":"a long brand name here","last4":"7353","n":1,"o":{"x":null}})");
  const Value::Member* members = &*to.MemberBegin();
  Value from = parse(R"({"brand":"a shorter brand","last4":"0042","n":2.5,"o":{"x":true}})");
  REQUIRE(doc::AssignInPlace(to, from));
  CHECK(to == from);
  CHECK(&*to.MemberBegin() == members);
  // Values that own no memory, into one that owns none.
  Value flat(7);
  REQUIRE(doc::AssignInPlace(flat, Value("inline", a)));
  CHECK(flat == Value("inline"));
  // Otherwise false: the caller copies (`to` may have been partly overwritten).
  for (const char* other :
       {R"({"brand":"x","last4":"y","n":1})",         // fewer members
        R"({"last4":"y","brand":"x","n":1,"o":{}})",  // another order
        R"({"brand":"a brand name far longer than the first","last4":"y","n":1,"o":{}})",
        R"([1,2])", R"("a heap string, not an object")"}) {
    CAPTURE(other);
    Value target =
        parse(R"({"brand":"a long brand name here","last4":"7353","n":1,"o":{"x":null}})");
    Value source = parse(other);
    if (!doc::AssignInPlace(target, source)) target = doc::Copy(source, a);
    CHECK(target == source);
  }
  Value owner = parse(R"("a string with a buffer of its own")");
  CHECK_FALSE(doc::AssignInPlace(owner, Value(1)));  // its buffer would be dropped unseen
}

TEST_CASE("parse stored documents: syntax errors, NUL bytes and arbitrarily deep nesting") {
  auto stored = [](const std::string& text) {
    rapidjson::Document d;
    doc::ParseError e;
    bool ok = doc::ParseStoredDocument(text, &d, &e);
    return std::make_pair(ok, e);
  };
  CHECK(stored(R"({"a":[1,2,{"b":"c"}]})").first);
  auto bad = stored(R"({"a":[1,2})");
  CHECK_FALSE(bad.first);
  CHECK(bad.second.message.rfind("invalid JSON: ", 0) == 0);
  auto nul = stored(std::string("{\"a\":1}\0{", 9));
  CHECK_FALSE(nul.first);
  CHECK(nul.second.message.find("NUL") != std::string::npos);
  // Short texts take the recursive parser (they cannot nest past 256); long ones the
  // iterative one, so a tampered lake file nested 100,000 deep is an error or a value,
  // never a stack overflow.
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  CHECK(stored(deep).first);
  CHECK_FALSE(stored(std::string(100000, '[')).first);
  std::string long_doc = R"({"pad":")" + std::string(1000, 'p') + R"(","x":1})";
  CHECK(stored(long_doc).first);
  // Texts simdjson does not take (over 64 KiB, or refused) are read by RapidJSON, whose 1.1
  // misreads some float tokens (with undefined behaviour): those are read exactly, and the
  // other numbers keep their types.
  for (bool fast : {true, false}) {
    doc::SetFastParse(fast);
    for (size_t pad : {size_t{10}, size_t{70000}}) {
      CAPTURE(fast);
      CAPTURE(pad);
      std::string text =
          R"({"pad":")" + std::string(pad, 'p') +
          R"(","z":[0e-23,-0e300,0.184467440737095516159,1.5,-7,18446744073709551615]})";
      rapidjson::Document d;
      doc::ParseError e;
      REQUIRE_MESSAGE(doc::ParseStoredDocument(text, &d, &e), e.message);
      CHECK(Json(d["z"]) == "[0.0,-0.0,0.1844674407370955,1.5,-7,18446744073709551615]");
      CHECK(d["z"][4].IsInt());
    }
    doc::SetFastParse(true);
  }
  // What earlier versions stored is read as before: a lone surrogate escape was stored as
  // bytes that are not UTF-8.
  auto lone = stored("{\"a\":\"\xed\xb0\x80\",\"b\":0e-23}");
  CHECK_MESSAGE(lone.first, lone.second.message);
}

TEST_CASE("parse: the simdjson path and RapidJSON accept, refuse and read the same texts") {
  // The parsers try simdjson first and fall back to RapidJSON on what it refuses
  // (SetFastParse turns the first off). Random documents, and the same mutated toward the
  // edges where the two libraries differ (numbers past 64 bits or a double, -0, lone
  // surrogates, invalid UTF-8, NUL, repeated names, trailing garbage, deep nesting), must
  // give the same verdict, the same located message and the same values, types included
  // (as written: 1 and 1.0 differ).
  struct Parsed {
    bool ok = false;
    size_t offset = 0;
    std::string message, json;
  };
  auto parse = [](const std::string& text, bool fast, bool stored) {
    doc::SetFastParse(fast);
    rapidjson::Document d;
    d.Parse("[");  // a document used before, whose last parse failed
    doc::ParseError e;
    bool ok = stored ? doc::ParseStoredDocument(text, &d, &e) : doc::ParseDocument(text, &d, &e);
    doc::SetFastParse(true);
    return Parsed{ok, ok ? 0 : e.offset, ok ? "" : e.message, ok ? Json(d) : ""};
  };
  static const std::string edges[] = {"-0",
                                      "-0.0",
                                      "18446744073709551615",
                                      "18446744073709551616",
                                      "-9223372036854775808",
                                      "-9223372036854775809",
                                      "4294967295",
                                      "4294967296",
                                      "-2147483648",
                                      "-2147483649",
                                      "1e400",
                                      "-1e-400",
                                      "1.7976931348623157e308",
                                      "5e-324",
                                      "1E+2",
                                      "0.1e-5",
                                      R"("\udc00")",
                                      R"("\ud800")",
                                      R"("\ud83d\ude00")",
                                      R"("\u0000")",
                                      "\"\xc3\"",
                                      "\"\xed\xa0\x80\"",
                                      "\"\x01\"",
                                      std::string("\"\0\"", 3),
                                      "[1] x",
                                      " ",
                                      R"({"a":1,"a":2})",
                                      "[[[[[[[[",
                                      "]]]]",
                                      "nul",
                                      "tru",
                                      "NaN",
                                      "Infinity",
                                      "01",
                                      "1.",
                                      ".5",
                                      "\t\n\r ",
                                      ",",
                                      "\xef\xbb\xbf" /* a byte order mark */,
                                      "\f",
                                      "\v",
                                      "[1,]",
                                      "{\"a\":1,}",
                                      "+1",
                                      "1e",
                                      "\"\\a\"",
                                      "truex"};
  Alloc alloc;
  const uint64_t seed = 20261207;
  CAPTURE(seed);
  ValueGen gen(seed, alloc);
  auto& rng = gen.rng();
  int fast_hits = 0, failures = 0;
  for (int i = 0; i < 6000 && failures < 3; ++i) {
    std::string text = Json(gen.Any(5));
    switch (rng() % 4) {
      case 0:
        break;   // as written
      case 1: {  // an edge token put in at a random place
        std::string edge = edges[rng() % std::size(edges)];
        text.insert(rng() % (text.size() + 1), edge);
        break;
      }
      case 2: {  // an edge token replacing a scalar's place: a whole document, or in an array
        std::string edge = edges[rng() % std::size(edges)];
        text = rng() % 2 ? edge : "[" + text + "," + edge + "]";
        break;
      }
      default:  // a byte changed, or the text cut short
        if (rng() % 2 && !text.empty()) {
          text[rng() % text.size()] = static_cast<char>(rng() % 256);
        } else {
          text.resize(rng() % (text.size() + 1));
        }
    }
    // ParseDocument on the text; ParseStoredDocument on it, when ParseDocument accepts it
    // (simdjson also reads some texts RapidJSON refuses, such as 0e400, which is zero), and
    // on what flowctl would store of it.
    Parsed slow = parse(text, false, false), fast = parse(text, true, false);
    if (fast.ok) ++fast_hits;
    Parsed stored_slow, stored_fast;
    if (slow.ok) {
      stored_slow = parse(text, false, true), stored_fast = parse(text, true, true);
      CHECK(stored_slow.json == slow.json);
      Parsed again_slow = parse(slow.json, false, true), again_fast = parse(slow.json, true, true);
      CHECK(again_slow.ok);
      CHECK(again_fast.json == slow.json);
      CHECK(again_slow.json == slow.json);
    }
    if (slow.ok != fast.ok || slow.offset != fast.offset || slow.message != fast.message ||
        slow.json != fast.json || stored_slow.ok != stored_fast.ok ||
        stored_slow.offset != stored_fast.offset || stored_slow.message != stored_fast.message ||
        stored_slow.json != stored_fast.json) {
      ++failures;
      CAPTURE(Hex(text));
      CHECK(slow.ok == fast.ok);
      CHECK(slow.offset == fast.offset);
      CHECK(slow.message == fast.message);
      CHECK(slow.json == fast.json);
      CHECK(stored_slow.ok == stored_fast.ok);
      CHECK(stored_slow.offset == stored_fast.offset);
      CHECK(stored_slow.message == stored_fast.message);
      CHECK(stored_slow.json == stored_fast.json);
    }
  }
  // Stored texts simdjson refuses go to RapidJSON, which accepts some (it does not check
  // UTF-8 there) and refuses others with its located message.
  for (std::string text :
       {std::string("\"\xff\""), std::string(R"("\udc00")"), std::string("[1,\"a\0\"]", 7),
        std::string(300, '[') + std::string(300, ']'), std::string(R"({"a":1,"a":2})"),
        std::string("[1] x"), std::string("18446744073709551616")}) {
    CAPTURE(Hex(text));
    Parsed slow = parse(text, false, true), fast = parse(text, true, true);
    CHECK(slow.ok == fast.ok);
    CHECK(slow.offset == fast.offset);
    CHECK(slow.message == fast.message);
    CHECK(slow.json == fast.json);
  }
  CHECK(failures == 0);
  CHECK(fast_hits > 2000);  // the fast path parsed many of them
}

TEST_CASE("parse: a repeated member name is invalid JSON, located") {
  // Issue 16: validation saw the first `amount`, lambdas and DuckDB the last.
  auto p = ParseText(R"({"id":1,"amount":5,"amount":1000000})");
  REQUIRE_FALSE(p.ok);
  CHECK(p.error.message.find("invalid JSON") == 0);
  CHECK(p.error.message.find("\"amount\"") != std::string::npos);
  CHECK(p.error.message.find("at /amount") != std::string::npos);
  CHECK(p.error.offset == 19);  // the second "amount"
  // At any depth, in arrays, with escapes that spell the same name, and the pointer escapes
  // `/` and `~`.
  struct Case {
    std::string text, pointer;
    size_t offset;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"a":{"b":[1,{"x":1, "y":2,  "x":3}]}})", "/a/b/1/x", 29},
           {R"([{}, [{"k":1}], {"k":1,"k":1}])", "/2/k", 23},
           {R"({"a/b~c":1,"a/b~c":2})", "/a~1b~0c", 11},
           {"{\"\\u0061\":1,\"a\":2}", "/a", 12},
           {R"({"":1,"":2})", "/", 6},
           {R"({"x":{"":{}},"y":{"q":[{"r":1,"s":2,"r":[]}]}})", "/y/q/0/r", 36},
       }) {
    CAPTURE(c.text);
    auto q = ParseText(c.text);
    REQUIRE_FALSE(q.ok);
    CHECK(q.error.message.find("at " + c.pointer + ":") != std::string::npos);
    CHECK(q.error.offset == c.offset);
    CHECK(c.text[q.error.offset] == '"');
    // The NUL-terminated entry point finds the same.
    rapidjson::Document d;
    doc::ParseError e;
    CHECK_FALSE(doc::ParseTerminatedDocument(c.text, &d, &e));
    CHECK(e.offset == c.offset);
  }
  // Large objects (sorted, not pairwise): a repeat among 1000 names, first and last.
  std::string big = "{";
  for (int i = 0; i < 1000; ++i) big += fmt::format("\"k{}\":{},", i, i);
  auto ok = ParseText(big + "\"z\":0}");
  CHECK_MESSAGE(ok.ok, ok.error.message);
  auto rep = ParseText(big + "\"k0\":0}");
  REQUIRE_FALSE(rep.ok);
  CHECK(rep.error.message.find("at /k0:") != std::string::npos);
  CHECK(rep.error.offset == big.size());
  // Equal values under distinct names, and the same name in distinct objects, are fine.
  for (std::string text : {R"({"a":1,"b":1})", R"([{"a":1},{"a":1}])", R"({"a":{"a":{"a":1}},"b":{"a":2}})",
                           R"({"a":1,"A":2,"a ":3,"\u00e9":4,"e\u0301":5})"}) {
    CAPTURE(text);
    auto q = ParseText(text);
    CHECK_MESSAGE(q.ok, q.error.message);
  }
}
