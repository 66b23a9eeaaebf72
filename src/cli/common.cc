#include "cli/common.h"

#include <unistd.h>

#include <cstdlib>

#include <fmt/format.h>

#include "base/strings.h"
#include "base/url.h"
#include "catalog/fetch.h"

namespace flow::cli {

bool UseColor(const GlobalOptions& g) {
  return !g.no_color && std::getenv("NO_COLOR") == nullptr && ::isatty(STDERR_FILENO);
}

std::string SourceUrl(const std::string& source) {
  if (IsHttpUrl(source) || IsFileUrl(source)) return source;
  return FileUrl(source);
}

std::optional<CheckedCatalog> LoadAndCheck(const GlobalOptions& g, const CatalogOptions& o,
                                           const std::string& consequence, int* exit_code) {
  std::vector<std::pair<std::string, std::string>> mappings;
  for (const auto& m : o.resource_map) {
    std::pair<std::string, std::string> kv;
    if (!catalog::Fetcher::ParseMapping(m, &kv)) {
      fmt::print(stderr, "error: --resource-map `{}` is not PREFIX=DIR\n", m);
      *exit_code = kExitUsage;
      return std::nullopt;
    }
    mappings.push_back(kv);
  }
  catalog::Fetcher fetcher(mappings);
  std::string root = SourceUrl(o.source);
  if (!o.catalog.empty()) {
    // A built catalog holds every source and schema as read: check them again from there.
    auto resources = catalog::ReadBuiltResources(o.catalog);
    if (!resources) {
      fmt::print(stderr, "error: {}\n", resources.error().message);
      *exit_code = resources.error().ExitCode();
      return std::nullopt;
    }
    root = resources->root_url;
    fetcher.Preload(std::move(resources->contents));
  }
  Diagnostics diags;
  CheckedCatalog out;
  out.loaded = catalog::LoadCatalog(root, &fetcher, &diags);
  if (!out.loaded->catalog.files.empty()) catalog::CheckCatalog(*out.loaded, &out.built, &diags);
  if (!diags.empty()) {
    diags.SortAndDedupe();
    bool color = UseColor(g);
    for (const auto& d : diags.items()) fmt::print(stderr, "{}\n", d.Format(color));
    fmt::print(stderr, "\n{} error{} in the catalog{}\n", diags.size(), diags.size() == 1 ? "" : "s",
               consequence);
    *exit_code = kExitUserError;
    return std::nullopt;
  }
  return out;
}

std::optional<std::vector<catalog::CollectionRecord>> LoadCollections(const GlobalOptions& g,
                                                                     const CatalogOptions& o,
                                                                     int* exit_code) {
  if (!o.catalog.empty()) {
    auto read = catalog::ReadBuiltCollections(o.catalog);
    if (!read) {
      fmt::print(stderr, "error: {}\n", read.error().message);
      *exit_code = read.error().ExitCode();
      return std::nullopt;
    }
    return std::move(read.value());
  }
  auto checked = LoadAndCheck(g, o, "", exit_code);
  if (!checked) return std::nullopt;
  std::vector<catalog::CollectionRecord> out;
  for (const auto& c : checked->built.collections) {
    out.push_back(catalog::MakeCollectionRecord(c));
  }
  return out;
}

const catalog::CollectionRecord* FindCollection(const std::vector<catalog::CollectionRecord>& records,
                                                const std::string& name, int* exit_code) {
  std::vector<std::string> names;
  for (const auto& c : records) {
    if (c.name == name) return &c;
    names.push_back(c.name);
  }
  std::string hint = DidYouMean(name, names);
  fmt::print(stderr, "error: no collection `{}` in the catalog{}\n", name, hint.empty() ? "" : "; " + hint);
  *exit_code = kExitUserError;
  return nullptr;
}

std::optional<uint64_t> ParseBudget(const std::string& text) {
  auto budget = ParseByteSize(text);
  if (!budget || *budget == 0) {
    fmt::print(stderr, "error: --memory-budget `{}` is not a size like 64MiB or 1GiB\n", text);
    return std::nullopt;
  }
  return budget;
}

std::shared_ptr<const runtime::Collection> LoadCollection(const GlobalOptions& g, const CatalogOptions& o,
                                                          const std::string& name,
                                                          std::optional<store::Codec> codec, int* exit_code) {
  auto records = LoadCollections(g, o, exit_code);
  if (!records) return nullptr;
  const catalog::CollectionRecord* record = FindCollection(*records, name, exit_code);
  if (!record) return nullptr;
  auto compiled = runtime::Collection::Compile(*record, codec);
  if (!compiled) {
    fmt::print(stderr, "error: {}\n", compiled.error().message);
    *exit_code = compiled.error().ExitCode();
    return nullptr;
  }
  return compiled.value();
}

std::optional<OwnedDataDir> OpenDataDir(const std::string& dir, int* exit_code) {
  OwnedDataDir out;
  auto lock = store::DataDirLock::Acquire(dir);
  if (!lock) {
    fmt::print(stderr, "error: {}\n", lock.error().message);
    *exit_code = lock.error().ExitCode();
    return std::nullopt;
  }
  out.lock = std::move(lock.value());
  auto store = store::Store::Open(dir);
  if (!store) {
    fmt::print(stderr, "error: {}\n", store.error().message);
    *exit_code = store.error().ExitCode();
    return std::nullopt;
  }
  out.store = std::move(store.value());
  return out;
}

std::string HeadsJson(const std::map<std::string, uint64_t>& heads) {
  std::string out = "{";
  for (const auto& [journal, head] : heads) {
    if (out.size() > 1) out += ",";
    out += fmt::format("{}:{}", JsonQuote(journal), head);
  }
  return out + "}";
}

}  // namespace flow::cli
