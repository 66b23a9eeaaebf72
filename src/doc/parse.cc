#include "doc/parse.h"

#include <cstring>

#include <fmt/format.h>

#include "base/strings.h"
#include <rapidjson/error/en.h>

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
