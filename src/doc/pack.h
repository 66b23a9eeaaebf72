// Packed keys: a byte encoding of JSON values whose byte order (memcmp, shorter prefix
// first) equals the total order of doc::Compare. Used to sort and index documents by key,
// as storage keys and in spill runs. The format is documented in docs/reductions.md.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "doc/value.h"

namespace flow::doc {

// Appends the encoding of `v` to `out`.
void PackValue(const Value& v, std::string* out);

// Appends the composite key of `doc`: one encoded component per pointer (absent: null).
void PackKey(const Value& doc, const std::vector<Pointer>& key, std::string* out);

// Decodes one value from the front of `in` (advancing it). Returns false on malformed
// input. Integers that a double holds exactly decode as integers when they were packed
// from integers or floats alike (the encoding does not keep the distinction).
bool UnpackValue(std::string_view* in, Value* out, Allocator& alloc);

// The key as a JSON array text, e.g. `["a",1]`, for messages.
std::string KeyToJson(std::string_view packed);

}  // namespace flow::doc
