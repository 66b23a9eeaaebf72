#include "schema/index.h"

#include <fmt/format.h>

#include <cctype>

#include "base/strings.h"
#include "base/url.h"

namespace flow::schema {
namespace {

// A resource as messages name it: a file, or an inline schema by its place in its file.
std::string ResourceName(const std::string& url) {
  std::string file, ptr;
  if (SplitInlineSchemaUrl(url, &file, &ptr)) {
    return fmt::format("the inline schema at {} of `{}`", ptr.empty() ? "/" : ptr,
                       DisplayName(file));
  }
  return fmt::format("`{}`", DisplayName(url));
}

}  // namespace

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

std::string InlineSchemaUrl(std::string_view file_url, std::string_view pointer) {
  std::string out(file_url);
  out += "?ptr=";
  for (char ch : pointer) {
    auto c = static_cast<unsigned char>(ch);
    // What RFC 3986 allows in a query passes (`~` escapes of the pointer included); `%`,
    // `#`, spaces, controls and non-ASCII bytes are percent-encoded.
    if (std::isalnum(c) ||
        std::string_view("-._~!$&'()*+,;=:@/?").find(ch) != std::string_view::npos) {
      out += ch;
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

bool SplitInlineSchemaUrl(std::string_view url, std::string* file, std::string* pointer) {
  size_t q = url.find('?');
  if (q == std::string_view::npos || url.substr(q + 1, 4) != "ptr=") return false;
  std::string ptr = PercentDecode(url.substr(q + 5));
  if (!ptr.empty() && ptr[0] != '/') return false;
  *file = std::string(url.substr(0, q));
  *pointer = std::move(ptr);
  return true;
}

std::string BaseInside(const doc::Node& n, const std::string& base) {
  const doc::Node* id = n.is_object() ? n.Find("$id") : nullptr;
  if (!id || !id->is_string() || id->as_string().empty() || id->as_string()[0] == '#') return base;
  std::string res, frag;
  SplitFragment(flow::ResolveUrl(base, id->as_string()), &res, &frag);
  return res;
}

void Index::AddResource(const std::string& url, const doc::Node* root) {
  resources_[url] = root;
}

const doc::Node* Index::Resource(const std::string& url) const {
  auto it = resources_.find(url);
  return it == resources_.end() ? nullptr : it->second;
}

void Index::IndexInlineSchema(const SchemaLoc& loc, std::vector<MissingResource>* missing) {
  if (!loc.node) return;
  ids_.emplace(loc.base, Entry{loc.node, loc.resource, loc.pointer, loc.base});
  IndexSchema(loc, missing);
}

bool Index::Known(const std::string& url) const {
  if (resources_.count(url) || ids_.count(url)) return true;
  std::string file, ptr;
  return SplitInlineSchemaUrl(url, &file, &ptr) && resources_.count(file);
}

void Index::IndexSchema(const SchemaLoc& loc, std::vector<MissingResource>* missing) {
  if (!loc.node || indexed_.count(loc.node)) return;
  Walk(*loc.node, loc.resource, loc.pointer, loc.base, missing, 0);
}

void Index::Walk(const doc::Node& n, const std::string& resource, const std::string& pointer,
                 std::string base, std::vector<MissingResource>* missing, int depth) {
  if (!n.is_object() || depth > 512) return;
  if (!indexed_.emplace(&n, true).second) return;
  const std::string enclosing = base;
  if (const doc::Node* id = n.Find("$id"); id && id->is_string()) {
    std::string abs = flow::ResolveUrl(base, id->as_string());
    std::string res, frag;
    SplitFragment(abs, &res, &frag);
    if (!frag.empty() && res == base.substr(0, base.find('#'))) {
      // Draft-7 plain-name fragment: `$id: "#name"` is an anchor.
      anchors_.emplace(res + "#" + frag, Entry{&n, resource, pointer, enclosing});
    } else {
      base = res;
      ids_.emplace(res, Entry{&n, resource, pointer, enclosing});
    }
  }
  if (const doc::Node* a = n.Find("$anchor"); a && a->is_string()) {
    std::string res, frag;
    SplitFragment(base, &res, &frag);
    anchors_.emplace(res + "#" + a->as_string(), Entry{&n, resource, pointer, enclosing});
  }
  if (const doc::Node* r = n.Find("$ref"); r && r->is_string()) {
    refs_.push_back(RefSite{r, resource, pointer, base});
    std::string abs = flow::ResolveUrl(base, r->as_string());
    std::string res, frag;
    SplitFragment(abs, &res, &frag);
    if (!res.empty() && !Known(res) && res != base.substr(0, base.find('#'))) {
      // An inline schema of a source not loaded yet: load the source.
      std::string file, ptr;
      if (SplitInlineSchemaUrl(res, &file, &ptr)) res = file;
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
    loc.base = BaseInside(*loc.node, loc.base);
    const doc::Node* next = nullptr;
    if (loc.node->is_object()) {
      next = loc.node->Find(t);
    } else if (loc.node->is_array()) {
      auto i = doc::Pointer::AsIndex(t);
      if (i && *i < loc.node->items().size()) next = &loc.node->items()[*i];
    }
    if (!next) {
      std::string file, inline_ptr;
      if (SplitInlineSchemaUrl(root.base, &file, &inline_ptr) && file == root.resource &&
          inline_ptr == root.pointer) {  // within an inline schema, pointers are its own
        *why = fmt::format("{} has no location `{}`", ResourceName(root.base), ptr->ToString());
      } else {
        *why = fmt::format("`{}` has no location `{}`", DisplayName(root.resource),
                           root.pointer + ptr->ToString());
      }
      return {};
    }
    loc.node = next;
    loc.pointer += "/" + doc::Pointer::Escape(t);
  }
  return loc;
}

SchemaLoc Index::Root(const std::string& res) const {
  if (auto it = ids_.find(res); it != ids_.end()) {
    return SchemaLoc{it->second.node, it->second.resource, it->second.pointer, it->second.base};
  }
  if (auto r = resources_.find(res); r != resources_.end()) {
    return SchemaLoc{r->second, res, "", res};
  }
  // `file?ptr=/p` names the location /p of a loaded source as a resource of its own (inline
  // schemas of the catalog were registered under such URLs; this serves any other place).
  std::string file, ptr, why;
  if (SplitInlineSchemaUrl(res, &file, &ptr)) {
    if (auto r = resources_.find(file); r != resources_.end()) {
      SchemaLoc at = ResolvePointer(SchemaLoc{r->second, file, "", file}, ptr, &why);
      at.base = res;
      return at;
    }
  }
  return {};
}

SchemaLoc Index::Resolve(std::string_view ref, std::string_view base, std::string* why) const {
  std::string abs = base.empty() ? std::string(ref) : flow::ResolveUrl(base, ref);
  std::string res, frag;
  SplitFragment(abs, &res, &frag);
  SchemaLoc root = Root(res);
  if (!root.node) {
    std::string file, ptr;
    if (SplitInlineSchemaUrl(res, &file, &ptr) && resources_.count(file)) {
      *why = fmt::format("`{}` has no location `{}`", DisplayName(file), ptr);
    } else {
      *why = fmt::format("`{}` was not loaded", res);
    }
    return {};
  }
  if (frag.empty()) return root;
  if (frag[0] == '/') return ResolvePointer(root, frag, why);
  if (auto it = anchors_.find(res + "#" + frag); it != anchors_.end()) {
    return SchemaLoc{it->second.node, it->second.resource, it->second.pointer, it->second.base};
  }
  *why = fmt::format("no `$anchor: {}` in {}", frag, ResourceName(res));
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
    std::string res, frag;
    SplitFragment(flow::ResolveUrl(site.base, site.ref->as_string()), &res, &frag);
    if (IsHttpUrl(site.resource) && !IsHttpUrl(res)) {  // SPEC 1.1; never read (loader.cc)
      diags->Error(DisplayName(site.resource), site.ref->mark(),
                   fmt::format("$ref `{}` names a local file, `{}`: a source fetched over HTTP "
                               "may refer only to remote (http:// or https://) sources, never "
                               "to local files",
                               site.ref->as_string(), DisplayName(res)),
                   fmt::format("schema at {}", site.pointer.empty() ? "/" : site.pointer),
                   "serve it over HTTP as well, or make the catalog that refers to it local");
      continue;
    }
    SchemaLoc loc = Resolve(site.ref->as_string(), site.base, &why);
    if (loc.node) continue;
    if (!Known(res)) continue;  // unreadable: reported on load
    std::string hint;
    const std::string& r = site.ref->as_string();
    std::string file, inline_ptr;
    if (!r.empty() && r[0] == '#' && r.size() > 1 && r[1] != '/' &&
        r.find('/') != std::string::npos) {
      hint = "JSON pointers start with / (write `#/" + r.substr(1) + "`)";
    } else if (!r.empty() && r[0] == '#' && SplitInlineSchemaUrl(res, &file, &inline_ptr) &&
               PercentDecode(r.substr(1)).rfind(inline_ptr + "/", 0) == 0) {
      // A pointer from the top of the file, as if `#` were the whole file, not the schema.
      hint = fmt::format("`#` is the inline schema at {} itself, not the whole file (write `#{}`)",
                         inline_ptr, PercentDecode(r.substr(1)).substr(inline_ptr.size()));
    }
    diags->Error(DisplayName(site.resource), site.ref->mark(),
                 fmt::format("$ref `{}` resolves to nothing: {}", r, why),
                 fmt::format("schema at {}", site.pointer.empty() ? "/" : site.pointer), hint);
  }
}

}  // namespace flow::schema
