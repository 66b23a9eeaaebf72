// Filesystem seam: whole-file reads and writes with errors that name the path.
#pragma once

#include <string>

#include "base/result.h"

namespace flow {

// Reads the whole file. Errors name the path and the OS reason.
Result<std::string> ReadFile(const std::string& path);

// Writes `content` to `path` atomically (temporary file, fsync, rename).
Result<bool> WriteFileAtomic(const std::string& path, const std::string& content);

}  // namespace flow
