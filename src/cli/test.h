// `flowctl test`: run the catalog's tests (SPEC section 6).
#pragma once

#include <string>

#include "cli/command.h"
#include "cli/common.h"

namespace flow::cli {

struct TestOptions {
  CatalogOptions catalog;
  std::string filter;  // only tests whose name contains it
};

// Registers `flowctl test` and its flags on `app`.
Command RegisterTest(CLI::App& app);

int RunTest(const GlobalOptions& g, const TestOptions& o);

}  // namespace flow::cli
