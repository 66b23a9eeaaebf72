#include "runtime/fingerprint.h"

#include <fmt/format.h>

#include "store/codec.h"

namespace flow::runtime {
namespace {

// The JSON text of the catalog node `w` points at ("" when it does not resolve).
std::string NodeText(const catalog::Catalog& c, const catalog::Where& w) {
  const catalog::SourceFile* f = c.File(w.url);
  if (!f) return "";
  std::string why;
  auto ptr = doc::Pointer::Parse(w.pointer, &why);
  if (!ptr) return "";
  const doc::Node* n = f->root.At(*ptr);
  // A collection's place is its `name`: the spec is the object holding it.
  if (n && n->is_string() && w.pointer.size() > 5 &&
      w.pointer.compare(w.pointer.size() - 5, 5, "/name") == 0) {
    auto parent = doc::Pointer::Parse(w.pointer.substr(0, w.pointer.size() - 5), &why);
    if (parent) n = f->root.At(*parent);
  }
  return n ? n->ToJsonText() : "";
}

std::string Digest(const std::vector<std::string>& parts) {
  store::Sha1 sha;
  for (const auto& p : parts) {
    sha.Update(fmt::format("{}:", p.size()));
    sha.Update(p);
  }
  return sha.HexDigest();
}

}  // namespace

std::map<std::string, std::string> TaskFingerprints(const catalog::Catalog& c,
                                                    const catalog::Built& built) {
  std::map<std::string, std::string> out;
  std::string deps;
  for (const auto& d : c.node_dependencies) deps += d.package + "@" + d.version + ";";
  for (const auto& bd : built.derivations) {
    const catalog::CollectionSpec& spec = *bd.collection;
    std::vector<std::string> parts{NodeText(c, spec.where), deps, bd.register_bundle,
                                   bd.register_initial};
    if (const auto* bc = built.Collection(spec.name)) parts.push_back(bc->bundle);
    for (const auto& bt : bd.transforms) {
      parts.push_back(bt.source_schema_bundle);
      // Lambdas bind the source's projections (`$field` in SQLite) and read its documents.
      if (const auto* source = built.Collection(bt.spec->source)) {
        parts.push_back(source->bundle);
        for (const auto& p : source->projections) parts.push_back(p.field + "=" + p.location);
      }
      std::string shuffle;
      for (const auto& s : bt.shuffle) shuffle += s + ";";
      parts.push_back(shuffle);
      // Dead letters are validated against their collection's schema and partitioned by it.
      if (const auto* dead = built.Collection(bt.dead_letters))
        parts.push_back("dead:" + dead->bundle);
    }
    out["derivation:" + spec.name] = Digest(parts);
  }
  for (const auto& m : c.materializations) {
    std::vector<std::string> parts{NodeText(c, m.where)};
    for (const auto& t : c.targets) {
      if (t.name == m.target) parts.push_back(t.kind + " " + t.address);
    }
    auto it = built.bindings.find(m.name);
    if (it != built.bindings.end()) {
      for (const auto& bb : it->second) {
        std::string fields;
        for (const auto& f : bb.fields) fields += f + ";";
        parts.push_back(fields);
        if (const auto* bc = built.Collection(bb.spec->source)) {
          parts.push_back(bc->bundle);
          for (const auto& p : bc->projections) parts.push_back(p.field + "=" + p.location);
        }
        if (const auto* dead = built.Collection(bb.dead_letters))
          parts.push_back("dead:" + dead->bundle);
      }
    }
    out["materialization:" + m.name] = Digest(parts);
  }
  return out;
}

}  // namespace flow::runtime
