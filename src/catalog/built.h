// The built catalog: one SQLite database holding every source and schema as read plus
// tables of everything later commands need (collections, projections, inferred shapes,
// derivations, transforms, lambdas, targets, materializations, captures, tests and npm
// dependencies). docs/built-catalog.md describes the tables. This file and check_derivation.cc's
// SQL syntax check are the catalog module's only users of SQLite.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "catalog/check.h"
#include "catalog/loader.h"

namespace flow::catalog {

// Bumped on incompatible table changes; a catalog of another format is refused (rebuild it).
// 4: `dead_letters` of transforms and materialization bindings.
constexpr int kBuiltCatalogFormat = 4;

// Writes the database at `path`, replacing any previous file atomically.
Result<bool> WriteBuiltCatalog(const std::string& path, const Loaded& loaded, const Built& built);

// What runtime commands need of a projection.
struct ProjectionRecord {
  std::string field;
  std::string location;  // JSON pointer; "" for `flow_document`
  bool partition = false;
  uint8_t types = 127;   // schema::Types bits of the location (all, when outside the schema)
  bool must_exist = false;
};

// What runtime commands need of a collection.
struct CollectionRecord {
  std::string name;
  std::string bundle;             // self-contained schema JSON
  std::vector<std::string> key;   // JSON pointers
  bool derived = false;
  std::vector<ProjectionRecord> projections;  // by field name
  std::string fragment_codec;     // "gzip", "zstd", "none"; empty: the default
  uint64_t fragment_length = 0;   // 0: the default
  int64_t flush_interval = 0;     // seconds; 0: the default
};

// The record of a checked collection.
CollectionRecord MakeCollectionRecord(const BuiltCollection& c);

// The sources and schemas a built catalog was built from, as read, by URL, and its root.
struct BuiltResources {
  std::string root_url;
  std::map<std::string, std::string> contents;
};
Result<BuiltResources> ReadBuiltResources(const std::string& path);

// Reads the collections of a built catalog. Fails with a user error when the file is not a
// built catalog of this format.
Result<std::vector<CollectionRecord>> ReadBuiltCollections(const std::string& path);

}  // namespace flow::catalog
