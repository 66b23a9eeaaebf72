#include "catalog/yaml_reader.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>
#include <regex>
#include <sstream>
#include <unordered_set>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include "base/strings.h"

namespace flow::catalog {
namespace {

Mark ToMark(const YAML::Mark& m) {
  return Mark{static_cast<uint32_t>(m.line + 1), static_cast<uint32_t>(m.column + 1)};
}

struct Failure {
  Mark mark;
  std::string message;
  std::string hint;
};

bool IsDecimal(const std::string& s, size_t from) {
  if (from >= s.size()) return false;
  for (size_t i = from; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

class Converter {
 public:
  doc::Node Convert(const YAML::Node& y, int depth) {
    if (++count_ > kMaxSourceValues) {
      throw Failure{ToMark(y.Mark()),
                    fmt::format("source expands to more than {} values", kMaxSourceValues),
                    "is an alias (`*name`) repeated in a loop of anchors?"};
    }
    if (depth > kMaxSourceDepth) {
      throw Failure{ToMark(y.Mark()),
                    fmt::format("source is nested more than {} levels deep", kMaxSourceDepth),
                    ""};
    }
    Mark mark = ToMark(y.Mark());
    switch (y.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        return doc::Node::Null(mark);
      case YAML::NodeType::Scalar:
        return Scalar(y, mark);
      case YAML::NodeType::Sequence: {
        doc::Node n = doc::Node::Array(mark);
        n.items().reserve(y.size());
        for (const auto& item : y) n.items().push_back(Convert(item, depth + 1));
        return n;
      }
      case YAML::NodeType::Map:
        return Map(y, mark, depth);
    }
    return doc::Node::Null(mark);
  }

 private:
  std::string KeyOf(const YAML::Node& k) {
    if (k.IsScalar()) return k.Scalar();
    if (k.IsNull()) return "null";
    // A complex key (`? [a, b] : v`) that is a collection: JSON keys are strings, so it
    // becomes its compact JSON text.
    return Convert(k, 0).ToJsonText();
  }

  doc::Node Map(const YAML::Node& y, Mark mark, int depth) {
    doc::Node n = doc::Node::Object(mark);
    std::unordered_set<std::string> seen;
    std::vector<const YAML::Node*> merges;
    std::vector<YAML::Node> merge_values;
    for (const auto& kv : y) {
      const YAML::Node& k = kv.first;
      if (k.IsScalar() && k.Scalar() == "<<" && k.Tag() == "?") {
        merge_values.push_back(kv.second);
        continue;
      }
      std::string key = KeyOf(k);
      if (!seen.insert(key).second) {
        throw Failure{ToMark(k.Mark()), fmt::format("duplicate key `{}`", key),
                      "each key may appear once in a mapping"};
      }
      n.members().push_back({key, ToMark(k.Mark()), Convert(kv.second, depth + 1)});
    }
    // Merge keys: explicit keys win; among merged maps, earlier ones win.
    for (const auto& mv : merge_values) {
      std::vector<YAML::Node> sources;
      if (mv.IsMap()) {
        sources.push_back(mv);
      } else if (mv.IsSequence()) {
        for (const auto& s : mv) sources.push_back(s);
      }
      if (sources.empty() && !mv.IsMap()) {
        throw Failure{ToMark(mv.Mark()), "a merge key `<<` needs a mapping or a list of mappings",
                      "write `<<: *anchor` where the anchor names a mapping"};
      }
      for (const auto& src : sources) {
        if (!src.IsMap()) {
          throw Failure{ToMark(src.Mark()), "a merge key `<<` needs a mapping or a list of mappings",
                        "write `<<: *anchor` where the anchor names a mapping"};
        }
        doc::Node merged = Map(src, ToMark(src.Mark()), depth + 1);
        for (auto& m : merged.members()) {
          if (seen.insert(m.key).second) n.members().push_back(std::move(m));
        }
      }
    }
    return n;
  }

  doc::Node Scalar(const YAML::Node& y, Mark mark) {
    const std::string& s = y.Scalar();
    const std::string& tag = y.Tag();
    if (tag == "!" || tag == "tag:yaml.org,2002:str") return doc::Node::String(s, mark);
    if (tag != "?" && tag != "tag:yaml.org,2002:int" && tag != "tag:yaml.org,2002:float" &&
        tag != "tag:yaml.org,2002:bool" && tag != "tag:yaml.org,2002:null") {
      return doc::Node::String(s, mark);  // unknown local tags: keep the text
    }
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") {
      return doc::Node::Null(mark);
    }
    if (s == "true" || s == "True" || s == "TRUE") return doc::Node::Bool(true, mark);
    if (s == "false" || s == "False" || s == "FALSE") return doc::Node::Bool(false, mark);
    char c = s[0];
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.')) {
      return doc::Node::String(s, mark);
    }
    size_t sign = (c == '-' || c == '+') ? 1 : 0;
    if (IsDecimal(s, sign)) {
      errno = 0;
      char* end = nullptr;
      long long v = std::strtoll(s.c_str(), &end, 10);
      if (errno == ERANGE) {
        throw Failure{mark, fmt::format("integer `{}` does not fit in 64 bits", s),
                      "quote it to keep it as a string"};
      }
      return doc::Node::Int(v, mark);
    }
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
      int base = s[1] == 'x' ? 16 : 8;
      errno = 0;
      char* end = nullptr;
      long long v = std::strtoll(s.c_str() + 2, &end, base);
      if (end && *end == '\0' && errno == 0) return doc::Node::Int(v, mark);
      return doc::Node::String(s, mark);
    }
    static const std::regex kFloat(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
    static const std::regex kSpecial(R"([-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))");
    if (std::regex_match(s, kSpecial)) {
      throw Failure{mark, fmt::format("`{}` is not representable in JSON", s),
                    "quote it to keep it as a string"};
    }
    if (std::regex_match(s, kFloat)) {
      double d = std::strtod(s.c_str(), nullptr);
      if (!std::isfinite(d)) {
        throw Failure{mark, fmt::format("number `{}` is out of range", s), ""};
      }
      return doc::Node::Float(d, mark);
    }
    return doc::Node::String(s, mark);
  }

  size_t count_ = 0;
};

}  // namespace

std::optional<doc::Node> ReadYaml(std::string_view text, const std::string& display_name,
                                  Diagnostics* diags) {
  if (auto bad = FindInvalidUtf8(text)) {
    Mark m;
    OffsetToLineCol(text, *bad, &m.line, &m.col);
    diags->Error(display_name, m,
                 fmt::format("invalid UTF-8 (byte 0x{:02X} at offset {})",
                             static_cast<unsigned char>(text[*bad]), *bad),
                 "", "catalog sources must be UTF-8 encoded");
    return std::nullopt;
  }
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // byte order mark
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(std::string(text));
    if (docs.size() > 1) {
      diags->Error(display_name, ToMark(docs[1].Mark()),
                   "a catalog source holds one YAML document, but this file has more", "",
                   "remove the `---` separator or split the file and `import` both");
      return std::nullopt;
    }
    Converter c;
    if (docs.empty()) return doc::Node::Null(Mark{1, 1});
    return c.Convert(docs[0], 0);
  } catch (const YAML::DeepRecursion& e) {
    diags->Error(display_name, ToMark(e.mark), "YAML is nested too deeply", "",
                 "catalog sources may nest at most a few hundred levels");
  } catch (const YAML::Exception& e) {
    diags->Error(display_name, ToMark(e.mark), fmt::format("invalid YAML: {}", e.msg));
  } catch (const Failure& f) {
    diags->Error(display_name, f.mark, f.message, "", f.hint);
  }
  return std::nullopt;
}

}  // namespace flow::catalog
