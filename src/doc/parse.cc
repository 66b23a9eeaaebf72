#include "doc/parse.h"

#include <fmt/format.h>
#include <rapidjson/error/en.h>

namespace flow::doc {
namespace {

// One pass over the bytes outside strings: nesting depth and integer tokens that do not
// fit 64 bits (RapidJSON would silently turn them into floats).
bool Prescan(std::string_view t, const ParseLimits& limits, ParseError* error) {
  int depth = 0;
  size_t i = 0, n = t.size();
  while (i < n) {
    char c = t[i];
    if (c == '"') {
      for (++i; i < n && t[i] != '"'; ++i) {
        if (t[i] == '\\') ++i;
      }
      ++i;
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
      while (i < n && t[i] >= '0' && t[i] <= '9') ++i;
      bool integer = !(i < n && (t[i] == '.' || t[i] == 'e' || t[i] == 'E'));
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
  doc->Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (doc->HasParseError()) {
    *error = {doc->GetErrorOffset(),
              fmt::format("invalid JSON: {}", rapidjson::GetParseError_En(doc->GetParseError()))};
    return false;
  }
  return true;
}

}  // namespace flow::doc
