// `flowctl ingest`: a file or stdin into a collection as one transaction (SPEC section 8).
#pragma once

#include <string>

#include "cli/command.h"
#include "cli/common.h"

namespace flow::cli {

struct IngestOptions {
  CatalogOptions catalog;
  std::string data_dir = kDefaultDataDir;
  std::string collection;
  std::string input;   // a file, or "" / "-" for stdin
  std::string format;  // json, csv, tsv; empty: from the file extension, else json
  std::string codec;   // overrides the collections' fragment codec
  std::string memory_budget = kDefaultMemoryBudget;
  std::string spill_dir;
  std::string url;  // a running develop's ingestion API (default: the develop over data_dir, if any)
};

// Registers `flowctl ingest` and its flags on `app`.
Command RegisterIngest(CLI::App& app);

int RunIngest(const GlobalOptions& g, const IngestOptions& o);

}  // namespace flow::cli
