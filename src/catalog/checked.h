// A catalog loaded from its sources and checked: where the commands that use a whole
// catalog start (build, test, run, develop, materialize, docs).
#pragma once

#include <memory>
#include <string>

#include "base/diagnostics.h"
#include "base/result.h"
#include "catalog/check.h"
#include "catalog/fetch.h"
#include "catalog/loader.h"

namespace flow::catalog {

struct Checked {
  std::unique_ptr<Loaded> loaded;
  Built built;  // points into `loaded`
};

// Loads the catalog at `root_url` through `fetcher` and checks it, adding its problems to
// `diags` (sorted, duplicates dropped). With `built_catalog` set, the sources and schemas
// stored in that built catalog are checked again instead, from its root. Fails only when
// the built catalog cannot be read; the caller decides what the diagnostics mean.
Result<Checked> LoadAndCheck(const std::string& root_url, const std::string& built_catalog, Fetcher* fetcher,
                             Diagnostics* diags);

// What a checked catalog holds, as `flowctl build` reports it.
struct Counts {
  size_t collections = 0, derived = 0, projections = 0, transforms = 0;
  size_t materializations = 0, targets = 0, bindings = 0, captures = 0, tests = 0, steps = 0;
  size_t sources = 0, npm_dependencies = 0;
};
Counts CountsOf(const Checked& checked);

}  // namespace flow::catalog
