#include "doc/parse.h"

#include <fmt/format.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/writer.h>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "base/strings.h"

namespace flow::doc {
namespace {

// Length of the UTF-8 sequence at p (RFC 3629: no overlongs, surrogates or code points
// above U+10FFFF), or 0 when it is invalid.
size_t Utf8Sequence(const unsigned char* p, size_t avail) {
  unsigned char c = p[0];
  auto cont = [&](size_t i, unsigned char lo = 0x80, unsigned char hi = 0xbf) {
    return i < avail && p[i] >= lo && p[i] <= hi;
  };
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c == 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c == 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

// The value of 4 hex digits at p[i..], or 0x10000 when they are not hex digits.
unsigned Hex4(const unsigned char* p, size_t i, size_t n) {
  if (i + 4 > n) return 0x10000;
  unsigned v = 0;
  for (size_t k = i; k < i + 4; ++k) {
    int d = HexDigit(static_cast<char>(p[k]));
    if (d < 0) return 0x10000;
    v = v * 16 + static_cast<unsigned>(d);
  }
  return v;
}

// True if any byte of the 8-byte word is '"', '\\' or non-ASCII.
inline bool Special(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
  auto zero_byte = [](uint64_t x) { return (x - kOnes) & ~x & kHighs; };
  return ((zero_byte(w ^ (kOnes * '"')) | zero_byte(w ^ (kOnes * '\\'))) | (w & kHighs)) != 0;
}

// ---- numbers RapidJSON 1.1 reads wrongly ------------------------------------------------
//
// Full precision (every double reads back as written) makes RapidJSON convert a float
// whose digits exceed 2^53 or whose decimal exponent passes ±22 with DiyFp arithmetic
// (internal/strtod.h). In 1.1, Debian 12's version, that returns garbage when its 64-bit
// significand is zero: all digits zero (`0e-23` gives -1.75e-192, `-0e300` 2.2e-75,
// `0.000000000000000000000000` -2.2e-193), or 21 significant digits starting
// 18446744073709551615 rounding it past 2^64 (`0.184467440737095516159` gives -6.5e-201):
// __builtin_clzll(0), undefined behaviour (found by fuzz/doc_parse and fuzz/csv_feed under
// UBSan; fixed upstream after 1.1, Tencent/rapidjson#1441 and #2326). A document where the
// prescan sees a zero that may take that path, or a float of more than 19 significant
// digits, is therefore parsed with its numbers as strings, which ReadNumber converts with
// std::from_chars (exactly). So is one near the largest double: RapidJSON reads
// `1.7976931348623159e308`, which rounds past it, as infinity, which no JSON text can
// hold; ReadNumber refuses it as too big. Every other document keeps the DOM parse: the
// shortest text of a double (17 digits at most, what JavaScript and flowctl write) comes
// near none of these cases, and tests/unit/doc_test.cc checks RapidJSON against
// std::from_chars on random tokens of up to 19 digits.
constexpr size_t kFastPathPower = 22;  // 10^22 is the largest power of ten a double holds exactly
constexpr size_t kSignificandDigits = 19;  // fewer cannot overflow DiyFp's 64-bit significand
constexpr size_t kLargestPower = 308;      // digits + exponent beyond: maybe beyond DBL_MAX

// One pass over the bytes: nesting depth, UTF-8 validity inside strings, integer tokens
// that do not fit 64 bits (RapidJSON would silently turn them into floats), and whether a
// number may take RapidJSON's full-precision slow path (sets `*exact_numbers`, see below).
// With `strict` false only the last: the stored-document parser's use (see there), which
// refuses nothing.
bool Prescan(std::string_view t, const ParseLimits& limits, ParseError* error, bool* exact_numbers,
             bool strict = true) {
  const auto* p = reinterpret_cast<const unsigned char*>(t.data());
  int depth = 0;
  size_t i = 0, n = t.size();
  while (i < n) {
    unsigned char c = p[i];
    if (c == '"') {
      ++i;
      for (;;) {
        while (i + 8 <= n) {
          uint64_t w;
          std::memcpy(&w, p + i, 8);
          if (Special(w)) break;
          i += 8;
        }
        if (i >= n) break;
        c = p[i];
        if (c == '"') {
          ++i;
          break;
        }
        if (c == '\\') {
          if (strict && i + 1 < n && p[i + 1] == 'u') {
            // A surrogate escape must be a high one followed by a low one (RapidJSON would
            // store a lone one as bytes that are not UTF-8).
            unsigned cp = Hex4(p, i + 2, n);
            if (cp >= 0xdc00 && cp <= 0xdfff) {
              *error = {i, "invalid JSON: a lone low surrogate escape"};
              return false;
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
              unsigned low = i + 7 < n && p[i + 6] == '\\' && p[i + 7] == 'u' ? Hex4(p, i + 8, n) : 0;
              if (low < 0xdc00 || low > 0xdfff) {
                *error = {i, "invalid JSON: a high surrogate escape without its low surrogate"};
                return false;
              }
              i += 6;
            }
          }
          i += 2;
        } else if (c >= 0x80 && strict) {
          size_t len = Utf8Sequence(p + i, n - i);
          if (!len) {
            *error = {i, "invalid JSON: invalid UTF-8 in a string"};
            return false;
          }
          i += len;
        } else {
          ++i;
        }
      }
      continue;
    }
    if (c == '{' || c == '[') {
      if (++depth > limits.max_depth && strict) {
        *error = {i, fmt::format("the document is nested deeper than {} levels", limits.max_depth)};
        return false;
      }
    } else if (c == '}' || c == ']') {
      --depth;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      size_t start = i;
      bool negative = c == '-';
      if (negative) ++i;
      size_t digits = i;
      while (i < n && p[i] >= '0' && p[i] <= '9') ++i;
      size_t len = i - digits;
      bool integer = !(i < n && (p[i] == '.' || p[i] == 'e' || p[i] == 'E'));
      if (!integer) {
        // Digits (of the integer part and the fraction), those from the first non-zero one,
        // and the exponent's value (capped): what decides RapidJSON's path (see above).
        size_t count = len, significant = 0;
        for (size_t k = digits; k < digits + len; ++k) {
          if (significant || p[k] != '0') ++significant;
        }
        if (i < n && p[i] == '.') {
          for (++i; i < n && p[i] >= '0' && p[i] <= '9'; ++i) {
            ++count;
            if (significant || p[i] != '0') ++significant;
          }
        }
        size_t exponent = 0;
        if (i < n && (p[i] == 'e' || p[i] == 'E')) {
          ++i;
          if (i < n && (p[i] == '+' || p[i] == '-')) ++i;
          for (; i < n && p[i] >= '0' && p[i] <= '9'; ++i) {
            exponent = std::min<size_t>(exponent * 10 + (p[i] - '0'), 1000);
          }
        }
        if ((significant == 0 && count + exponent > kFastPathPower) ||
            significant > kSignificandDigits || count + exponent > kLargestPower) {
          *exact_numbers = true;
        }
      }
      // Skip what is left of the token (in invalid JSON, which the parser then reports).
      while (i < n && ((p[i] >= '0' && p[i] <= '9') || p[i] == '.' || p[i] == 'e' || p[i] == 'E' ||
                       p[i] == '+' || p[i] == '-')) {
        ++i;
      }
      if (integer && len >= 19 && strict) {
        std::string_view d = t.substr(digits, len);
        bool too_big = negative ? (len > 19 || d > "9223372036854775808")
                                : (len > 20 || (len == 20 && d > "18446744073709551615"));
        if (too_big) {
          *error = {start, fmt::format("integer {} is outside the 64-bit range", t.substr(start, i - start))};
          return false;
        }
      }
      continue;
    } else if (c >= 0x80 && strict) {
      *error = {i, "invalid JSON: a byte outside a string that is not ASCII"};
      return false;
    }
    ++i;
  }
  return true;
}

// ---- repeated member names ----------------------------------------------------------------
//
// A document whose object repeats a member name is ambiguous: validation would see one
// value, a lambda or a database another (SPEC 1.4). The parsed DOM is checked, which is
// cheap (names are compared only within objects of two or more members: small ones pairwise,
// larger ones sorted); only when a repeat is found is the text read again to locate it.

constexpr size_t kPairwiseNames = 16;  // objects up to this size compare names pairwise

// True if an object anywhere in `v` (an object or an array) repeats a member name.
bool RepeatsName(const rapidjson::Value& v) {
  if (v.IsArray()) {
    for (const auto& item : v.GetArray()) {
      if ((item.IsObject() || item.IsArray()) && RepeatsName(item)) return true;
    }
    return false;
  }
  auto begin = v.MemberBegin(), end = v.MemberEnd();
  size_t n = static_cast<size_t>(end - begin);
  if (n > kPairwiseNames) {
    thread_local std::vector<std::string_view> names;
    names.clear();
    for (auto m = begin; m != end; ++m) names.emplace_back(m->name.GetString(), m->name.GetStringLength());
    std::sort(names.begin(), names.end());
    if (std::adjacent_find(names.begin(), names.end()) != names.end()) return true;
    for (auto m = begin; m != end; ++m) {
      if ((m->value.IsObject() || m->value.IsArray()) && RepeatsName(m->value)) return true;
    }
    return false;
  }
  // Names of different lengths differ; equal lengths (rarer) are compared in full.
  uint32_t lengths[kPairwiseNames];
  for (size_t i = 0; i < n; ++i) {
    const auto& m = begin[i];
    uint32_t len = lengths[i] = m.name.GetStringLength();
    for (size_t j = 0; j < i; ++j) {
      if (lengths[j] == len && std::memcmp(begin[j].name.GetString(), m.name.GetString(), len) == 0) return true;
    }
    if ((m.value.IsObject() || m.value.IsArray()) && RepeatsName(m.value)) return true;
  }
  return false;
}

std::string PointerToken(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

// Reads the text again to find the first repeated member name: its byte offset (of its
// opening quote), the name and the JSON pointer of the member.
struct RepeatLocator : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, RepeatLocator> {
  struct Frame {
    explicit Frame(bool o) : object(o) {}
    bool object;
    size_t index = 0;                       // arrays: of the element being read
    std::unordered_set<std::string> names;  // objects: the names so far
    std::string key;                        // objects: the member being read
  };
  explicit RepeatLocator(const rapidjson::MemoryStream& s) : stream(s) {}

  void Ended() {
    if (!frames.empty() && !frames.back().object) ++frames.back().index;
    last_end = stream.Tell();
  }
  bool Default() {
    Ended();
    return true;
  }
  bool StartObject() {
    frames.emplace_back(true);
    last_end = stream.Tell();
    return true;
  }
  bool StartArray() {
    frames.emplace_back(false);
    last_end = stream.Tell();
    return true;
  }
  bool EndObject(rapidjson::SizeType) { return EndArray(0); }
  bool EndArray(rapidjson::SizeType) {
    frames.pop_back();
    Ended();
    return true;
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    Frame& f = frames.back();
    f.key.assign(s, n);
    if (f.names.insert(f.key).second) {
      last_end = stream.Tell();
      return true;
    }
    found = true;
    for (const auto& frame : frames) {
      pointer += '/';
      pointer += frame.object ? PointerToken(frame.key) : std::to_string(frame.index);
    }
    return false;
  }

  const rapidjson::MemoryStream& stream;
  std::vector<Frame> frames;
  size_t last_end = 0;  // where the last event ended: only blanks and a comma before a key
  bool found = false;
  std::string pointer;
};

void LocateRepeat(std::string_view text, ParseError* error) {
  rapidjson::MemoryStream stream(text.data(), text.size());
  RepeatLocator locator(stream);
  rapidjson::Reader reader;
  // Numbers as strings: their values do not matter here, and RapidJSON's full-precision
  // conversion is what the DOM parse avoided for some of them (see ParseExactNumbers).
  reader.Parse<rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseIterativeFlag>(stream,
                                                                                       locator);
  if (!locator.found) {  // cannot happen: the DOM held a repeat
    *error = {0, "invalid JSON: an object repeats a member name"};
    return;
  }
  size_t quote = text.find('"', locator.last_end);
  *error = {quote == std::string_view::npos ? locator.last_end : quote,
            fmt::format("invalid JSON: member name {} is repeated at {}: an object may give each name once",
                        JsonQuote(Truncate(locator.frames.back().key, 64)), locator.pointer)};
}

}  // namespace

namespace {

// Whether a float token std::from_chars found out of range (so its value rounds to zero or
// to infinity) is too big: the decimal exponent of its first significant digit tells, the
// two limits being 630 orders of magnitude apart.
bool Overflows(std::string_view t) {
  size_t i = !t.empty() && t[0] == '-' ? 1 : 0;
  long magnitude = 0;  // of the first significant digit, plus one
  bool significant = false;
  for (; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i) {
    significant = significant || t[i] != '0';
    if (significant) ++magnitude;
  }
  if (i < t.size() && t[i] == '.') {
    for (++i; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i) {
      if (!significant && t[i] == '0') --magnitude;
      significant = significant || t[i] != '0';
    }
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    bool negative = i < t.size() && t[i] == '-';
    if (i < t.size() && (t[i] == '-' || t[i] == '+')) ++i;
    long e = 0;
    for (; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i)
      e = std::min(e * 10 + (t[i] - '0'), 100000L);
    magnitude += negative ? -e : e;
  }
  return magnitude > 0;
}

// Forwards a reader's events (numbers as strings) to a document, converting each number
// with ReadNumber.
class ExactNumbers {
 public:
  ExactNumbers(rapidjson::Document* doc, const rapidjson::MemoryStream& in) : doc_(*doc), in_(in) {}

  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned u) { return doc_.Uint(u); }
  bool Int64(int64_t i) { return doc_.Int64(i); }
  bool Uint64(uint64_t u) { return doc_.Uint64(u); }
  bool Double(double d) { return doc_.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    rapidjson::Value v;
    if (!ReadNumber({s, n}, &v)) {
      too_big_at_ = in_.Tell() - n;
      return false;
    }
    if (v.IsDouble()) return doc_.Double(v.GetDouble());
    return v.IsUint64() ? doc_.Uint64(v.GetUint64()) : doc_.Int64(v.GetInt64());
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return doc_.String(s, n, copy); }
  bool StartObject() { return doc_.StartObject(); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return doc_.Key(s, n, copy); }
  bool EndObject(rapidjson::SizeType n) { return doc_.EndObject(n); }
  bool StartArray() { return doc_.StartArray(); }
  bool EndArray(rapidjson::SizeType n) { return doc_.EndArray(n); }

  std::optional<size_t> too_big_at() const { return too_big_at_; }

 private:
  rapidjson::Document& doc_;
  const rapidjson::MemoryStream& in_;
  std::optional<size_t> too_big_at_;  // offset of a number beyond the range of a double
};

// Forgets the error of an earlier Parse of `doc`: Populate leaves it in place, so a document
// used again after a refused text would still say it has one.
void ClearParseError(rapidjson::Document* doc) {
  if (doc->HasParseError()) doc->Parse("null");
}

// Parses `text` (checked by the prescan) as Document::Parse would, numbers by ReadNumber;
// iteratively, as a stored document's depth is not bounded here (ParseStoredDocument).
bool ParseExactNumbers(std::string_view text, rapidjson::Document* doc, ParseError* error) {
  rapidjson::MemoryStream in(text.data(), text.size());
  rapidjson::ParseResult result;
  std::optional<size_t> too_big_at;
  auto generate = [&](rapidjson::Document& d) {
    ExactNumbers handler(&d, in);
    rapidjson::Reader reader;
    result = reader.Parse<rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseIterativeFlag>(
        in, handler);
    too_big_at = handler.too_big_at();
    return !result.IsError();
  };
  ClearParseError(doc);
  doc->Populate(generate);
  if (too_big_at) {
    *error = {*too_big_at,
              fmt::format("invalid JSON: {}",
                          rapidjson::GetParseError_En(rapidjson::kParseErrorNumberTooBig))};
    return false;
  }
  if (result.IsError()) {
    *error = {result.Offset(),
              fmt::format("invalid JSON: {}", rapidjson::GetParseError_En(result.Code()))};
    return false;
  }
  return true;
}

// ---- the fast path: simdjson ---------------------------------------------------------------
//
// simdjson parses JSON several times faster than RapidJSON's reader (on the lake lines of
// bench/materialize, 0.54 s against 1.3-1.5 s for 1M documents; building the RapidJSON
// values from its tape takes another 0.1-0.2 s). Its tape is replayed into the document as
// the SAX events RapidJSON's own reader would send, so the values, their types and their
// allocator are exactly what Document::Parse makes. simdjson refuses what RapidJSON refuses
// and more (invalid UTF-8, lone surrogate escapes, integers beyond 64 bits, numbers beyond
// a double, nesting deeper than kFastDepth): on any refusal the text is parsed again by
// RapidJSON, which accepts or refuses it, with its located message, as it always did. A
// number simdjson reads is exact (correctly rounded), as ReadNumber's are, where RapidJSON
// 1.1 may be wrong (see above). tests/unit/doc_test.cc and fuzz/doc_parse compare both
// paths (SetFastParse).

// Documents up to this size take the fast path: each thread's parser keeps buffers sized
// to it (about 15 bytes per byte of text: 1 MiB), so larger ones, rare, go to RapidJSON.
constexpr size_t kFastMaxBytes = 64 << 10;
constexpr size_t kFastDepth = 256;

thread_local bool fast_parse = true;

struct FastParser {
  simdjson::dom::parser parser;
  std::unique_ptr<char[]> text;  // a copy of the text with simdjson's padding after it
  bool ready = false;
};

// Sends `e` to `d` as RapidJSON's reader would (integers as Uint/Int when they fit 32 bits,
// as Uint64/Int64 otherwise).
bool Replay(simdjson::dom::element e, rapidjson::Document& d) {
  using T = simdjson::dom::element_type;
  switch (e.type()) {
    case T::OBJECT: {
      d.StartObject();
      rapidjson::SizeType n = 0;
      for (simdjson::dom::key_value_pair m : simdjson::dom::object(e)) {
        d.Key(m.key.data(), static_cast<rapidjson::SizeType>(m.key.size()), true);
        if (!Replay(m.value, d)) return false;
        ++n;
      }
      return d.EndObject(n);
    }
    case T::ARRAY: {
      d.StartArray();
      rapidjson::SizeType n = 0;
      for (simdjson::dom::element item : simdjson::dom::array(e)) {
        if (!Replay(item, d)) return false;
        ++n;
      }
      return d.EndArray(n);
    }
    case T::STRING: {
      std::string_view s = e.get_string().value_unsafe();
      return d.String(s.data(), static_cast<rapidjson::SizeType>(s.size()), true);
    }
    case T::INT64: {
      int64_t i = e.get_int64().value_unsafe();
      if (i >= 0) {
        return i <= UINT32_MAX ? d.Uint(static_cast<unsigned>(i))
                               : d.Uint64(static_cast<uint64_t>(i));
      }
      return i >= INT32_MIN ? d.Int(static_cast<int>(i)) : d.Int64(i);
    }
    case T::UINT64:
      return d.Uint64(e.get_uint64().value_unsafe());
    case T::DOUBLE:
      return d.Double(e.get_double().value_unsafe());
    case T::BOOL:
      return d.Bool(e.get_bool().value_unsafe());
    case T::NULL_VALUE:
      return d.Null();
  }
  return false;
}

// Parses `text` into `doc` with simdjson. False, with `doc` unchanged, when simdjson
// refuses the text or the fast path does not apply: RapidJSON is to parse it.
bool FastParse(std::string_view text, rapidjson::Document* doc) {
  if (!fast_parse || text.size() > kFastMaxBytes) return false;
  thread_local FastParser fast;
  if (!fast.ready) {
    if (fast.parser.allocate(kFastMaxBytes, kFastDepth) != simdjson::SUCCESS) return false;
    fast.text = std::make_unique<char[]>(kFastMaxBytes + simdjson::SIMDJSON_PADDING);
    fast.ready = true;
  }
  std::memcpy(fast.text.get(), text.data(), text.size());
  std::memset(fast.text.get() + text.size(), 0, simdjson::SIMDJSON_PADDING);
  simdjson::dom::element root;
  if (fast.parser.parse(fast.text.get(), text.size(), false).get(root) != simdjson::SUCCESS)
    return false;
  bool replayed = false;
  auto generate = [&](rapidjson::Document& d) { return replayed = Replay(root, d); };
  ClearParseError(doc);
  doc->Populate(generate);
  return replayed;
}

bool Parse(std::string_view text, bool terminated, rapidjson::Document* doc, ParseError* error,
           const ParseLimits& limits) {
  if (text.size() > limits.max_bytes) {
    *error = {0, limits.max_bytes >= (1u << 20)
                     ? fmt::format("the document is {} bytes, over the limit of {} MiB", text.size(),
                                   limits.max_bytes >> 20)
                     : fmt::format("the document is {} bytes, over the limit of {} bytes", text.size(),
                                   limits.max_bytes)};
    return false;
  }
  bool exact_numbers = false;
  if (!Prescan(text, limits, error, &exact_numbers)) return false;
  // No JSON text holds a NUL byte (in a string it must be escaped), and RapidJSON takes one
  // after a complete value for the end of the input, unnoticed: `{"a":1}<NUL>{"b":2}` would
  // read as {"a":1}, in a CSV cell or a request body as in a NUL-terminated line.
  if (const void* nul = std::memchr(text.data(), 0, text.size())) {
    *error = {static_cast<size_t>(static_cast<const char*>(nul) - text.data()),
              "invalid JSON: a NUL byte"};
    return false;
  }
  // Recursive parsing is safe, and encoding validation redundant: the prescan bounded the
  // depth and validated the UTF-8 of every string.
  // Full precision: every double reads back exactly as written.
  if (exact_numbers) {
    if (!ParseExactNumbers(text, doc, error)) return false;
  } else if (FastParse(text, doc)) {
    // (the prescan found no number RapidJSON may read wrongly: both paths agree)
  } else if (terminated) {
    doc->Parse<rapidjson::kParseFullPrecisionFlag>(text.data());
  } else {
    doc->Parse<rapidjson::kParseFullPrecisionFlag>(text.data(), text.size());
  }
  if (doc->HasParseError()) {
    *error = {doc->GetErrorOffset(),
              fmt::format("invalid JSON: {}", rapidjson::GetParseError_En(doc->GetParseError()))};
    return false;
  }
  if ((doc->IsObject() || doc->IsArray()) && RepeatsName(*doc)) {
    LocateRepeat(text, error);
    return false;
  }
  return true;
}

}  // namespace

bool ParseDocument(std::string_view text, rapidjson::Document* doc, ParseError* error,
                   const ParseLimits& limits) {
  return Parse(text, false, doc, error, limits);
}

bool ParseTerminatedDocument(std::string_view text, rapidjson::Document* doc, ParseError* error,
                             const ParseLimits& limits) {
  return Parse(text, true, doc, error, limits);
}

namespace {

// An upper bound of the compact JSON size of `v` (every string byte escaped as \u00XX, every
// number 32 bytes), summed until it passes `cap`.
size_t SizeBound(const rapidjson::Value& v, size_t cap) {
  switch (v.GetType()) {
    case rapidjson::kStringType: return 6 * size_t{v.GetStringLength()} + 2;
    case rapidjson::kNumberType: return 32;
    case rapidjson::kArrayType: {
      size_t n = 2;
      for (const auto& item : v.GetArray()) {
        n += SizeBound(item, cap) + 1;
        if (n > cap) break;
      }
      return n;
    }
    case rapidjson::kObjectType: {
      size_t n = 2;
      for (const auto& m : v.GetObject()) {
        n += 6 * size_t{m.name.GetStringLength()} + 4 + SizeBound(m.value, cap);
        if (n > cap) break;
      }
      return n;
    }
    default: return 5;
  }
}

// Counts what a rapidjson::Writer writes.
struct CountingStream {
  using Ch = char;
  void Put(char) { ++n; }
  void Flush() {}
  size_t n = 0;
};

}  // namespace

bool FitsJsonLimit(const rapidjson::Value& v, size_t limit, size_t* size) {
  if (SizeBound(v, limit) <= limit) return true;
  CountingStream counted;
  rapidjson::Writer<CountingStream> w(counted);
  v.Accept(w);
  *size = counted.n;
  return counted.n <= limit;
}

bool ParseStoredDocument(std::string_view text, rapidjson::Document* doc, ParseError* error) {
  if (FastParse(text, doc)) return true;
  // A text simdjson refused, or over kFastMaxBytes. The prescan finds the numbers RapidJSON
  // 1.1 misreads (or reaches undefined behaviour on), which ReadNumber then reads. It
  // refuses nothing here: a stored text is read as it always was (what was stored was
  // within the limits of its day, and earlier versions stored lone surrogate escapes as
  // bytes that are not UTF-8).
  bool exact_numbers = false;
  Prescan(text, {}, error, &exact_numbers, false);
  if (exact_numbers) {
    if (!ParseExactNumbers(text, doc, error)) return false;
  } else if (text.size() < 512) {
    // Text shorter than 512 bytes cannot nest deeper than 256 levels, which recursion
    // handles; the recursive parser is the faster one.
    doc->Parse<rapidjson::kParseFullPrecisionFlag>(text.data());
  } else {
    doc->Parse<rapidjson::kParseFullPrecisionFlag | rapidjson::kParseIterativeFlag>(text.data());
  }
  if (doc->HasParseError()) {
    *error = {doc->GetErrorOffset(), fmt::format("invalid JSON: {}", rapidjson::GetParseError_En(doc->GetParseError()))};
    return false;
  }
  // A NUL would have ended the text early, unnoticed (see Parse).
  if (const void* nul = std::memchr(text.data(), 0, text.size())) {
    *error = {static_cast<size_t>(static_cast<const char*>(nul) - text.data()), "invalid JSON: a NUL byte"};
    return false;
  }
  return true;
}

void SetFastParse(bool on) { fast_parse = on; }

bool ReadNumber(std::string_view token, rapidjson::Value* v) {
  const char* begin = token.data();
  const char* end = begin + token.size();
  bool negative = !token.empty() && token[0] == '-';
  if (token.find_first_of(".eE") == std::string_view::npos) {
    if (negative) {
      int64_t i;
      if (auto r = std::from_chars(begin, end, i); r.ec == std::errc() && r.ptr == end) {
        v->SetInt64(i);
        return true;
      }
    } else {
      uint64_t u;
      if (auto r = std::from_chars(begin, end, u); r.ec == std::errc() && r.ptr == end) {
        v->SetUint64(u);
        return true;
      }
    }
    // Beyond 64 bits: a double, as RapidJSON reads it.
  }
  double d;
  auto r = std::from_chars(begin, end, d);
  if (r.ec == std::errc::result_out_of_range) {
    if (Overflows(token)) return false;
    d = negative ? -0.0 : 0.0;
  }
  v->SetDouble(d);
  return true;
}

}  // namespace flow::doc
