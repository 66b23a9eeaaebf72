// Schema index: every schema resource of a catalog, with its `$id`s and `$anchor`s, so
// that any `$ref` (relative, absolute, `#/pointer`, `#anchor`) resolves to a Node.
// The index borrows the Nodes it is given; they must outlive it. Not thread-safe.
#pragma once

#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/diagnostics.h"
#include "doc/node.h"

namespace flow::schema {

// A schema node and where it is: the file holding it, its JSON pointer within that file,
// and the base URI enclosing it (for a root, the URL it was retrieved by). The node's own
// `$id`, if any, re-bases that: BaseInside gives the base its `$ref`s resolve against.
// For a schema written inline in a catalog source, `resource` and `pointer` still name
// the file and the place in it (what messages show); only `base` differs: the inline
// schema's own URL (InlineSchemaUrl).
struct SchemaLoc {
  const doc::Node* node = nullptr;
  std::string resource;  // URL of the file, no fragment
  std::string pointer;   // RFC 6901 pointer of `node` within the file
  std::string base;      // base URI enclosing `node`, no fragment

  // Identity of the node, and its place for messages: file URL + '#' + pointer.
  std::string Id() const { return resource + "#" + pointer; }
};

// The canonical URL of a schema written inline at `pointer` of the catalog source
// `file_url`, as Flow named them: `<file_url>?ptr=<pointer>` (the pointer percent-encoded
// where a URL requires it). The inline schema is a resource of its own under this URL:
// `#/...` and `#anchor` inside it resolve within it, and relative URLs still resolve
// against the file (a reference's own path replaces the query).
std::string InlineSchemaUrl(std::string_view file_url, std::string_view pointer);

// If `url` (without fragment) is an inline schema's URL `<file>?ptr=<pointer>`, sets
// `*file` and `*pointer` (decoded) and returns true.
bool SplitInlineSchemaUrl(std::string_view url, std::string* file, std::string* pointer);

// Where an inline schema is: its node at `pointer` of `file_url`, with its own URL as base.
inline SchemaLoc InlineSchemaLoc(const doc::Node* node, const std::string& file_url,
                                 const std::string& pointer) {
  return SchemaLoc{node, file_url, pointer, InlineSchemaUrl(file_url, pointer)};
}

// The base URI inside schema `n` whose enclosing base is `base`: `n`'s `$id` (without
// fragment) resolved against `base` when it has one that is not a plain-name fragment.
std::string BaseInside(const doc::Node& n, const std::string& base);

// A `$ref` seen while indexing, kept so that unresolvable ones are reported once.
struct RefSite {
  const doc::Node* ref = nullptr;  // the `$ref` string node
  std::string resource;
  std::string pointer;  // of the schema holding the `$ref`
  std::string base;
};

// A resource referenced by a `$ref` that is not loaded yet.
struct MissingResource {
  std::string url;                 // no fragment
  const doc::Node* ref = nullptr;  // the `$ref` string node
  std::string resource;            // the file holding the `$ref`
};

class Index {
 public:
  // Registers a whole file (catalog or schema) under its URL (no fragment).
  void AddResource(const std::string& url, const doc::Node* root);
  bool HasResource(const std::string& url) const { return resources_.count(url) > 0; }
  // Whether the resource `url` (no fragment) is at hand: a loaded file, a `$id`, or a
  // place in a loaded file named as an inline schema (`file?ptr=/p`).
  bool Known(const std::string& url) const;
  const doc::Node* Resource(const std::string& url) const;

  // Registers the inline schema at `loc` (from InlineSchemaLoc) under its URL `loc.base`,
  // then indexes it as IndexSchema does.
  void IndexInlineSchema(const SchemaLoc& loc, std::vector<MissingResource>* missing);

  // Walks the schema at `loc`, registering `$id` and `$anchor` and recording `$ref`s.
  // Appends to `missing` the resource URLs referenced but not yet added (to be loaded).
  // Indexing the same node twice is a no-op.
  void IndexSchema(const SchemaLoc& loc, std::vector<MissingResource>* missing);

  // Resolves `ref` against `base`. On failure returns a SchemaLoc with node == nullptr and
  // sets `*why`.
  SchemaLoc Resolve(std::string_view ref, std::string_view base, std::string* why) const;

  // Resolves an absolute URL with optional fragment (e.g. a collection's `schema`).
  SchemaLoc ResolveUrl(std::string_view url, std::string* why) const {
    return Resolve(url, "", why);
  }

  // Every `$ref` recorded by IndexSchema.
  const std::vector<RefSite>& refs() const { return refs_; }

  // Reports `$ref`s that resolve nowhere.
  void CheckRefs(Diagnostics* diags) const;

  // Reports each `$ref` cycle that consumes no input (SPEC 1.4): a schema that leads back
  // to itself through `$ref`s and in-place applicators (`allOf`, `anyOf`, `oneOf`, `not`,
  // `if`/`then`/`else`, `dependentSchemas`) without passing through `properties`, `items`
  // or another keyword that descends into the document. Validating against one would never
  // end. The error is at a `$ref` of the cycle and names the whole cycle.
  void CheckRefCycles(Diagnostics* diags) const;

 private:
  void Walk(const doc::Node& n, const std::string& resource, const std::string& pointer,
            std::string base, std::vector<MissingResource>* missing, int depth);
  SchemaLoc ResolvePointer(const SchemaLoc& root, std::string_view fragment,
                           std::string* why) const;
  // The schema a URL without fragment names: a `$id`, a file, or a location of a loaded
  // file named as an inline schema (`file?ptr=/p`). node == nullptr when none.
  SchemaLoc Root(const std::string& url) const;

  struct Entry {
    const doc::Node* node;
    std::string resource;
    std::string pointer;
    std::string base;  // the base enclosing `node` (its own `$id` not yet applied)
  };
  std::map<std::string, const doc::Node*> resources_;
  std::unordered_map<std::string, Entry> ids_;      // absolute URI (no fragment) -> schema
  std::unordered_map<std::string, Entry> anchors_;  // absolute URI + "#name" -> schema
  std::unordered_map<const doc::Node*, bool> indexed_;
  std::vector<RefSite> refs_;
};

// Whether `keyword` applies its subschema(s) to the same instance, not a part of it:
// `allOf`, `anyOf`, `oneOf`, `not`, `if`, `then`, `else`, `dependentSchemas`,
// `dependencies` (`$ref` aside).
bool IsInPlaceApplicator(std::string_view keyword);

// How a keyword holds subschemas: not at all, as one schema (`not`, `items: {}`), as a
// map of name to schema (`properties`, `$defs`), or as a list (`allOf`, `items: []`).
enum class SubschemaKind { kNone, kSingle, kMap, kList };
SubschemaKind SubschemaKeyword(const std::string& keyword, const doc::Node& value);

// Calls `fn(child, keyword_pointer_suffix)` for each direct subschema of `n`.
template <typename Fn>
void ForEachSubschema(const doc::Node& n, Fn&& fn) {
  if (!n.is_object()) return;
  for (const auto& m : n.members()) {
    const std::string& k = m.key;
    const doc::Node& v = m.value;
    switch (SubschemaKeyword(k, v)) {
      case SubschemaKind::kSingle:
        fn(v, "/" + doc::Pointer::Escape(k));
        break;
      case SubschemaKind::kMap:
        for (const auto& p : v.members()) {
          fn(p.value, "/" + doc::Pointer::Escape(k) + "/" + doc::Pointer::Escape(p.key));
        }
        break;
      case SubschemaKind::kList:
        for (size_t i = 0; i < v.items().size(); ++i) {
          fn(v.items()[i], "/" + k + "/" + std::to_string(i));
        }
        break;
      case SubschemaKind::kNone:
        break;
    }
  }
}

}  // namespace flow::schema
