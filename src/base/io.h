// File I/O for durable storage, with the fault seam crash tests use. Every write, fsync and
// truncation of the journal store goes through here; errors are environment errors naming
// the path and the OS reason.
//
// Fault seam: the environment variable FLOWCTL_FAULT, e.g. `write:7` or `fsync:3` (several
// separated by commas), makes the 7th write (3rd fsync) of the process fail with EIO, and
// every later one too, as a failing disk would. Read once, at the first I/O call.
// Not thread-safe; each File is used by one thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace flow::io {

class File {
 public:
  File() = default;
  ~File();
  File(File&& o) noexcept;
  File& operator=(File&& o) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  // Opens for appending, creating the file when `create` (its directory must exist).
  static Result<File> OpenAppend(const std::string& path, bool create);
  // Opens read-only; a missing file is an error whose message says so (see `missing`).
  static Result<File> OpenRead(const std::string& path, bool* missing = nullptr);

  // Writes all of `data` at the end of the file.
  Result<bool> Append(std::string_view data);
  // Reads up to `n` bytes at `offset` into `out` (replacing it); fewer at the end.
  Result<bool> ReadAt(uint64_t offset, size_t n, std::string* out) const;
  // fdatasync: the written bytes survive a crash.
  Result<bool> Sync();
  // Starts writing back what was appended since the last call, without waiting, so that a
  // later Sync of a large file has little left to wait for. Advisory: errors are ignored
  // (Sync reports them).
  void StartWriteback();
  Result<bool> Truncate(uint64_t size);
  Result<uint64_t> Size() const;
  void Close();

  bool is_open() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
  uint64_t appended_ = 0;        // bytes appended through this handle
  uint64_t writeback_from_ = 0;  // of those, where StartWriteback starts next
};

// fsync of a directory, so that entries created or renamed in it survive a crash.
Result<bool> SyncDir(const std::string& dir);
// Creates `dir` and its missing parents, syncing each parent whose entries changed.
Result<bool> CreateDirs(const std::string& dir);
// rename(2), then syncs the destination's directory.
Result<bool> RenameDurably(const std::string& from, const std::string& to);

}  // namespace flow::io
