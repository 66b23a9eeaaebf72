// The data directory's owner lock (SPEC 3.4): one process at a time. An exclusive flock on
// `<data-dir>/LOCK`, which also records the owner's pid for the message a second process
// gets. The kernel releases the lock when the process dies, so a crash leaves no stale lock.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"

namespace flow::store {

class DataDirLock {
 public:
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

  // Creates `dir` if needed and takes its lock. Fails with an environment error naming the
  // directory and the owner's pid when another process holds it.
  static Result<std::unique_ptr<DataDirLock>> Acquire(const std::string& dir);

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace flow::store
