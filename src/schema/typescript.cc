#include "schema/typescript.h"

#include <fmt/format.h>

#include <string_view>
#include <vector>

namespace flow::schema {
namespace {

// Beyond this nesting, or once this much text is written, types are `unknown`: shapes are
// shared through `$ref`s, and a pathological schema could otherwise expand without bound.
constexpr int kMaxDepth = 32;
constexpr size_t kMaxText = size_t{1} << 20;

// The type bit of a JSON text's value (0 for objects and arrays, which have no literal).
uint8_t LiteralType(std::string_view json) {
  if (json.empty()) return 0;
  switch (json.front()) {
    case '"':
      return kString;
    case 't':
    case 'f':
      return kBoolean;
    case 'n':
      return kNull;
    case '{':
    case '[':
      return 0;
    default:
      return kInteger | kNumber;
  }
}

// A doc comment of `text` at `pad`, or nothing.
std::string DocComment(const Shape& s, const std::string& pad) {
  std::string text;
  if (s.title) text = *s.title;
  if (s.description) text += (text.empty() ? "" : "\n") + *s.description;
  if (text.empty()) return "";
  std::string out = pad + "/**";
  bool multi = text.find('\n') != std::string::npos;
  out += multi ? "\n" + pad + " * " : " ";
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\r') continue;
    if (c == '\n') {
      out += "\n" + pad + " * ";
    } else if (c == '/' && i > 0 && text[i - 1] == '*') {
      out += "\\/";  // `*/` would end the comment
    } else {
      out += c;
    }
  }
  out += multi ? "\n" + pad + " */\n" : " */\n";
  return out;
}

class Writer {
 public:
  explicit Writer(bool output) : output_(output) {}

  // The type of `s`; `*is_union` says whether it is a union at its top level (an element
  // of an array or tuple type then needs parentheses).
  std::string Type(const Shape& s, int indent, int depth, bool* is_union) {
    *is_union = false;
    if (s.cut || depth > kMaxDepth || written_ > kMaxText) return "unknown";
    if (s.types == 0) return "never";
    std::vector<std::string> parts;
    if (s.enumerated && !output_) {
      bool structured = false;
      for (const auto& v : s.enum_values) {
        uint8_t t = LiteralType(v);
        if (t == 0) {
          structured = true;
        } else if (s.types & t) {
          parts.push_back(v);
        }
      }
      if (!structured) return Join(parts, is_union);
      parts.clear();  // objects or arrays: described by their structure instead
    }
    uint8_t t = s.types;
    bool object_keywords = !s.properties.empty() || s.additional || !s.patterns.empty();
    bool array_keywords = !s.tuple.empty() || s.items;
    if (t == kAnyType) {
      if (!object_keywords && !array_keywords) return "unknown";
      t = (object_keywords ? kObject : 0) | (array_keywords ? kArray : 0);
    }
    if (t & kObject) parts.push_back(Object(s, indent, depth));
    if (t & kArray) parts.push_back(Array(s, indent, depth));
    if (t & kBoolean) parts.push_back("boolean");
    if (t & (kInteger | kNumber)) parts.push_back("number");
    if (t & kString) parts.push_back("string");
    if (t & kNull) parts.push_back("null");
    return Join(parts, is_union);
  }

 private:
  std::string Join(const std::vector<std::string>& parts, bool* is_union) {
    if (parts.empty()) return "never";
    *is_union = parts.size() > 1;
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? " | " : "") + parts[i];
    written_ += out.size();
    return out;
  }

  // An element of an array or tuple type.
  std::string Element(const Shape& s, int indent, int depth) {
    bool u = false;
    std::string t = Type(s, indent, depth + 1, &u);
    return u ? "(" + t + ")" : t;
  }

  std::string Object(const Shape& s, int indent, int depth) {
    std::string pad(static_cast<size_t>(indent) + 2, ' ');
    std::string members;
    size_t declared = 0;
    for (const auto& p : s.properties) {
      if (!p.shape || p.shape->types == 0) continue;  // forbidden: never present
      ++declared;
      bool u = false;
      std::string type = Type(*p.shape, indent + 2, depth + 1, &u);
      members += DocComment(*p.shape, pad);
      members += fmt::format("{}{}{}: {};\n", pad, TypeScriptProperty(p.name),
                             p.required && !output_ ? "" : "?", type);
    }
    bool additional = s.additional && s.additional->types != 0;
    if (additional || !s.patterns.empty() || (!s.additional && (declared == 0 || output_))) {
      // Every declared property's type must fit the index signature's: only an object of
      // nothing but additional properties can say more than `unknown`.
      std::string value = "unknown";
      if (additional && declared == 0 && s.patterns.empty()) {
        bool u = false;
        value = Type(*s.additional, indent + 2, depth + 1, &u);
      }
      members += fmt::format("{}[k: string]: {};\n", pad, value);
    }
    if (members.empty()) return "{}";
    return "{\n" + members + std::string(static_cast<size_t>(indent), ' ') + "}";
  }

  std::string Array(const Shape& s, int indent, int depth) {
    if (s.tuple.empty()) return (s.items ? Element(*s.items, indent, depth) : "unknown") + "[]";
    std::string out = "[";
    for (size_t i = 0; i < s.tuple.size(); ++i) {
      out += (i ? ", " : "") + Element(*s.tuple[i], indent, depth) + (i < s.min_items ? "" : "?");
    }
    if (s.items && s.items->types != 0) out += ", ..." + Element(*s.items, indent, depth) + "[]";
    return out + "]";
  }

  bool output_;  // TypeScriptOf's `output`
  size_t written_ = 0;
};

bool IsIdentifier(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
    if (!letter && (i == 0 || c < '0' || c > '9')) return false;
  }
  return true;
}

}  // namespace

std::string TypeScriptOf(const Shape& s, int indent, bool output) {
  Writer w(output);
  bool is_union = false;
  return w.Type(s, indent, 0, &is_union);
}

std::string TypeScriptProperty(const std::string& name) {
  if (IsIdentifier(name)) return name;
  std::string out = "\"";
  for (unsigned char c : name) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace flow::schema
