// Shared pieces of the command implementations: global flags, colour, and loading the
// catalog a command needs (from sources, checked in memory, or from a built catalog).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "catalog/built.h"
#include "catalog/check.h"
#include "catalog/checked.h"
#include "catalog/loader.h"
#include "runtime/collection.h"
#include "store/journal.h"
#include "store/lock.h"

namespace flow::cli {

// A command's data directory unless --data-dir names another.
inline constexpr char kDefaultDataDir[] = "flowctl-data";
// A command's memory for documents before its combiner spills to disk, unless --memory-budget
// says otherwise.
inline constexpr char kDefaultMemoryBudget[] = "256MiB";

struct GlobalOptions {
  bool no_color = false;
  int verbosity = 0;        // -v: info, -vv: debug
  std::string log_level;    // --log-level; overrides -v
  std::string log_format = "text";
};

// Configures logging from `g` (SPEC 8): the threshold is --log-level, else from -v, else
// warn (info with --log-format json, so that a command's summary is a record too).
void ConfigureLogging(const GlobalOptions& g);

bool UseColor(const GlobalOptions& g);

// `source` as a URL (paths become file:// URLs).
std::string SourceUrl(const std::string& source);

struct CatalogOptions {
  std::string source = "flow.yaml";
  std::string catalog;  // a built catalog; used instead of `source` when set
  std::vector<std::string> resource_map;
  bool deny_warnings = false;  // warnings fail the command like errors
  bool no_type_check = false;  // --no-type-check: nodeJS lambdas are not type-checked
};

// A catalog loaded from sources and checked.
using CheckedCatalog = catalog::Checked;

// Prints `diags` to stderr: as `file:line:col: error: message` lines (coloured per `g`),
// or as log records with --log-format json.
void PrintDiagnostics(const GlobalOptions& g, const Diagnostics& diags);

// Loads and checks the catalog at `o.source`, printing its warnings and errors to stderr. On
// errors (or warnings with `o.deny_warnings`) appends `consequence` to the summary line (e.g.
// "; catalog.db was not written") and returns nullopt with `*exit_code` set.
std::optional<CheckedCatalog> LoadAndCheck(const GlobalOptions& g, const CatalogOptions& o,
                                           const std::string& consequence, int* exit_code);

// The collections of the catalog. On failure prints the errors to stderr and returns
// nullopt with `*exit_code` set.
std::optional<std::vector<catalog::CollectionRecord>> LoadCollections(const GlobalOptions& g,
                                                                     const CatalogOptions& o,
                                                                     int* exit_code);

// The collection named `name`, or null after printing an error with a "did you mean" hint
// (and setting `*exit_code`).
const catalog::CollectionRecord* FindCollection(const std::vector<catalog::CollectionRecord>& records,
                                                const std::string& name, int* exit_code);

// Parses a `--memory-budget` value; on a bad one prints the error and returns nullopt (a
// usage error).
std::optional<uint64_t> ParseBudget(const std::string& text);

// Loads the catalog and compiles the collection `name` (with `codec` overriding its fragment
// codec, when given). On failure prints the errors and returns null with `*exit_code` set.
std::shared_ptr<const runtime::Collection> LoadCollection(const GlobalOptions& g, const CatalogOptions& o,
                                                          const std::string& name,
                                                          std::optional<store::Codec> codec, int* exit_code);

// A data directory owned by this process: its lock and its recovered store.
struct OwnedDataDir {
  std::unique_ptr<store::DataDirLock> lock;
  std::unique_ptr<store::Store> store;
};

// Takes `dir`'s lock and opens (recovering) its store. On failure prints the error and
// returns nullopt with `*exit_code` set.
std::optional<OwnedDataDir> OpenDataDir(const std::string& dir, int* exit_code);

}  // namespace flow::cli
