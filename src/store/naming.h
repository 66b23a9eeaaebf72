// Names of journals and lake fragments (SPEC 3.2 and 3.3).
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "doc/value.h"

namespace flow::store {

// A partition value as it appears in a journal name: integers in base 10, `true`/`false`,
// strings percent-encoded except ASCII letters, digits and `-_.~$&+:=@` (uppercase hex).
// Returns false for other types (partition fields are integers, booleans or strings).
bool EncodePartitionValue(const doc::Value& v, std::string* out);
// The inverse, for strings (percent-decoding); false when `text` is malformed.
bool DecodePartitionString(std::string_view text, std::string* out);

// `<collection>/<field>=<value>/.../pivot=00`, fields sorted by name. `fields` pairs a
// field name with its value in the document; fails (false) when a value cannot be encoded.
bool JournalName(std::string_view collection,
                 std::vector<std::pair<std::string, const doc::Value*>> fields, std::string* out);

enum class Codec { kGzip, kZstd, kNone };
const char* CodecExtension(Codec c);  // ".gz", ".zst", ".raw"

// `<journal>/utc_date=YYYY-MM-DD/utc_hour=HH/<begin>-<end>-<sha1><ext>`, relative to the
// lake directory; begin/end are 16 lowercase hex digits; the date and hour are the UTC time
// the fragment was started.
std::string FragmentPath(std::string_view journal, std::time_t started, uint64_t begin, uint64_t end,
                         std::string_view sha1_hex, Codec codec);

}  // namespace flow::store
