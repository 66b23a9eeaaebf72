// Parsing catalog source files into typed specs (spec.h). Shape errors — unknown keys
// (with "did you mean"), wrong value types, missing fields, malformed names, pointers and
// durations — are accumulated into Diagnostics; parsing continues past them.
#pragma once

#include "base/diagnostics.h"
#include "catalog/spec.h"

namespace flow::catalog {

// Reads the `import` list of a parsed file into `file->imports` (resolved URLs).
void ParseImports(SourceFile* file, Diagnostics* diags);

// Parses every section of `file` (other than `import`) and appends specs to `catalog`.
void ParseSections(const SourceFile& file, Catalog* catalog, Diagnostics* diags);

// True if `name` is a valid collection name: `/`-separated segments of letters, digits
// and `-_.`, no empty, `.` or `..` segment.
bool IsValidCollectionName(const std::string& name, std::string* why);

}  // namespace flow::catalog
