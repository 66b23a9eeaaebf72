#include "doc/parse.h"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>

#include "base/strings.h"
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/writer.h>

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

// One pass over the bytes: nesting depth, UTF-8 validity inside strings, and integer
// tokens that do not fit 64 bits (RapidJSON would silently turn them into floats).
bool Prescan(std::string_view t, const ParseLimits& limits, ParseError* error) {
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
          if (i + 1 < n && p[i + 1] == 'u') {
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
        } else if (c >= 0x80) {
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
      if (++depth > limits.max_depth) {
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
      // Skip the fraction and exponent, whose digits are not integers.
      while (i < n && ((p[i] >= '0' && p[i] <= '9') || p[i] == '.' || p[i] == 'e' || p[i] == 'E' ||
                       p[i] == '+' || p[i] == '-')) {
        ++i;
      }
      if (integer && len >= 19) {
        std::string_view d = t.substr(digits, len);
        bool too_big = negative ? (len > 19 || d > "9223372036854775808")
                                : (len > 20 || (len == 20 && d > "18446744073709551615"));
        if (too_big) {
          *error = {start, fmt::format("integer {} is outside the 64-bit range", t.substr(start, i - start))};
          return false;
        }
      }
      continue;
    } else if (c >= 0x80) {
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
  reader.Parse<rapidjson::kParseFullPrecisionFlag | rapidjson::kParseIterativeFlag>(stream, locator);
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
  if (!Prescan(text, limits, error)) return false;
  // Recursive parsing is safe, and encoding validation redundant: the prescan bounded the
  // depth and validated the UTF-8 of every string.
  // Full precision: every double reads back exactly as written.
  if (terminated) {
    // RapidJSON's SIMD string scanning works on NUL-terminated text, which must then hold no
    // other NUL: one after a complete value would end the input early, unnoticed.
    if (const void* nul = std::memchr(text.data(), 0, text.size())) {
      *error = {static_cast<size_t>(static_cast<const char*>(nul) - text.data()), "invalid JSON: a NUL byte"};
      return false;
    }
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

bool ParseStoredDocument(const std::string& text, rapidjson::Document* doc, ParseError* error) {
  // Text shorter than 512 bytes cannot nest deeper than 256 levels, which recursion handles;
  // the recursive parser is the faster one.
  if (text.size() < 512) {
    doc->Parse<rapidjson::kParseFullPrecisionFlag>(text.c_str());
  } else {
    doc->Parse<rapidjson::kParseFullPrecisionFlag | rapidjson::kParseIterativeFlag>(text.c_str());
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

}  // namespace flow::doc
