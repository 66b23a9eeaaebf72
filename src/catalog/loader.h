// Loading a catalog: reads the root source and everything it imports (each file once,
// cycles allowed), parses the sections into specs, and loads every schema resource that a
// spec or a `$ref` names, until nothing is missing. Problems become diagnostics.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/diagnostics.h"
#include "catalog/fetch.h"
#include "catalog/spec.h"
#include "schema/index.h"

namespace flow::catalog {

// A loaded catalog and the schema index over its files. Not copyable: the index points
// into the catalog's files.
struct Loaded {
  Catalog catalog;
  schema::Index index;
};

// Loads from `root_url` (an absolute URL). Returns the catalog even when diagnostics were
// added, so that checks can report as much as possible at once.
std::unique_ptr<Loaded> LoadCatalog(const std::string& root_url, Fetcher* fetcher,
                                    Diagnostics* diags);

}  // namespace flow::catalog
