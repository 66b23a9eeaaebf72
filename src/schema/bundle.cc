#include "schema/bundle.h"

#include <rapidjson/pointer.h>

#include <deque>
#include <unordered_map>
#include <unordered_set>

#include "base/url.h"

namespace flow::schema {
namespace {

using rapidjson::Value;

class Bundler {
 public:
  Bundler(const Index& index, rapidjson::Document* out) : index_(index), out_(out), a_(out->GetAllocator()) {}

  void Run(const SchemaLoc& root) {
    Name(root);
    Value defs(rapidjson::kObjectType);
    while (!queue_.empty()) {
      SchemaLoc loc = queue_.front();
      queue_.pop_front();
      Value copy;
      CopySchema(*loc.node, loc.base, &copy);
      // Where the schema was declared, for messages (see annotations.h).
      if (copy.IsObject()) copy.AddMember("x-flow-source", Value(loc.Id().c_str(), a_), a_);
      std::string name = names_[loc.Id()];
      defs.AddMember(Value(name.c_str(), a_), copy, a_);
    }
    out_->SetObject();
    out_->AddMember("$ref", Value("#/$defs/s0", a_), a_);
    out_->AddMember("$defs", defs, a_);
  }

 private:
  std::string Name(const SchemaLoc& loc) {
    auto [it, inserted] = names_.emplace(loc.Id(), "");
    if (inserted) {
      it->second = "s" + std::to_string(names_.size() - 1);
      queue_.push_back(loc);
    }
    return it->second;
  }

  void CopySchema(const doc::Node& n, std::string base, Value* out) {
    if (!n.is_object()) {
      n.ToJson(out, a_);
      return;
    }
    if (const doc::Node* id = n.Find("$id"); id && id->is_string() && !id->as_string().empty() &&
                                              id->as_string()[0] != '#') {
      std::string res, frag;
      SplitFragment(ResolveUrl(base, id->as_string()), &res, &frag);
      base = res;
    }
    out->SetObject();
    Value ref_target;
    bool has_ref = false, has_siblings = false;
    for (const auto& m : n.members()) {
      const std::string& k = m.key;
      const doc::Node& v = m.value;
      if (k == "$id" || k == "$schema" || k == "$anchor" || k == "$defs" || k == "definitions" ||
          k == "$comment") {
        continue;
      }
      if (k == "$ref" && v.is_string()) {
        std::string why;
        SchemaLoc target = index_.Resolve(v.as_string(), base, &why);
        if (target.node) {
          ref_target.SetString(("#/$defs/" + Name(target)).c_str(), a_);
        } else {
          ref_target.SetString("#/$defs/unresolved", a_);
        }
        has_ref = true;
        continue;
      }
      has_siblings = true;
      Value key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()), a_);
      Value val;
      // ($defs and definitions were skipped above: their targets become bundle entries.)
      SubschemaKind kind = SubschemaKeyword(k, v);
      if (kind == SubschemaKind::kSingle) {
        CopySchema(v, base, &val);
      } else if (kind == SubschemaKind::kMap) {
        val.SetObject();
        for (const auto& p : v.members()) {
          Value c;
          CopySchema(p.value, base, &c);
          val.AddMember(Value(p.key.c_str(), static_cast<rapidjson::SizeType>(p.key.size()), a_),
                        c, a_);
        }
      } else if (kind == SubschemaKind::kList) {
        val.SetArray();
        for (const auto& i : v.items()) {
          Value c;
          CopySchema(i, base, &c);
          val.PushBack(c, a_);
        }
      } else {
        v.ToJson(&val, a_);
      }
      out->AddMember(key, val, a_);
    }
    if (!has_ref) return;
    if (std::string(ref_target.GetString()) == "#/$defs/unresolved") {
      if (!has_siblings) out->SetObject();
      return;  // treat an unresolvable reference as `true` (it was reported already)
    }
    Value ref_obj(rapidjson::kObjectType);
    ref_obj.AddMember("$ref", ref_target, a_);
    if (!has_siblings) {
      *out = std::move(ref_obj);
      return;
    }
    // 2019-09: `$ref` is an applicator beside its siblings; draft-7 validators ignore
    // siblings, so express it as `allOf`.
    if (auto it = out->FindMember("allOf"); it != out->MemberEnd() && it->value.IsArray()) {
      it->value.PushBack(ref_obj, a_);
    } else {
      Value all(rapidjson::kArrayType);
      all.PushBack(ref_obj, a_);
      out->AddMember("allOf", all, a_);
    }
  }

  const Index& index_;
  rapidjson::Document* out_;
  rapidjson::Document::AllocatorType& a_;
  std::unordered_map<std::string, std::string> names_;
  std::deque<SchemaLoc> queue_;
};

}  // namespace

rapidjson::Document BundleSchema(const Index& index, const SchemaLoc& root) {
  rapidjson::Document out;
  Bundler b(index, &out);
  b.Run(root);
  return out;
}

std::string FindInPlaceRefCycle(const rapidjson::Value& bundle) {
  struct Edge {
    const Value* to;
    std::string at;  // bundle pointer of `to`
  };
  auto edges_of = [&bundle](const Value& n, const std::string& at) {
    std::vector<Edge> out;
    if (!n.IsObject()) return out;
    for (const auto& m : n.GetObject()) {
      std::string k(m.name.GetString(), m.name.GetStringLength());
      const Value& v = m.value;
      if (k == "$ref" && v.IsString()) {
        std::string ref(v.GetString(), v.GetStringLength());
        if (ref.empty() || ref[0] != '#') continue;  // bundles refer within themselves only
        std::string ptr = PercentDecode(ref.substr(1));
        rapidjson::Pointer p(ptr.c_str(), ptr.size());
        if (!p.IsValid()) continue;
        if (const Value* to = p.Get(bundle)) out.push_back({to, ptr});
      } else if (IsInPlaceApplicator(k)) {
        std::string here = at + "/" + doc::Pointer::Escape(k);
        if (v.IsArray()) {
          for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
            out.push_back({&v[i], here + "/" + std::to_string(i)});
          }
        } else if (k == "dependentSchemas" || k == "dependencies") {
          if (!v.IsObject()) continue;
          for (const auto& d : v.GetObject()) {
            out.push_back({&d.value, here + "/" + doc::Pointer::Escape(d.name.GetString())});
          }
        } else {
          out.push_back({&v, here});
        }
      }
    }
    return out;
  };
  // Where a schema of the bundle was declared: the `x-flow-source` of the bundle entry
  // holding it, plus the rest of the pointer.
  auto where = [&bundle](const std::string& at) {
    if (at.rfind("/$defs/", 0) == 0) {
      size_t end = at.find('/', 7);
      std::string entry = at.substr(0, end);
      rapidjson::Pointer p(entry.c_str(), entry.size());
      const Value* def = p.IsValid() ? p.Get(bundle) : nullptr;
      if (def && def->IsObject()) {
        auto src = def->FindMember("x-flow-source");
        if (src != def->MemberEnd() && src->value.IsString()) {
          std::string res, frag;
          SplitFragment(src->value.GetString(), &res, &frag);
          return DisplayName(res) + "#" + frag + (end == std::string::npos ? "" : at.substr(end));
        }
      }
    }
    return "#" + at;
  };
  std::unordered_map<const Value*, bool> done;  // false while on the stack
  struct Frame {
    const Value* node;
    std::string at;
    std::vector<Edge> edges;
    size_t next = 0;
  };
  std::vector<Frame> stack;
  done[&bundle] = false;
  stack.push_back(Frame{&bundle, "", edges_of(bundle, ""), 0});
  while (!stack.empty()) {
    Frame& top = stack.back();
    if (top.next == top.edges.size()) {
      done[top.node] = true;
      stack.pop_back();
      continue;
    }
    Edge e = top.edges[top.next++];
    auto it = done.find(e.to);
    if (it == done.end()) {
      done[e.to] = false;
      std::vector<Edge> next = edges_of(*e.to, e.at);
      stack.push_back(Frame{e.to, e.at, std::move(next), 0});
    } else if (!it->second) {
      size_t from = 0;
      while (stack[from].node != e.to) ++from;
      std::string path;
      for (size_t i = from; i < stack.size(); ++i) path += where(stack[i].at) + " → ";
      return path + where(e.at);
    }
  }
  // `$defs` entries no `$ref` reaches cannot be validated against, so they do not matter.
  return "";
}

}  // namespace flow::schema
