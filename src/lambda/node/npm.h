// nodeDependencies installed with npm (the only file that runs npm) into the cache, one
// install per dependency set; lambdas reach them through globals (NodeGlobalName) and
// `require`. Several flowctl processes may install at once. Thread-safe.
#pragma once

#include <map>
#include <string>

#include "base/result.h"

namespace flow::lambda::node {

// Installs `deps` (package -> version range) with the npm binary `npm` (a path, or a name
// looked up on PATH) into <cache_dir>/node/deps/<key> (node_modules within), unless that
// set is already there; returns that directory. An install goes into a temporary directory
// renamed into place, so that concurrent flowctl processes never see a partial one. npm
// missing or failing is an environment error with npm's output.
Result<std::string> InstallDependencies(const std::map<std::string, std::string>& deps,
                                        const std::string& npm, const std::string& cache_dir);

}  // namespace flow::lambda::node
