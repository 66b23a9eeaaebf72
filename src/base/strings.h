// String vocabulary shared by every module: UTF-8 checks and "did you mean" suggestions.
// All functions are pure and thread-safe.
#pragma once

#include <optional>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace flow {

// Returns the byte offset of the first invalid UTF-8 sequence, or nullopt if `s` is valid.
std::optional<size_t> FindInvalidUtf8(std::string_view s);

// Converts a byte offset into a 1-based line and column (columns count UTF-8 code points).
void OffsetToLineCol(std::string_view s, size_t offset, uint32_t* line, uint32_t* col);

// The byte offset where 1-based `line` starts (s.size() when `s` has fewer lines).
size_t LineOffset(std::string_view s, uint32_t line);

// Optimal string alignment distance (edits: insert, delete, substitute, transpose).
size_t EditDistance(std::string_view a, std::string_view b);

// Returns the candidate closest to `word` if it is close enough to be a likely typo.
std::optional<std::string> ClosestMatch(std::string_view word,
                                        const std::vector<std::string>& candidates);

// Formats "did you mean `x`?" for the closest candidate, or "" when none is close.
std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates);

// `s` with ASCII letters lowered (other bytes unchanged): for names compared without regard
// to case.
inline std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// The value of a hexadecimal digit (either case), or -1.
inline int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Truncates `s` to at most `max` bytes (on a UTF-8 boundary), appending "…" when cut.
std::string Truncate(std::string_view s, size_t max);

// Byte-wise three-way comparison (<0, 0, >0), as std::string_view::compare, inlined for the
// short strings of member names: 8 bytes at a time, without a call to memcmp.
inline int CompareBytes(std::string_view a, std::string_view b) {
  size_t n = a.size() < b.size() ? a.size() : b.size();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x, y;
    __builtin_memcpy(&x, a.data() + i, 8);
    __builtin_memcpy(&y, b.data() + i, 8);
    if (x != y) return __builtin_bswap64(x) < __builtin_bswap64(y) ? -1 : 1;
  }
  for (; i < n; ++i) {
    if (a[i] != b[i]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[i]) ? -1 : 1;
  }
  return a.size() < b.size() ? -1 : a.size() > b.size();
}

// Whether `a` and `b` hold the same bytes, inlined as CompareBytes is.
inline bool SameBytes(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CompareBytes(a, b) == 0;
}

// Parses "64MiB", "256MB", "1GiB", "512k", "1048576" (bytes). Units are powers of 1024.
std::optional<uint64_t> ParseByteSize(std::string_view text);

// True for a line of only spaces, tabs and CRs (skipped in JSON lines input).
bool BlankLine(std::string_view s);

// `s` as a JSON string literal (quotes, backslashes and control characters escaped; UTF-8
// passed through).
std::string JsonQuote(std::string_view s);

}  // namespace flow
