#include "catalog/checked.h"

#include "catalog/built.h"

namespace flow::catalog {

Result<Checked> LoadAndCheck(const std::string& root_url, const std::string& built_catalog, Fetcher* fetcher,
                             Diagnostics* diags) {
  std::string root = root_url;
  if (!built_catalog.empty()) {
    auto resources = ReadBuiltResources(built_catalog);
    if (!resources) return resources.error();
    root = resources->root_url;
    fetcher->Preload(std::move(resources->contents));
  }
  Checked out;
  out.loaded = LoadCatalog(root, fetcher, diags);
  if (!out.loaded->catalog.files.empty()) CheckCatalog(*out.loaded, &out.built, diags);
  diags->SortAndDedupe();
  return out;
}

Counts CountsOf(const Checked& checked) {
  const Catalog& cat = checked.loaded->catalog;
  const Built& built = checked.built;
  Counts n;
  n.collections = cat.collections.size();
  for (const auto& c : cat.collections) n.derived += c.derivation ? 1 : 0;
  for (const auto& c : built.collections) n.projections += c.projections.size();
  for (const auto& d : built.derivations) n.transforms += d.transforms.size();
  n.materializations = cat.materializations.size();
  n.targets = cat.targets.size();
  for (const auto& [_, b] : built.bindings) n.bindings += b.size();
  n.captures = cat.captures.size();
  n.tests = cat.tests.size();
  for (const auto& t : cat.tests) n.steps += t.steps.size();
  n.sources = cat.files.size();
  n.npm_dependencies = cat.node_dependencies.size();
  return n;
}

}  // namespace flow::catalog
