#include "site/html.h"

#include <cctype>
#include <cstdint>

#include <fmt/format.h>

#include "base/strings.h"

namespace flow::site {

void AppendEscaped(std::string* out, std::string_view s) {
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char* ref = nullptr;
    switch (s[i]) {
      case '&': ref = "&amp;"; break;
      case '<': ref = "&lt;"; break;
      case '>': ref = "&gt;"; break;
      case '"': ref = "&quot;"; break;
      case '\'': ref = "&#39;"; break;
      default: continue;
    }
    out->append(s.substr(start, i - start));
    out->append(ref);
    start = i + 1;
  }
  out->append(s.substr(start));
}

std::string Escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  AppendEscaped(&out, s);
  return out;
}

std::string ScriptJsonQuote(std::string_view s) {
  std::string json = JsonQuote(s);
  std::string out;
  out.reserve(json.size() + 8);
  for (size_t i = 0; i < json.size(); ++i) {
    char c = json[i];
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else if (c == '\xE2' && i + 2 < json.size() && json[i + 1] == '\x80' &&
               (json[i + 2] == '\xA8' || json[i + 2] == '\xA9')) {
      out += json[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::string Ellipsize(std::string_view s, size_t max) {
  if (max == 0) return "";
  size_t points = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;  // continuation byte
    if (points == max) {
      // Cut here, keeping room for the ellipsis: drop the last code point kept.
      size_t cut = i;
      do {
        --cut;
      } while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80);
      return std::string(s.substr(0, cut)) + "…";
    }
    ++points;
  }
  return std::string(s);
}

std::string UrlEncode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string CollectionPage(std::string_view name) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string file;
  file.reserve(name.size());
  for (unsigned char c : name) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_') {
      file += static_cast<char>(c);
    } else if (c == '/') {
      file += '~';
    } else {
      file += '!';
      file += kHex[c >> 4];
      file += kHex[c & 15];
    }
  }
  // File names are limited to 255 bytes: keep a prefix and a hash of the whole name.
  constexpr size_t kMaxStem = 200;
  if (file.size() > kMaxStem) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
    file = fmt::format("{}!{:016x}", file.substr(0, kMaxStem - 17), h);
  }
  return "collections/" + file + ".html";
}

}  // namespace flow::site
