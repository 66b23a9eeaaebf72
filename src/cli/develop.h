// `flowctl develop`: `run` plus the ingestion API (SPEC section 7), file-drop captures, a
// status view, and live reload of the catalog's sources (SPEC section 8). The flags and the
// status view; develop itself is the `develop` module (develop/develop.h).
#pragma once

#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/common.h"

namespace flow::cli {

struct DevelopOptions {
  CatalogOptions catalog;
  std::string data_dir = kDefaultDataDir;
  std::string host = "127.0.0.1";
  int port = 8081;
  bool no_watch = false;
  std::vector<std::string> materializations;  // run only these (default: all)
  double status_interval = 10;  // seconds between status log lines when not on a terminal
  uint64_t max_body = 64ull << 20;
  double request_timeout = 30;  // seconds for a request's headers and body to arrive
  // Web origins (besides develop's own) whose pages may call the API: "http://host:port".
  std::vector<std::string> allow_origins;
};

// Registers `flowctl develop` and its flags on `app`.
Command RegisterDevelop(CLI::App& app);

int RunDevelop(const GlobalOptions& g, const DevelopOptions& o);

}  // namespace flow::cli
