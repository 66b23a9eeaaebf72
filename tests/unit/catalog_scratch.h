// Helpers the unit tests share for catalogs: writing source files and loading and checking
// a catalog from them, keeping every diagnostic.
#pragma once

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "base/diagnostics.h"
#include "base/url.h"
#include "catalog/check.h"
#include "catalog/fetch.h"
#include "catalog/loader.h"

namespace flow::testing {

// Writes `content` to `path`, creating its directory.
inline void WriteFile(const std::string& path, const std::string& content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << content;
}

// A catalog loaded from sources and checked, with its diagnostics sorted.
struct CheckedCatalog {
  std::unique_ptr<catalog::Loaded> loaded;
  catalog::Built built;  // points into `loaded`
  Diagnostics diags;

  const catalog::Catalog& cat() const { return loaded->catalog; }
  // Every diagnostic, formatted, one after the other.
  std::string Text() const {
    std::string out;
    for (const auto& d : diags.items()) out += d.Format(false) + "\n";
    return out;
  }
};

// Loads and checks the catalog whose root source is the file `root`.
inline std::unique_ptr<CheckedCatalog> LoadAndCheckCatalog(const std::string& root) {
  auto c = std::make_unique<CheckedCatalog>();
  catalog::Fetcher fetcher;
  c->loaded = catalog::LoadCatalog(FileUrl(root), &fetcher, &c->diags);
  catalog::CheckCatalog(*c->loaded, &c->built, &c->diags);
  c->diags.SortAndDedupe();
  return c;
}

}  // namespace flow::testing
