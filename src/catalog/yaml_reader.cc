#include "catalog/yaml_reader.h"

#include <cerrno>
#include <cstring>
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>
#include <regex>
#include <sstream>
#include <unordered_set>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <rapidjson/reader.h>

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
    if (expanding_ > 0 && ++expanded_ > kMaxAliasValues) {
      // At the collection written out that holds the alias being expanded (the alias
      // itself has no position of its own: it is its anchor's node).
      throw Failure{ToMark(written_),
                    fmt::format("aliases (`*name`) expand to more than {} values", kMaxAliasValues),
                    "do anchors hold aliases of anchors that hold aliases in turn? Write the "
                    "repeated content out, or generate the source as JSON"};
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
        Expansion e(this, y);
        doc::Node n = doc::Node::Array(mark);
        n.items().reserve(y.size());
        for (const auto& item : y) n.items().push_back(Convert(item, depth + 1));
        return n;
      }
      case YAML::NodeType::Map: {
        Expansion e(this, y);
        return Map(y, mark, depth);
      }
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
    std::vector<std::pair<Mark, YAML::Node>> merge_values;  // (mark of `<<`, value)
    for (const auto& kv : y) {
      const YAML::Node& k = kv.first;
      if (k.IsScalar() && k.Scalar() == "<<" && k.Tag() == "?") {
        merge_values.emplace_back(ToMark(k.Mark()), kv.second);
        continue;
      }
      std::string key = KeyOf(k);
      CountBytes(key.size(), k.Mark());
      if (!seen.insert(key).second) {
        throw Failure{ToMark(k.Mark()), fmt::format("duplicate key `{}`", key),
                      "each key may appear once in a mapping"};
      }
      n.members().push_back({key, ToMark(k.Mark()), Convert(kv.second, depth + 1)});
    }
    // Merge keys: explicit keys win; among merged maps, earlier ones win.
    for (const auto& [merge_mark, mv] : merge_values) {
      std::vector<YAML::Node> sources;
      if (mv.IsMap()) {
        sources.push_back(mv);
      } else if (mv.IsSequence()) {
        for (const auto& s : mv) sources.push_back(s);
      }
      if (sources.empty() && !mv.IsMap()) {
        throw Failure{merge_mark, "a merge key `<<` needs a mapping or a list of mappings",
                      "write `<<: *anchor` where the anchor names a mapping"};
      }
      for (const auto& src : sources) {
        if (!src.IsMap()) {
          throw Failure{merge_mark, "a merge key `<<` needs a mapping or a list of mappings",
                        "write `<<: *anchor` where the anchor names a mapping"};
        }
        if (expanding_ == 0) written_ = y.Mark();
        ++expanding_;  // merged content is (nearly always) an alias's
        doc::Node merged = Map(src, ToMark(src.Mark()), depth + 1);
        --expanding_;
        for (auto& m : merged.members()) {
          if (seen.insert(m.key).second) n.members().push_back(std::move(m));
        }
      }
    }
    return n;
  }

  // Counts `n` bytes of strings or keys (what aliases expand without adding values).
  void CountBytes(size_t n, const YAML::Mark& at) {
    bytes_ += n;
    if (bytes_ > kMaxSourceTextBytes) {
      throw Failure{ToMark(at),
                    fmt::format("source holds more than {} MiB of strings and keys (counting "
                                "each expansion of an alias `*name`)",
                                kMaxSourceTextBytes >> 20),
                    "are aliases of long strings repeated many times?"};
    }
  }

  doc::Node Scalar(const YAML::Node& y, Mark mark) {
    const std::string& s = y.Scalar();
    CountBytes(s.size(), y.Mark());
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
      if (errno == ERANGE && c != '-') {
        errno = 0;
        unsigned long long u = std::strtoull(s.c_str(), &end, 10);
        if (errno != ERANGE) return doc::Node::Uint(u, mark);
      }
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

  // An alias is the node of its anchor again: a collection seen before (by its position)
  // is being expanded, and so is everything under it. Values are counted only there, so
  // that the limit bounds expansion, not sources written out at length.
  class Expansion {
   public:
    Expansion(Converter* c, const YAML::Node& y)
        : c_(c), again_(!c->collections_.insert(y.Mark().pos).second) {
      if (again_) {
        ++c_->expanding_;
      } else if (c_->expanding_ == 0) {
        c_->written_ = y.Mark();
      }
    }
    ~Expansion() {
      if (again_) --c_->expanding_;
    }
    Expansion(const Expansion&) = delete;
    Expansion& operator=(const Expansion&) = delete;

   private:
    Converter* c_;
    bool again_;
  };

  std::unordered_set<int> collections_;  // positions of the collections converted
  int expanding_ = 0;                    // > 0 within an alias's expansion
  YAML::Mark written_;                   // the last collection entered outside of one
  size_t expanded_ = 0;                  // values converted there
  size_t bytes_ = 0;                     // of strings and keys, everywhere
};

// yaml-cpp's messages name the parser state where it gave up, often a line after the
// mistake. Recognise the common mistakes and point at their cause.
Failure ExplainYamlError(std::string_view text, const YAML::Exception& e) {
  Failure f{ToMark(e.mark), "invalid YAML: " + e.msg, ""};
  // A tab in indentation, on or before the failing line.
  uint32_t line = 1;
  size_t pos = 0;
  while (pos < text.size() && line <= f.mark.line) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    for (size_t i = pos; i < eol && (text[i] == ' ' || text[i] == '\t'); ++i) {
      if (text[i] == '\t') {
        return Failure{Mark{line, static_cast<uint32_t>(i - pos + 1)},
                       "invalid YAML: a tab is used for indentation",
                       "YAML indents with spaces only; replace the tab with spaces"};
      }
    }
    pos = eol + 1;
    ++line;
  }
  if (e.msg.find("end of sequence flow not found") != std::string::npos ||
      e.msg.find("end of map flow not found") != std::string::npos) {
    // Find the flow collection still open where the parser stopped.
    size_t stop = LineOffset(text, f.mark.line);
    std::vector<size_t> open;
    char quote = 0;
    for (size_t i = 0; i < stop && i < text.size(); ++i) {
      char c = text[i];
      if (quote) {
        if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        if (!open.empty()) quote = c;
      } else if (c == '#' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\n')) {
        while (i < stop && text[i] != '\n') ++i;
      } else if (c == '[' || c == '{') {
        open.push_back(i);
      } else if ((c == ']' || c == '}') && !open.empty()) {
        open.pop_back();
      }
    }
    if (!open.empty()) {
      Mark m;
      OffsetToLineCol(text, open.back(), &m.line, &m.col);
      char c = text[open.back()];
      return Failure{m, fmt::format("invalid YAML: this `{}` is never closed", c),
                     fmt::format("add the matching `{}`", c == '[' ? ']' : '}')};
    }
  }
  if (e.msg.find("illegal map value") != std::string::npos) {
    f.hint = "a plain value may not contain `: `; quote it, or use a block scalar (`|`)";
  }
  return f;
}

// JSON fast path: a source that is JSON parses with RapidJSON, ~20x faster and far
// leaner than yaml-cpp for generated multi-megabyte files. Positions are tracked by the
// input stream: a token starts at the first character after whitespace or `,:[{`.
class TrackingStream {
 public:
  using Ch = char;
  explicit TrackingStream(std::string_view s) : s_(s) {}
  Ch Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  Ch Take() {
    if (pos_ >= s_.size()) return '\0';
    char c = s_[pos_];
    if (boundary_ && !(c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
      start_ = Mark{line_, col_};
    }
    boundary_ = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == ':' ||
                c == '[' || c == '{';
    if (c == '\n') {
      ++line_, col_ = 1;
    } else if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
      ++col_;
    }
    ++pos_;
    return c;
  }
  size_t Tell() const { return pos_; }
  Ch* PutBegin() { return nullptr; }
  void Put(Ch) {}
  void Flush() {}
  size_t PutEnd(Ch*) { return 0; }
  Mark start() const { return start_; }
  std::string_view text() const { return s_; }

 private:
  std::string_view s_;
  size_t pos_ = 0;
  uint32_t line_ = 1, col_ = 1;
  bool boundary_ = true;
  Mark start_{1, 1};
};

class NodeBuilder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, NodeBuilder> {
 public:
  explicit NodeBuilder(const TrackingStream& in) : in_(in) {}

  bool Null() { return Add(doc::Node::Null(in_.start())); }
  bool Bool(bool b) { return Add(doc::Node::Bool(b, in_.start())); }
  bool Int(int i) { return Add(doc::Node::Int(i, in_.start())); }
  bool Uint(unsigned u) { return Add(doc::Node::Int(u, in_.start())); }
  bool Int64(int64_t i) { return Add(doc::Node::Int(i, in_.start())); }
  bool Uint64(uint64_t u) { return Add(doc::Node::Uint(u, in_.start())); }
  bool Double(double d) {
    // RapidJSON reads an integer beyond 64 bits as a float; the token just read tells.
    std::string_view s = in_.text();
    size_t end = in_.Tell(), begin = end;
    while (begin > 0 && std::strchr("0123456789+-.eE", s[begin - 1]) != nullptr) --begin;
    std::string_view token = s.substr(begin, end - begin);
    if (token.find_first_of(".eE") == std::string_view::npos) {
      return Fail(fmt::format("integer `{}` does not fit in 64 bits", token),
                  "quote it to keep it as a string");
    }
    return Add(doc::Node::Float(d, in_.start()));
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    return Add(doc::Node::String(std::string(s, n), in_.start()));
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    std::string key(s, n);
    doc::Node& obj = stack_.back();
    for (const auto& m : obj.members()) {
      if (m.key == key) return Fail(fmt::format("duplicate key `{}`", key), "each key may appear once in an object");
    }
    obj.members().push_back({std::move(key), in_.start(), doc::Node()});
    return true;
  }
  bool StartObject() { return Push(doc::Node::Object(in_.start())); }
  bool EndObject(rapidjson::SizeType) { return Pop(); }
  bool StartArray() { return Push(doc::Node::Array(in_.start())); }
  bool EndArray(rapidjson::SizeType) { return Pop(); }

  doc::Node TakeRoot() { return std::move(root_); }
  const std::optional<Failure>& failure() const { return failure_; }

 private:
  bool Fail(std::string msg, std::string hint = {}) {
    failure_ = Failure{in_.start(), std::move(msg), std::move(hint)};
    return false;
  }
  bool Push(doc::Node n) {
    if (stack_.size() >= static_cast<size_t>(kMaxSourceDepth)) {
      return Fail(fmt::format("source is nested more than {} levels deep", kMaxSourceDepth));
    }
    stack_.push_back(std::move(n));
    return true;
  }
  bool Pop() {
    doc::Node n = std::move(stack_.back());
    stack_.pop_back();
    return Add(std::move(n));
  }
  bool Add(doc::Node n) {
    if (stack_.empty()) {
      root_ = std::move(n);
    } else if (stack_.back().is_array()) {
      stack_.back().items().push_back(std::move(n));
    } else {
      stack_.back().members().back().value = std::move(n);
    }
    return true;
  }

  const TrackingStream& in_;
  std::vector<doc::Node> stack_;
  doc::Node root_;
  std::optional<Failure> failure_;
};

// Returns nullopt when `text` is not JSON (so YAML parsing should be tried), or sets
// `*failure` when it is JSON but unacceptable (too deep, duplicate keys, huge integers).
std::optional<doc::Node> TryReadJson(std::string_view text, std::optional<Failure>* failure) {
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || (text[first] != '{' && text[first] != '[')) {
    return std::nullopt;
  }
  TrackingStream in(text);
  NodeBuilder builder(in);
  rapidjson::Reader reader;
  reader.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseStopWhenDoneFlag>(in, builder);
  if (builder.failure()) {
    *failure = builder.failure();
    return std::nullopt;
  }
  if (reader.HasParseError()) return std::nullopt;  // not JSON: maybe YAML flow style
  if (text.find_first_not_of(" \t\r\n", in.Tell()) != std::string_view::npos) {
    return std::nullopt;  // trailing content: let the YAML parser explain
  }
  return builder.TakeRoot();
}

// Walks a YAML stream's documents without building them, and only as far as the parser
// makes progress. yaml-cpp 0.7's LoadAll loops forever, allocating a null document per
// turn, when the parser returns a document without consuming input: a `,` where a
// document or a value after it should start (`,`, `[a],`; upstream issue #1040, fixed by
// PR #1319 after 0.8). A document starting where the previous one started is that case.
// Returns the failure to report, if any: that token, or a second document; sets
// `*documents` (0 or 1 when there is none). It scans the text a second time: 0.8 s for
// 2.9 MB of YAML (20,000 collections), where YAML::Load takes 1.4 s and the whole build
// 3 s; generated catalogs that large are JSON, which never comes here.
class DocumentWalker : public YAML::EventHandler {
 public:
  static std::optional<Failure> Walk(std::string_view text, size_t* documents) {
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    DocumentWalker w;
    std::optional<YAML::Mark> previous_start;
    *documents = 0;
    YAML::Mark second_root;
    while (parser.HandleNextDocument(w)) {
      if (previous_start && w.start_.pos == previous_start->pos) return Unexpected(text, w.start_);
      previous_start = w.start_;
      if (++*documents == 2) second_root = w.root_;
    }
    if (*documents > 1) {
      return Failure{ToMark(second_root),
                     "a catalog source holds one YAML document, but this file has more",
                     "remove the `---` separator or split the file and `import` both"};
    }
    return std::nullopt;
  }

  void OnDocumentStart(const YAML::Mark& m) override {
    start_ = m;
    rooted_ = false;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t) override { Node(m); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { Node(m); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Node(m);
  }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Node(m);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Node(m);
  }
  void OnMapEnd() override {}

 private:
  // The document's root has the position of its first node, as in YAML::Load.
  void Node(const YAML::Mark& m) {
    if (!rooted_) root_ = m, rooted_ = true;
  }

  // The parser stopped at `at` and cannot go on: name the character there.
  static Failure Unexpected(std::string_view text, const YAML::Mark& at) {
    size_t pos = static_cast<size_t>(at.pos);
    if (pos >= text.size()) return Failure{ToMark(at), "invalid YAML: unexpected content", ""};
    size_t end = pos + 1;
    while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
    std::string c(text.substr(pos, end - pos));
    std::string hint;
    if (c == ",") hint = "a `,` separates items only inside `[...]` or `{...}`";
    return Failure{ToMark(at), fmt::format("invalid YAML: unexpected `{}`", c), hint};
  }

  YAML::Mark start_;  // of the document being walked
  YAML::Mark root_;   // its first node
  bool rooted_ = false;
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
  std::optional<Failure> json_failure;
  if (auto json = TryReadJson(text, &json_failure)) return json;
  if (json_failure) {
    diags->Error(display_name, json_failure->mark, json_failure->message, "", json_failure->hint);
    return std::nullopt;
  }
  try {
    // Not YAML::LoadAll, which may never return (see DocumentWalker).
    size_t documents = 0;
    if (auto f = DocumentWalker::Walk(text, &documents)) {
      diags->Error(display_name, f->mark, f->message, "", f->hint);
      return std::nullopt;
    }
    if (documents == 0) return doc::Node::Null(Mark{1, 1});
    Converter c;
    return c.Convert(YAML::Load(std::string(text)), 0);
  } catch (const YAML::DeepRecursion& e) {
    diags->Error(display_name, ToMark(e.mark), "YAML is nested too deeply", "",
                 "catalog sources may nest at most a few hundred levels");
  } catch (const YAML::Exception& e) {
    Failure f = ExplainYamlError(text, e);
    diags->Error(display_name, f.mark, f.message, "", f.hint);
  } catch (const Failure& f) {
    diags->Error(display_name, f.mark, f.message, "", f.hint);
  }
  return std::nullopt;
}

}  // namespace flow::catalog
