// Operations on RapidJSON values shared by validation, reduction, keys and storage: the
// total order of SPEC section 2, RFC 6901 lookup and creation, and a compact writer.
#pragma once

#include <string>

#include <rapidjson/document.h>

#include "doc/pointer.h"

namespace flow::doc {

using Value = rapidjson::Value;
using Allocator = rapidjson::Document::AllocatorType;

// The total order: null < boolean < number < string < array < object; false < true;
// numbers by value across integers and floats (1 == 1.0); strings by UTF-8 bytes; arrays
// lexicographically; objects as their (name, value) pairs in name order, lexicographically.
// Returns <0, 0 or >0.
int Compare(const Value& a, const Value& b);

// Compares the values found at `ptrs` (an absent location counts as null) in order.
int CompareAt(const Value& a, const Value& b, const std::vector<Pointer>& ptrs);

// The value at `ptr` within `v`, or null if absent. Array tokens are indices; `-` (the
// element after the last) never exists.
const Value* Lookup(const Value& v, const Pointer& ptr);

// The value at `ptr`, created (as null) if absent. Missing parents are created as objects,
// or as arrays when the next token is `-` or `0`; `-` and an index equal to the array size
// append. Returns null if a parent is a scalar or an index is past the end.
Value* Create(Value& v, const Pointer& ptr, Allocator& alloc);

// The members of an object ordered by name (UTF-8 bytes); equal names keep their order.
std::vector<const Value::Member*> SortedMembers(const Value& v);

// A deep copy of `v` whose parts live in `alloc` (string constants are shared, as RapidJSON's
// CopyFrom does). Several times faster than CopyFrom, which in RapidJSON 1.1 replays the
// value through a temporary document's SAX handler with a malloc'd stack per copy.
Value Copy(const Value& v, Allocator& alloc);

// Overwrites the characters of `to`, a string with a buffer of its own (not an inline or
// constant one), with those of the string `from` when they fit (at most as many bytes):
// `to` then equals Copy(from) without allocating, which a reduction that keeps replacing a
// last-write-wins string does all the time. False, changing nothing, otherwise.
bool AssignString(Value& to, const Value& from);

// Makes `to` equal Copy(from) without allocating where it can: a string as AssignString
// does, an object into an object of the same member names in the same order member by
// member (a last-write-wins object such as {"brand": ..., "last4": ...} replaced by every
// document of a key), a value owning no memory (null, boolean, number, inline or constant
// string) into a value that holds none either. False when it cannot: `to` may then have
// been partly overwritten, and the caller replaces it (`to = Copy(from, alloc)`).
bool AssignInPlace(Value& to, const Value& from);

// Compact JSON text of `v`, appended to `out`.
void AppendJson(const Value& v, std::string* out);

// The kind of a value for messages: "null", "boolean", "integer", "number", "string", ...
const char* KindName(const Value& v);

// True for numbers held exactly as 64-bit integers (not floats).
inline bool IsInteger(const Value& v) { return v.IsInt64() || v.IsUint64(); }

}  // namespace flow::doc
