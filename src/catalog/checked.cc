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

}  // namespace flow::catalog
