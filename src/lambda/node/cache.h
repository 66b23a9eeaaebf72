// The cache of the Node.js lambdas (transpiled modules and npm installs, under a cache
// directory, DefaultNodeCacheDir by default): entry names and the helpers that let several
// flowctl processes fill it at once (an entry is written under a temporary name and renamed
// into place). Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace flow::lambda::node {

// Two independent 64-bit hashes of `s` as 32 hex digits: the name of a cache entry. Users
// also compare an entry's content byte for byte, so a collision is never served.
std::string HashKey(std::string_view s);

// Creates `dir` and its parents; an environment error naming it when that fails.
Result<bool> CreateDir(const std::string& dir);

// ".tmp-<pid>-<n>", unique within this machine: for a temporary entry renamed into place.
std::string TempSuffix();

}  // namespace flow::lambda::node
