#include "doc/parse.h"

#include <cstring>

#include <fmt/format.h>
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
          i += 2;
        } else if (c >= 0x80) {
          size_t len = Utf8Sequence(p + i, n - i);
          if (!len) {
            *error = {i, "invalid UTF-8 in a string"};
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
      bool integer = !(i < n && (p[i] == '.' || p[i] == 'e' || p[i] == 'E'));
      size_t len = i - digits;
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

bool ParseDocument(std::string_view text, rapidjson::Document* doc, ParseError* error,
                   const ParseLimits& limits) {
  if (text.size() > limits.max_bytes) {
    *error = {0, fmt::format("the document is {} bytes, over the limit of {} MiB", text.size(),
                             limits.max_bytes >> 20)};
    return false;
  }
  if (!Prescan(text, limits, error)) return false;
  // Recursive parsing is safe, and encoding validation redundant: the prescan bounded the
  // depth and validated the UTF-8 of every string.
  doc->Parse(text.data(), text.size());
  if (doc->HasParseError()) {
    *error = {doc->GetErrorOffset(),
              fmt::format("invalid JSON: {}", rapidjson::GetParseError_En(doc->GetParseError()))};
    return false;
  }
  return true;
}

}  // namespace flow::doc
