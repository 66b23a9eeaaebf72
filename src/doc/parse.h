// Parsing untrusted JSON documents with the limits of SPEC section 9: at most 16 MiB, at
// most 256 levels of nesting, integers within the 64-bit range, no NaN/Infinity tokens,
// valid UTF-8, no object that repeats a member name (SPEC 1.4: the error gives the byte
// offset of the repeat, its name and its JSON pointer), exactly one value.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

namespace flow::doc {

struct ParseLimits {
  size_t max_bytes = 16u << 20;
  int max_depth = 256;
};

struct ParseError {
  size_t offset = 0;    // byte offset within the text
  std::string message;  // e.g. "invalid JSON: missing a comma or '}' after an object member"
};

// Parses `text` into `doc` (whose allocator receives the values). Returns false and sets
// `*error` when the text is not one acceptable JSON document.
bool ParseDocument(std::string_view text, rapidjson::Document* doc, ParseError* error,
                   const ParseLimits& limits = {});

// The same for text followed by a NUL byte (`text.data()[text.size()] == 0`), which lets
// RapidJSON scan strings with SIMD: faster for large inputs read into a buffer.
bool ParseTerminatedDocument(std::string_view text, rapidjson::Document* doc, ParseError* error,
                             const ParseLimits& limits = {});

// Whether `v`, written as compact JSON text (as flowctl stores it), takes at most `limit`
// bytes (e.g. ParseLimits{}.max_bytes, for a document that arrived parsed: in a request body,
// from a lambda). When it does not, `*size` is its size. Cheap for values far below the limit.
bool FitsJsonLimit(const rapidjson::Value& v, size_t limit, size_t* size);

// Reads one number token of valid JSON syntax into `*v` as RapidJSON's reader would (an
// integer within 64 bits as one, anything else as a double), but exactly: see parse.cc on
// what RapidJSON 1.1 gets wrong. A value below the smallest double is zero; returns false
// for one beyond the largest.
bool ReadNumber(std::string_view token, rapidjson::Value* v);

// A document flowctl stored itself (a lake line, a materialized flow_document): it was
// validated when written, so only RapidJSON's own syntax check remains, on `text`, which
// must be followed in memory by a NUL byte (as a std::string's is). Long texts are parsed
// iteratively, so that even a tampered file nested arbitrarily deep cannot overflow the stack.
bool ParseStoredDocument(std::string_view text, rapidjson::Document* doc, ParseError* error);

// Whether the parsers above try simdjson before RapidJSON on this thread (the default: on).
// Either way they accept, refuse and parse the same texts the same way (parse.cc): for tests
// that check so.
void SetFastParse(bool on);

}  // namespace flow::doc
