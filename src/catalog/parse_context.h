// Internal to catalog/: what the parsers of a source's sections share (parse.h): the context
// that reports a file's errors (Ctx), the checked reading of a mapping's keys (Obj), the
// values several sections hold (pointers, schemas, partition selectors, `deadLetters`), and
// the section parsers: collections and derivations (parse_collection.cc), materialization
// targets and materializations (parse_materialization.cc), captures, tests and
// nodeDependencies (parse.cc). Not included outside catalog/.
#pragma once

#include <algorithm>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "base/diagnostics.h"
#include "base/strings.h"
#include "catalog/spec.h"
#include "doc/node.h"
#include "doc/pointer.h"

namespace flow::catalog::parsing {

using doc::Node;

// Text of a source shown in a message: at most `max` bytes, control characters escaped,
// so that a file that is not a catalog at all (read by mistake) is not echoed.
inline std::string Excerpt(std::string_view text, size_t max = 40) {
  std::string q = JsonQuote(Truncate(text, max));
  return q.substr(1, q.size() - 2);
}

inline std::string Ptr(const std::string& base, const std::string& token) {
  return base + "/" + doc::Pointer::Escape(token);
}

// Parsing context for one file: where errors go and what they are about.
class Ctx {
 public:
  Ctx(const SourceFile& file, Diagnostics* diags) : file_(file), diags_(diags) {}

  Where At(const Node& n, const std::string& pointer) const {
    return Where{file_.url, file_.display, n.mark(), pointer};
  }
  void Error(Mark mark, const std::string& pointer, const std::string& owner, std::string msg,
             std::string hint = {}) const {
    std::string scope = owner.empty()
                            ? fmt::format("{}", pointer.empty() ? "/" : pointer)
                            : fmt::format("{} at {}", owner, pointer.empty() ? "/" : pointer);
    diags_->Error(file_.display, mark, std::move(msg), std::move(scope), std::move(hint));
  }
  const SourceFile& file() const { return file_; }

 private:
  const SourceFile& file_;
  Diagnostics* diags_;
};

inline const char* Article(const char* type) {
  return (type[0] == 'a' || type[0] == 'o' || type[0] == 'i') ? "an" : "a";
}

// Reads one YAML mapping of a known shape: looks keys up, reports unknown ones with a
// "did you mean" hint (or, for keys in `misplaced`, the hint given there: keys that belong
// elsewhere), and reports type mismatches.
class Obj {
 public:
  Obj(const Ctx& ctx, const Node& n, std::string pointer, std::string owner, std::string what,
      std::vector<std::string> allowed, const std::map<std::string, std::string>& misplaced = {})
      : ctx_(ctx),
        n_(n),
        pointer_(std::move(pointer)),
        owner_(std::move(owner)),
        allowed_(std::move(allowed)) {
    ok_ = n.is_object();
    if (!ok_) {
      ctx_.Error(n.mark(), pointer_, owner_,
                 fmt::format("expected {} to be a mapping, found {}", what, Describe(n)));
      return;
    }
    for (const auto& m : n.members()) {
      if (std::find(allowed_.begin(), allowed_.end(), m.key) != allowed_.end()) continue;
      if (auto it = misplaced.find(m.key); it != misplaced.end()) {
        ctx_.Error(m.key_mark, Ptr(pointer_, m.key), owner_,
                   fmt::format("unknown key `{}` in {}", Excerpt(m.key, 80), what), it->second);
        has_unknown_ = true;
        continue;
      }
      unknown_.push_back(m.key);
      has_unknown_ = true;
      std::string hint = DidYouMean(m.key, allowed_);
      if (hint.empty()) {
        std::string keys;
        for (const auto& a : allowed_) {
          if (a[0] == '$') continue;
          keys += (keys.empty() ? "`" : ", `") + a + "`";
        }
        hint = "allowed keys are " + keys;
      }
      ctx_.Error(m.key_mark, Ptr(pointer_, Excerpt(m.key, 80)), owner_,
                 fmt::format("unknown key `{}` in {}", Excerpt(m.key, 80), what), hint);
    }
  }

  bool ok() const { return ok_; }
  const Node& node() const { return n_; }
  const std::string& pointer() const { return pointer_; }
  std::string PointerOf(const std::string& key) const { return Ptr(pointer_, key); }

  const Node* Get(const std::string& key) const { return ok_ ? n_.Find(key) : nullptr; }

  // True if an unknown key of this mapping is likely a misspelling of `key`: it is closest
  // to `key`, or close to no allowed key at all (then its error lists the allowed keys).
  // Its error already covers the mistake, so a "missing" error would repeat it.
  bool HasNearMiss(const std::string& key) const {
    for (const auto& u : unknown_) {
      auto m = ClosestMatch(u, allowed_);
      if (!m || *m == key) return true;
    }
    return false;
  }
  bool HasUnknownKeys() const { return has_unknown_; }

  const Node* Required(const std::string& key, const char* what_it_is) const {
    const Node* v = Get(key);
    if (ok_ && !v && !HasNearMiss(key)) {
      ctx_.Error(n_.mark(), pointer_, owner_,
                 fmt::format("missing required `{}` ({})", key, what_it_is));
    }
    return v;
  }

  // Typed accessors: report a mismatch and return false.
  bool String(const Node* v, const std::string& key, std::string* out) const {
    if (!v) return false;
    if (!v->is_string()) {
      TypeError(*v, key, "string");
      return false;
    }
    *out = v->as_string();
    return true;
  }
  bool Bool(const Node* v, const std::string& key, bool* out) const {
    if (!v) return false;
    if (!v->is_bool()) {
      TypeError(*v, key, "boolean");
      return false;
    }
    *out = v->as_bool();
    return true;
  }
  void TypeError(const Node& v, const std::string& key, const char* expected) const {
    ctx_.Error(
        v.mark(), Ptr(pointer_, key), owner_,
        fmt::format("`{}` must be {} {}, found {}", key, Article(expected), expected, Describe(v)));
  }

  static std::string Describe(const Node& n) {
    if (n.is_string()) return fmt::format("string \"{}\"", Excerpt(n.as_string()));
    if (n.is_object() || n.is_array())
      return std::string(Article(n.TypeName())) + " " + n.TypeName();
    return fmt::format("{} {}", n.TypeName(), n.ToJsonText());
  }

 private:
  const Ctx& ctx_;
  const Node& n_;
  std::string pointer_;
  std::string owner_;
  std::vector<std::string> allowed_;
  std::vector<std::string> unknown_;  // misspellings, perhaps: not the `misplaced` keys
  bool has_unknown_ = false;
  bool ok_ = false;
};

bool CheckPointer(const Ctx& ctx, const Node& v, const std::string& pointer,
                  const std::string& owner, const char* what, std::string* out);
SchemaSpec ParseSchemaRef(const Ctx& ctx, const Node& v, const std::string& pointer,
                          const std::string& owner);
void ParseSelector(const Ctx& ctx, const Node& v, const std::string& pointer,
                   const std::string& owner, PartitionSelectorSpec* out);
// `deadLetters`: the name of a collection (checked in check_dead_letters.cc).
void ParseDeadLetters(const Ctx& ctx, const Obj& o, const std::string& owner, std::string* name,
                      Where* where);

// The sections of a catalog source.
void ParseCollection(const Ctx& ctx, const Node& v, const std::string& pointer, Catalog* cat);
void ParseTargets(const Ctx& ctx, const Node& v, Catalog* cat);
void ParseMaterializations(const Ctx& ctx, const Node& v, Catalog* cat);
void ParseCaptures(const Ctx& ctx, const Node& v, Catalog* cat);
void ParseTests(const Ctx& ctx, const Node& v, Catalog* cat);
void ParseNodeDependencies(const Ctx& ctx, const Node& v, Catalog* cat);

}  // namespace flow::catalog::parsing
