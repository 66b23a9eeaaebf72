// RFC 6901 JSON pointers: parsing (with `~0`/`~1` escapes), formatting, and lookup of a
// location within a Node. A Pointer is an immutable value type.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flow::doc {

class Pointer {
 public:
  Pointer() = default;

  // Parses `s`. Returns nullopt and sets `*why` if `s` is not a valid pointer
  // (it must be empty or start with '/', and '~' must be followed by '0' or '1').
  static std::optional<Pointer> Parse(std::string_view s, std::string* why);

  const std::vector<std::string>& tokens() const { return tokens_; }
  bool empty() const { return tokens_.empty(); }

  // Returns a pointer with one more token appended.
  Pointer Push(std::string token) const;
  // The parent pointer (the root's parent is the root).
  Pointer Parent() const;

  // The escaped RFC 6901 text, e.g. "/a~1b/0".
  std::string ToString() const;

  // Parses a token as an array index: digits without leading zeros.
  static std::optional<size_t> AsIndex(std::string_view token);

  // Escapes one token ('~' -> "~0", '/' -> "~1").
  static std::string Escape(std::string_view token);

  bool operator==(const Pointer& o) const { return tokens_ == o.tokens_; }
  bool operator<(const Pointer& o) const { return tokens_ < o.tokens_; }

 private:
  std::vector<std::string> tokens_;
};

}  // namespace flow::doc
