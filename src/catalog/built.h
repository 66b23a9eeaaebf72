// The built catalog: one SQLite database holding every source and schema as read plus
// tables of everything later commands need (collections, projections, inferred shapes,
// derivations, transforms, lambdas, targets, materializations, captures, tests and npm
// dependencies). docs/built-catalog.md describes the tables. This file and check.cc's
// SQL syntax check are the catalog module's only users of SQLite.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "catalog/check.h"
#include "catalog/loader.h"

namespace flow::catalog {

constexpr int kBuiltCatalogFormat = 1;  // bumped on incompatible table changes

// Writes the database at `path`, replacing any previous file atomically.
Result<bool> WriteBuiltCatalog(const std::string& path, const Loaded& loaded, const Built& built);

// What runtime commands need of a collection.
struct CollectionRecord {
  std::string name;
  std::string bundle;             // self-contained schema JSON
  std::vector<std::string> key;   // JSON pointers
};

// Reads the collections of a built catalog. Fails with a user error when the file is not a
// built catalog of this format.
Result<std::vector<CollectionRecord>> ReadBuiltCollections(const std::string& path);

}  // namespace flow::catalog
