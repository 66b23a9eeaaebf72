// The built catalog: one SQLite database holding every source and schema as read plus
// tables of everything later commands need (collections, projections, inferred shapes,
// derivations, transforms, lambdas, targets, materializations, captures, tests and npm
// dependencies). docs/built-catalog.md describes the tables. This file and check.cc's
// SQL syntax check are the catalog module's only users of SQLite.
#pragma once

#include <string>

#include "base/result.h"
#include "catalog/check.h"
#include "catalog/loader.h"

namespace flow::catalog {

constexpr int kBuiltCatalogFormat = 1;  // bumped on incompatible table changes

// Writes the database at `path`, replacing any previous file atomically.
Result<bool> WriteBuiltCatalog(const std::string& path, const Loaded& loaded, const Built& built);

}  // namespace flow::catalog
