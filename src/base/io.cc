#include "base/io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

namespace flow::io {
namespace {

// The fault seam (see io.h).
struct Faults {
  uint64_t fail_write = 0, fail_fsync = 0;  // 1-based call numbers; 0: never
  uint64_t writes = 0, fsyncs = 0;
  Faults() {
    const char* spec = std::getenv("FLOWCTL_FAULT");
    if (!spec) return;
    std::string_view s(spec);
    while (!s.empty()) {
      size_t comma = s.find(',');
      std::string_view item = s.substr(0, comma);
      s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
      size_t colon = item.find(':');
      if (colon == std::string_view::npos) continue;
      uint64_t n = std::strtoull(std::string(item.substr(colon + 1)).c_str(), nullptr, 10);
      if (item.substr(0, colon) == "write") fail_write = n;
      if (item.substr(0, colon) == "fsync") fail_fsync = n;
    }
  }
};

Faults& faults() {
  static Faults f;
  return f;
}

bool InjectWriteFault() {
  auto& f = faults();
  return f.fail_write && ++f.writes >= f.fail_write;
}

bool InjectFsyncFault() {
  auto& f = faults();
  return f.fail_fsync && ++f.fsyncs >= f.fail_fsync;
}

Error OsError(const char* what, const std::string& path, int err) {
  return Error::Env(fmt::format("cannot {} {}: {}", what, path, std::strerror(err)));
}

}  // namespace

File::~File() { Close(); }

File::File(File&& o) noexcept
    : fd_(o.fd_), path_(std::move(o.path_)), appended_(o.appended_), writeback_from_(o.writeback_from_) {
  o.fd_ = -1;
}

File& File::operator=(File&& o) noexcept {
  if (this != &o) {
    Close();
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    appended_ = o.appended_;
    writeback_from_ = o.writeback_from_;
    o.fd_ = -1;
  }
  return *this;
}

void File::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<File> File::OpenAppend(const std::string& path, bool create) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
  if (fd < 0) return OsError("open", path, errno);
  File f;
  f.fd_ = fd;
  f.path_ = path;
  return f;
}

Result<File> File::OpenRead(const std::string& path, bool* missing) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (missing) *missing = fd < 0 && errno == ENOENT;
  if (fd < 0) return OsError("open", path, errno);
  File f;
  f.fd_ = fd;
  f.path_ = path;
  return f;
}

Result<bool> File::Append(std::string_view data) {
  if (InjectWriteFault()) return OsError("write", path_, EIO);
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return OsError("write", path_, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
    appended_ += static_cast<uint64_t>(n);
  }
  return true;
}

void File::StartWriteback() {
  if (appended_ == writeback_from_) return;
  // Offsets are of this handle's appends; with O_APPEND on a file that had content, the
  // range is approximate, which is fine for advice: the file's size bounds it.
  auto size = Size();
  if (!size) return;
  uint64_t len = appended_ - writeback_from_;
  uint64_t from = *size > len ? *size - len : 0;
  ::sync_file_range(fd_, static_cast<off_t>(from), static_cast<off_t>(len), SYNC_FILE_RANGE_WRITE);
  writeback_from_ = appended_;
}

Result<bool> File::ReadAt(uint64_t offset, size_t n, std::string* out) const {
  out->resize(n);
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd_, out->data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return OsError("read", path_, errno);
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  out->resize(got);
  return true;
}

Result<bool> File::Sync() {
  if (InjectFsyncFault()) return OsError("fsync", path_, EIO);
  if (::fdatasync(fd_) != 0) return OsError("fsync", path_, errno);
  return true;
}

Result<bool> File::Truncate(uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return OsError("truncate", path_, errno);
  return true;
}

Result<uint64_t> File::Size() const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return OsError("stat", path_, errno);
  return static_cast<uint64_t>(st.st_size);
}

Result<bool> SyncDir(const std::string& dir) {
  if (InjectFsyncFault()) return OsError("fsync", dir, EIO);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return OsError("open", dir, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return OsError("fsync", dir, err);
  return true;
}

Result<bool> CreateDirs(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return true;
    return Error::Env(fmt::format("cannot create directory {}: a file of that name exists", dir));
  }
  size_t slash = dir.find_last_of('/');
  std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : dir.substr(0, slash);
  if (slash != std::string::npos) {
    auto made = CreateDirs(parent);
    if (!made) return made;
  }
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return OsError("create directory", dir, errno);
  return SyncDir(parent);
}

Result<bool> RenameDurably(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return Error::Env(fmt::format("cannot rename {} to {}: {}", from, to, std::strerror(errno)));
  }
  size_t slash = to.find_last_of('/');
  return SyncDir(slash == std::string::npos ? "." : to.substr(0, slash));
}

}  // namespace flow::io
