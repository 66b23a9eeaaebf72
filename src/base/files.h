// Filesystem seam: whole-file reads and writes with errors that name the path.
#pragma once

#include <string>

#include "base/result.h"

namespace flow {

// Reads the whole file. Errors name the path and the OS reason.
Result<std::string> ReadFile(const std::string& path);

// Reads a regular file of at most `max_bytes`; refuses anything else with an error naming
// the path: a directory, a FIFO, a socket or a device such as /dev/zero. The file is checked
// with stat before it is opened, opened without blocking (a FIFO that appears in between
// cannot hang the open) and checked again with fstat; reading stops past `max_bytes`, even
// when the file grows meanwhile. `what` names the file's role in the size error ("catalog
// source").
Result<std::string> ReadRegularFile(const std::string& path, size_t max_bytes,
                                    const std::string& what);

// Writes `content` to `path` atomically (temporary file, fsync, rename).
Result<bool> WriteFileAtomic(const std::string& path, const std::string& content);

}  // namespace flow
