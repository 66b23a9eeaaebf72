#include "schema/index.h"

#include <fmt/format.h>

#include "base/strings.h"
#include "base/url.h"

namespace flow::schema {

SubschemaKind SubschemaKeyword(const std::string& k, const doc::Node& v) {
  if (k == "additionalProperties" || k == "additionalItems" || k == "not" || k == "if" ||
      k == "then" || k == "else" || k == "contains" || k == "propertyNames" ||
      k == "unevaluatedItems" || k == "unevaluatedProperties" || (k == "items" && !v.is_array())) {
    return SubschemaKind::kSingle;
  }
  if ((k == "properties" || k == "patternProperties" || k == "$defs" || k == "definitions" ||
       k == "dependentSchemas") && v.is_object()) {
    return SubschemaKind::kMap;
  }
  if ((k == "allOf" || k == "anyOf" || k == "oneOf" || k == "prefixItems" || k == "items") &&
      v.is_array()) {
    return SubschemaKind::kList;
  }
  return SubschemaKind::kNone;
}

void Index::AddResource(const std::string& url, const doc::Node* root) {
  resources_[url] = root;
}

const doc::Node* Index::Resource(const std::string& url) const {
  auto it = resources_.find(url);
  return it == resources_.end() ? nullptr : it->second;
}

void Index::IndexSchema(const SchemaLoc& loc, std::vector<MissingResource>* missing) {
  if (!loc.node || indexed_.count(loc.node)) return;
  Walk(*loc.node, loc.resource, loc.pointer, loc.base, missing, 0);
}

void Index::Walk(const doc::Node& n, const std::string& resource, const std::string& pointer,
                 std::string base, std::vector<MissingResource>* missing, int depth) {
  if (!n.is_object() || depth > 512) return;
  if (!indexed_.emplace(&n, true).second) return;
  if (const doc::Node* id = n.Find("$id"); id && id->is_string()) {
    std::string abs = flow::ResolveUrl(base, id->as_string());
    std::string res, frag;
    SplitFragment(abs, &res, &frag);
    if (!frag.empty() && res == base.substr(0, base.find('#'))) {
      // Draft-7 plain-name fragment: `$id: "#name"` is an anchor.
      anchors_.emplace(res + "#" + frag, Entry{&n, resource, pointer});
    } else {
      base = res;
      ids_.emplace(res, Entry{&n, resource, pointer});
    }
  }
  if (const doc::Node* a = n.Find("$anchor"); a && a->is_string()) {
    std::string res, frag;
    SplitFragment(base, &res, &frag);
    anchors_.emplace(res + "#" + a->as_string(), Entry{&n, resource, pointer});
  }
  if (const doc::Node* r = n.Find("$ref"); r && r->is_string()) {
    refs_.push_back(RefSite{r, resource, pointer, base});
    std::string abs = flow::ResolveUrl(base, r->as_string());
    std::string res, frag;
    SplitFragment(abs, &res, &frag);
    if (!res.empty() && !resources_.count(res) && !ids_.count(res) &&
        res != base.substr(0, base.find('#'))) {
      missing->push_back(MissingResource{res, r, resource});
    }
  }
  ForEachSubschema(n, [&](const doc::Node& child, const std::string& suffix) {
    Walk(child, resource, pointer + suffix, base, missing, depth + 1);
  });
}

SchemaLoc Index::ResolvePointer(const SchemaLoc& root, std::string_view fragment,
                                std::string* why) const {
  std::string perr;
  auto ptr = doc::Pointer::Parse(fragment, &perr);
  if (!ptr) {
    *why = fmt::format("fragment `#{}` is not a valid JSON pointer: {}", fragment, perr);
    return {};
  }
  SchemaLoc loc = root;
  for (const auto& t : ptr->tokens()) {
    const doc::Node* next = nullptr;
    if (loc.node->is_object()) {
      next = loc.node->Find(t);
    } else if (loc.node->is_array()) {
      auto i = doc::Pointer::AsIndex(t);
      if (i && *i < loc.node->items().size()) next = &loc.node->items()[*i];
    }
    if (!next) {
      *why = fmt::format("`{}` has no location `{}`", DisplayName(root.resource),
                         root.pointer + ptr->ToString());
      return {};
    }
    loc.node = next;
    loc.pointer += "/" + doc::Pointer::Escape(t);
    if (const doc::Node* id = next->is_object() ? next->Find("$id") : nullptr;
        id && id->is_string() && !id->as_string().empty() && id->as_string()[0] != '#') {
      std::string res, frag;
      SplitFragment(flow::ResolveUrl(loc.base, id->as_string()), &res, &frag);
      loc.base = res;
    }
  }
  return loc;
}

SchemaLoc Index::Resolve(std::string_view ref, std::string_view base, std::string* why) const {
  std::string abs = base.empty() ? std::string(ref) : flow::ResolveUrl(base, ref);
  std::string res, frag;
  SplitFragment(abs, &res, &frag);
  SchemaLoc root;
  if (auto it = ids_.find(res); it != ids_.end()) {
    root = SchemaLoc{it->second.node, it->second.resource, it->second.pointer, res};
  } else if (auto r = resources_.find(res); r != resources_.end()) {
    root = SchemaLoc{r->second, res, "", res};
  } else {
    *why = fmt::format("`{}` was not loaded", res);
    return {};
  }
  if (frag.empty()) return root;
  if (frag[0] == '/') return ResolvePointer(root, frag, why);
  if (auto it = anchors_.find(res + "#" + frag); it != anchors_.end()) {
    // The anchor's own base: the nearest `$id` is `res` when the anchor was found here.
    return SchemaLoc{it->second.node, it->second.resource, it->second.pointer, res};
  }
  *why = fmt::format("no `$anchor: {}` in `{}`", frag, DisplayName(res));
  std::vector<std::string> names;
  for (const auto& [k, _] : anchors_) {
    if (k.rfind(res + "#", 0) == 0) names.push_back(k.substr(res.size() + 1));
  }
  // Anchors are case-sensitive; a case-only difference is the likeliest typo.
  auto lower = [](std::string x) {
    for (auto& c : x) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return x;
  };
  std::optional<std::string> guess;
  for (const auto& n : names) {
    if (lower(n) == lower(frag)) guess = n;
  }
  if (!guess) guess = ClosestMatch(frag, names);
  if (guess) *why += fmt::format(" (did you mean `#{}`?)", *guess);
  return {};
}

void Index::CheckRefs(Diagnostics* diags) const {
  for (const auto& site : refs_) {
    std::string why;
    SchemaLoc loc = Resolve(site.ref->as_string(), site.base, &why);
    if (loc.node) continue;
    std::string res, frag;
    SplitFragment(flow::ResolveUrl(site.base, site.ref->as_string()), &res, &frag);
    if (!resources_.count(res) && !ids_.count(res)) continue;  // unreadable: reported on load
    std::string hint;
    const std::string& r = site.ref->as_string();
    if (!r.empty() && r[0] == '#' && r.size() > 1 && r[1] != '/' &&
        r.find('/') != std::string::npos) {
      hint = "JSON pointers start with / (write `#/" + r.substr(1) + "`)";
    }
    diags->Error(DisplayName(site.resource), site.ref->mark(),
                 fmt::format("$ref `{}` resolves to nothing: {}", r, why),
                 fmt::format("schema at {}", site.pointer.empty() ? "/" : site.pointer), hint);
  }
}

}  // namespace flow::schema
