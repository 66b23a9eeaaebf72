#include "doc/pointer.h"

namespace flow::doc {

std::optional<Pointer> Pointer::Parse(std::string_view s, std::string* why) {
  Pointer p;
  if (s.empty()) return p;
  if (s[0] != '/') {
    *why = "JSON pointers start with `/`";
    return std::nullopt;
  }
  std::string token;
  for (size_t i = 1; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '/') {
      p.tokens_.push_back(std::move(token));
      token.clear();
      continue;
    }
    if (s[i] == '~') {
      if (i + 1 < s.size() && (s[i + 1] == '0' || s[i + 1] == '1')) {
        token += s[i + 1] == '0' ? '~' : '/';
        ++i;
      } else {
        *why = "`~` in a JSON pointer must be followed by `0` or `1` (escape `~` as `~0`)";
        return std::nullopt;
      }
      continue;
    }
    token += s[i];
  }
  return p;
}

Pointer Pointer::Push(std::string token) const {
  Pointer p = *this;
  p.tokens_.push_back(std::move(token));
  return p;
}

Pointer Pointer::Parent() const {
  Pointer p = *this;
  if (!p.tokens_.empty()) p.tokens_.pop_back();
  return p;
}

std::string Pointer::Escape(std::string_view token) {
  std::string out;
  for (char c : token) {
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

std::string Pointer::ToString() const {
  std::string out;
  for (const auto& t : tokens_) {
    out += '/';
    out += Escape(t);
  }
  return out;
}

std::optional<size_t> Pointer::AsIndex(std::string_view token) {
  if (token.empty() || token.size() > 18) return std::nullopt;
  if (token.size() > 1 && token[0] == '0') return std::nullopt;
  size_t v = 0;
  for (char c : token) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<size_t>(c - '0');
  }
  return v;
}

}  // namespace flow::doc
