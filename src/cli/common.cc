#include "cli/common.h"

#include <unistd.h>

#include <cstdlib>

#include <fmt/format.h>

#include "base/log.h"
#include "base/strings.h"
#include "base/url.h"
#include "catalog/fetch.h"
#include "cli/output.h"

namespace flow::cli {

bool UseColor(const GlobalOptions& g) {
  return !g.no_color && std::getenv("NO_COLOR") == nullptr && ::isatty(STDERR_FILENO);
}

void ConfigureLogging(const GlobalOptions& g) {
  LogFormat format = g.log_format == "json" ? LogFormat::kJson : LogFormat::kText;
  LogLevel level = format == LogFormat::kJson ? LogLevel::kInfo : LogLevel::kWarn;
  if (g.verbosity == 1) level = LogLevel::kInfo;
  if (g.verbosity >= 2) level = LogLevel::kDebug;
  if (auto parsed = ParseLogLevel(g.log_level)) level = *parsed;
  ConfigureLog(level, format);
}

std::string SourceUrl(const std::string& source) {
  if (IsHttpUrl(source) || IsFileUrl(source)) return source;
  return FileUrl(source);
}

void PrintDiagnostics(const GlobalOptions& g, const Diagnostics& diags) {
  bool color = UseColor(g);
  for (const auto& d : diags.items()) {
    if (!JsonOutput()) {
      fmt::print(stderr, "{}\n", d.Format(color));
      continue;
    }
    std::vector<LogField> fields{{"file", d.file}};
    if (d.mark.line > 0) {
      fields.emplace_back("line", d.mark.line);
      fields.emplace_back("col", d.mark.col);
    }
    if (!d.scope.empty()) fields.emplace_back("scope", d.scope);
    if (!d.hint.empty()) fields.emplace_back("hint", d.hint);
    Log(d.is_warning() ? LogLevel::kWarn : LogLevel::kError, d.message, fields);
  }
}

std::optional<CheckedCatalog> LoadAndCheck(const GlobalOptions& g, const CatalogOptions& o,
                                           const std::string& consequence, int* exit_code) {
  std::vector<std::pair<std::string, std::string>> mappings;
  for (const auto& m : o.resource_map) {
    std::pair<std::string, std::string> kv;
    if (!catalog::Fetcher::ParseMapping(m, &kv)) {
      PrintError(fmt::format("--resource-map `{}` is not PREFIX=DIR", m));
      *exit_code = kExitUsage;
      return std::nullopt;
    }
    mappings.push_back(kv);
  }
  catalog::Fetcher fetcher(mappings);
  Diagnostics diags;
  auto checked = catalog::LoadAndCheck(SourceUrl(o.source), o.catalog, &fetcher, &diags);
  if (!checked) {
    *exit_code = PrintFailure(checked.error());
    return std::nullopt;
  }
  if (!diags.empty()) {
    PrintDiagnostics(g, diags);
    size_t errors = diags.errors(), warnings = diags.warnings();
    if (errors > 0 || o.deny_warnings) {
      std::string summary = fmt::format("{} in the catalog{}{}", diags.CountText(),
                                        errors == 0 ? " (denied by --deny-warnings)" : "", consequence);
      if (JsonOutput()) {
        PrintError(summary, {{"errors", errors}, {"warnings", warnings}});
      } else {
        fmt::print(stderr, "\n{}\n", summary);
      }
      *exit_code = kExitUserError;
      return std::nullopt;
    }
    std::string summary =
        fmt::format("{} in the catalog (use --deny-warnings to fail on warnings)", diags.CountText());
    if (JsonOutput()) {
      Log(LogLevel::kWarn, summary, {{"warnings", warnings}});
    } else {
      fmt::print(stderr, "{}\n\n", summary);
    }
  }
  return std::move(checked.value());
}

std::optional<std::vector<catalog::CollectionRecord>> LoadCollections(const GlobalOptions& g,
                                                                     const CatalogOptions& o,
                                                                     int* exit_code) {
  if (!o.catalog.empty()) {
    auto read = catalog::ReadBuiltCollections(o.catalog);
    if (!read) {
      *exit_code = PrintFailure(read.error());
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
  PrintError(fmt::format("no collection `{}` in the catalog{}", name, hint.empty() ? "" : "; " + hint));
  *exit_code = kExitUserError;
  return nullptr;
}

std::optional<uint64_t> ParseBudget(const std::string& text) {
  auto budget = ParseByteSize(text);
  if (!budget || *budget == 0) {
    PrintError(fmt::format("--memory-budget `{}` is not a size like 64MiB or 1GiB", text));
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
    *exit_code = PrintFailure(compiled.error());
    return nullptr;
  }
  return compiled.value();
}

std::optional<OwnedDataDir> OpenDataDir(const std::string& dir, int* exit_code) {
  OwnedDataDir out;
  auto lock = store::DataDirLock::Acquire(dir);
  if (!lock) {
    *exit_code = PrintFailure(lock.error());
    return std::nullopt;
  }
  out.lock = std::move(lock.value());
  auto store = store::Store::Open(dir);
  if (!store) {
    *exit_code = PrintFailure(store.error());
    return std::nullopt;
  }
  out.store = std::move(store.value());
  return out;
}

}  // namespace flow::cli
