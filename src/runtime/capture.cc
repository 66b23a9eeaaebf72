#include "runtime/capture.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "base/files.h"
#include "base/io.h"

namespace flow::runtime {
namespace {

constexpr size_t kBlock = 1 << 20;         // bytes parsed per block: 1 MiB
constexpr unsigned kGzBuffer = 256 << 10;  // zlib's input buffer: 256 KiB
constexpr int kMoveAttempts = 100;         // names lost to concurrent writers before giving up

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

DroppedFile Identify(const std::string& name, const struct stat& st) {
  return {name, static_cast<uint64_t>(st.st_size), MtimeNs(st), static_cast<uint64_t>(st.st_ino)};
}

// A dropped file's bytes in blocks; `.gz` files are gunzipped as they are read. zlib's
// gzread is used rather than store::Decoder (which reads the single-member streams the
// store writes) because dropped files may hold several members (pigz, bgzip, `cat a.gz
// b.gz`). Errors are user errors: they are about the file, which then fails.
class BlockReader {
 public:
  BlockReader(int fd, bool gzip, std::string name) : fd_(fd), gzip_(gzip), name_(std::move(name)) {
    if (gzip_) {
      gz_ = gzdopen(fd, "rb");
      if (gz_) gzbuffer(gz_, kGzBuffer);
    }
  }
  ~BlockReader() {
    if (gz_) {
      gzclose(gz_);  // closes fd_
    } else {
      ::close(fd_);
    }
  }
  BlockReader(const BlockReader&) = delete;
  BlockReader& operator=(const BlockReader&) = delete;

  // Replaces `out` with the next bytes; empty at the end of the file.
  Result<bool> Read(std::string* out) {
    out->resize(kBlock);
    if (gzip_) {
      if (!gz_) return Error::Env(fmt::format("cannot read {}: out of memory", name_));
      int n = gzread(gz_, out->data(), static_cast<unsigned>(kBlock));
      int code = Z_OK;
      const char* message = gzerror(gz_, &code);
      if (n < 0 && code == Z_ERRNO) {
        return Error::User(fmt::format("cannot read the file: {}", std::strerror(errno)));
      }
      // gzread returns what it could decompress of a truncated file, setting Z_BUF_ERROR.
      if (n < 0 || code == Z_BUF_ERROR) {
        std::string_view why(message);
        if (size_t colon = why.find(": "); colon != std::string_view::npos) why.remove_prefix(colon + 2);  // "<fd:N>: "
        return Error::User(fmt::format("corrupt gzip data ({})", why));
      }
      if (n > 0 && first_ && gzdirect(gz_)) {
        return Error::User("not gzip data, though the name ends in .gz");
      }
      first_ = false;
      out->resize(static_cast<size_t>(n));
      return true;
    }
    for (;;) {
      ssize_t n = ::read(fd_, out->data(), kBlock);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::User(fmt::format("cannot read the file: {}", std::strerror(errno)));
      out->resize(static_cast<size_t>(n));
      return true;
    }
  }

 private:
  int fd_;
  bool gzip_;
  gzFile gz_ = nullptr;
  std::string name_;
  bool first_ = true;
};

std::string Candidate(const std::string& name, uint64_t n) {
  return n == 0 ? name : fmt::format("{}.{}", name, n);
}

// Whether `dir/name` (or, with `sidecar`, `dir/name.error`) exists. Errors other than
// ENOENT are reported: guessing could replace a file, or never end.
Result<bool> Taken(const std::string& dir, const std::string& name, bool sidecar) {
  for (const std::string& n : {name, name + ".error"}) {
    std::string path = fmt::format("{}/{}", dir, n);
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0) return true;
    if (errno != ENOENT) return Error::Env(fmt::format("cannot check {}: {}", path, std::strerror(errno)));
    if (!sidecar) break;
  }
  return false;
}

// The first free one of `name`, `name.1`, `name.2`, ... in `dir`. It gallops, then
// bisects, so that a name dropped n times costs O(log n) checks rather than n; with gaps
// in the suffixes (older files deleted) it returns some free one.
Result<std::string> FreeName(const std::string& dir, const std::string& name, bool sidecar) {
  auto taken = [&](uint64_t n) { return Taken(dir, Candidate(name, n), sidecar); };
  auto t = taken(0);
  if (!t) return t.error();
  if (!*t) return name;
  uint64_t lo = 0, hi = 1;  // lo is taken; hi is free once the gallop ends
  for (;;) {
    t = taken(hi);
    if (!t) return t.error();
    if (!*t) break;
    lo = hi;
    hi *= 2;
  }
  while (hi - lo > 1) {
    uint64_t mid = lo + (hi - lo) / 2;
    t = taken(mid);
    if (!t) return t.error();
    (*t ? lo : hi) = mid;
  }
  return Candidate(name, hi);
}

// rename(2) that fails with EEXIST rather than replace `to`. Falls back on a plain rename
// (after the caller's check) on filesystems without RENAME_NOREPLACE.
int RenameNoReplace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return errno;
  return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
}

}  // namespace

std::string FileDropCapture::CheckpointKey() const { return "capture/" + name; }

std::string DroppedFile::Encode() const {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("file");
  w.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
  w.Key("size");
  w.Uint64(size);
  w.Key("mtime_ns");
  w.Int64(mtime_ns);
  w.Key("inode");
  w.Uint64(inode);
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

std::optional<DroppedFile> DroppedFile::Decode(std::string_view json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) return std::nullopt;
  auto file = d.FindMember("file"), size = d.FindMember("size"), mtime = d.FindMember("mtime_ns"),
       inode = d.FindMember("inode");
  if (file == d.MemberEnd() || !file->value.IsString() || size == d.MemberEnd() || !size->value.IsUint64() ||
      mtime == d.MemberEnd() || !mtime->value.IsInt64() || inode == d.MemberEnd() || !inode->value.IsUint64()) {
    return std::nullopt;
  }
  return DroppedFile{std::string(file->value.GetString(), file->value.GetStringLength()), size->value.GetUint64(),
                     mtime->value.GetInt64(), inode->value.GetUint64()};
}

bool IsCapturedName(std::string_view name) {
  return !name.empty() && name[0] != '.' && !name.ends_with(".tmp") && !name.ends_with(".part");
}

FileDropTask::FileDropTask(std::shared_ptr<const FileDropCapture> capture, store::Store* store, Stamper* stamper,
                           reduce::CombinerOptions options)
    : capture_(std::move(capture)), store_(store), stamper_(stamper), options_(std::move(options)) {}

FileDropTask::~FileDropTask() = default;

Error FileDropTask::EnvError(const std::string& what, const Error& cause) const {
  Error e = cause;
  if (e.code == Error::Code::kUser) e.code = Error::Code::kEnvironment;
  if (!what.empty()) e.message = fmt::format("{}: {}", what, cause.message);
  return std::move(e).In(fmt::format("capture `{}`", capture_->name));
}

Result<bool> FileDropTask::Open() {
  const std::string& dir = capture_->path;
  auto made = io::CreateDirs(dir);
  if (!made) return EnvError("", made.error());
  const auto& checkpoints = store_->committed().checkpoints;
  auto cp = checkpoints.find(capture_->CheckpointKey());
  if (cp != checkpoints.end()) {
    checkpoint_ = DroppedFile::Decode(cp->second);
    if (!checkpoint_) {
      return Error::Env(fmt::format("the checkpoint of capture `{}` is malformed: {}", capture_->name, cp->second));
    }
    // The last file committed is still here, unchanged: a crash came between its commit
    // and its move.
    struct stat st;
    std::string path = fmt::format("{}/{}", dir, checkpoint_->name);
    if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && Identify(checkpoint_->name, st) == *checkpoint_) {
      auto moved = MoveToDone(checkpoint_->name);
      if (!moved) return moved;
      ++stats_.recovered;
    }
  }
  opened_ = true;
  return true;
}

Result<bool> FileDropTask::Scan() {
  const std::string& dir = capture_->path;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    return Error::Env(fmt::format("capture `{}`: cannot read directory {}: {}", capture_->name, dir,
                                  std::strerror(errno)));
  }
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    struct dirent* e = ::readdir(d);
    if (!e) break;
    std::string_view name(e->d_name);
    // The type is a hint (DT_UNKNOWN on some filesystems); Step checks the opened file.
    if (!IsCapturedName(name) || (e->d_type != DT_REG && e->d_type != DT_UNKNOWN)) continue;
    names.emplace_back(name);
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) {
    return Error::Env(fmt::format("capture `{}`: cannot read directory {}: {}", capture_->name, dir,
                                  std::strerror(err)));
  }
  std::sort(names.begin(), names.end());  // byte-wise: char_traits<char> compares as unsigned
  pending_.assign(names.begin(), names.end());
  return true;
}

const std::string& FileDropTask::name() const { return capture_->name; }

TaskCounters FileDropTask::counters() const {
  TaskCounters c;
  c.in = stats_.files;
  c.out = stats_.documents;
  c.transactions = stats_.files;
  c.refused = stats_.failed;
  return c;
}

std::optional<Error> FileDropTask::TakeRefusal() {
  if (stats_.failed == refusals_taken_) return std::nullopt;
  refusals_taken_ = stats_.failed;
  return Error::User(last_failure_);
}

Result<uint64_t> FileDropTask::Step() {
  if (!opened_) return Error::Internal(fmt::format("capture `{}`: Step before Open", capture_->name));
  const std::string& dir = capture_->path;
  bool scanned = false;
  for (;;) {
    if (pending_.empty()) {
      if (scanned) return 0;
      auto s = Scan();
      if (!s) return s.error();
      scanned = true;
      if (pending_.empty()) return 0;
    }
    const std::string name = pending_.front();
    std::string path = fmt::format("{}/{}", dir, name);
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is then skipped).
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    int err = 0;
    if (fd < 0) {
      err = errno;
    } else if (::fstat(fd, &st) != 0) {
      err = errno;
      ::close(fd);
    }
    if (err == ENOENT || err == ELOOP || (err == 0 && !S_ISREG(st.st_mode))) {
      // Gone since the scan, a symbolic link, or not a regular file: not ours.
      if (err == 0) ::close(fd);
      pending_.pop_front();
      continue;
    }
    if (err == EMFILE || err == ENFILE || err == ENOMEM) {
      return Error::Env(fmt::format("capture `{}`: cannot open {}: {}", capture_->name, path, std::strerror(err)));
    }
    if (err != 0) {
      auto failed = MoveToFailed(name, fmt::format("{}: cannot read the file: {}", name, std::strerror(err)));
      if (!failed) return failed.error();
      pending_.pop_front();
      return 1;
    }
    DroppedFile file = Identify(name, st);
    if (checkpoint_ && *checkpoint_ == file) {
      // Committed already; an earlier move to .done failed.
      ::close(fd);
      auto moved = MoveToDone(name);
      if (!moved) return moved.error();
      ++stats_.recovered;
      pending_.pop_front();
      return 1;
    }
    auto handled = Ingest(fd, file);
    if (!handled) return handled;
    pending_.pop_front();
    return handled;
  }
}

Result<uint64_t> FileDropTask::Ingest(int fd, const DroppedFile& file) {
  const std::string& name = file.name;
  BlockReader reader(fd, name.ends_with(".gz"), name);
  IngestTransaction txn(store_, stamper_, options_);
  std::vector<std::unique_ptr<DocumentFeed>> feeds;
  for (const auto& target : capture_->targets) {
    feeds.push_back(std::make_unique<DocumentFeed>(capture_->format, target, name));
  }
  std::string what = fmt::format("while ingesting {}/{}", capture_->path, name);
  // A user error fails the file; any other is the store's or the environment's.
  auto fail = [&](const std::string& where, const Error& e) -> Result<uint64_t> {
    auto aborted = txn.Abort();
    if (e.code != Error::Code::kUser) return EnvError(what, e);
    if (!aborted) return EnvError(what, aborted.error());
    auto failed = MoveToFailed(name, fmt::format("{}: {}", where, e.message));
    if (!failed) return failed.error();
    return 1;
  };

  std::string block;
  uint64_t bytes = 0;
  for (;;) {
    auto got = reader.Read(&block);
    if (!got) return fail(name, got.error());
    if (block.empty()) break;
    bytes += block.size();
    for (auto& feed : feeds) {
      auto fed = feed->Feed(block, &txn);
      if (!fed) return fail(feed->error_where(), fed.error());
    }
  }
  // An empty file holds zero documents (even as CSV, where a header would be required).
  for (auto& feed : feeds) {
    if (bytes == 0) break;
    auto fin = feed->Finish(&txn);
    if (!fin) return fail(feed->error_where(), fin.error());
  }
  // The file's documents and its checkpoint commit together.
  auto heads = txn.Commit({{capture_->CheckpointKey(), file.Encode()}});
  if (!heads) return fail(name, heads.error());
  checkpoint_ = file;
  ++stats_.files;
  stats_.documents += txn.stats().documents;
  stats_.bytes += bytes;
  auto moved = MoveToDone(name);
  if (!moved) return moved.error();
  return 1;
}

Result<bool> FileDropTask::MoveToDone(const std::string& name) {
  const std::string& dir = capture_->path;
  std::string done = dir + "/.done";
  auto made = io::CreateDirs(done);
  if (!made) return EnvError("", made.error());
  std::string from = fmt::format("{}/{}", dir, name);
  for (int attempt = 0; attempt < kMoveAttempts; ++attempt) {
    auto slot = FreeName(done, name, false);
    if (!slot) return EnvError("", slot.error());
    std::string to = fmt::format("{}/{}", done, *slot);
    int err = RenameNoReplace(from, to);
    if (err == EEXIST) continue;  // taken since FreeName looked
    if (err != 0) {
      return Error::Env(fmt::format("capture `{}`: cannot move {} to {}: {}", capture_->name, from, to,
                                    std::strerror(err)));
    }
    // Both directories are synced before the next commit: only the last file committed
    // is in the checkpoint, so an earlier move must not be undone by a crash.
    auto synced = io::SyncDir(done);
    if (synced) synced = io::SyncDir(dir);
    if (!synced) return EnvError("", synced.error());
    return true;
  }
  return Error::Env(fmt::format("capture `{}`: cannot move {} to {}: no free name", capture_->name, from, done));
}

Result<bool> FileDropTask::MoveToFailed(const std::string& name, const std::string& error) {
  const std::string& dir = capture_->path;
  std::string failed = dir + "/.failed";
  auto made = io::CreateDirs(failed);
  if (!made) return EnvError("", made.error());
  std::string from = fmt::format("{}/{}", dir, name);
  for (int attempt = 0; attempt < kMoveAttempts; ++attempt) {
    auto slot = FreeName(failed, name, true);
    if (!slot) return EnvError("", slot.error());
    std::string to = fmt::format("{}/{}", failed, *slot);
    // The error first: a crash before the move leaves the file to fail again (and an
    // orphan .error), never a failed file without its error.
    auto written = WriteFileAtomic(to + ".error", error + "\n");
    if (!written) return EnvError("", written.error());
    int err = RenameNoReplace(from, to);
    if (err == EEXIST) {
      ::unlink((to + ".error").c_str());
      continue;
    }
    if (err != 0) {
      ::unlink((to + ".error").c_str());
      return Error::Env(fmt::format("capture `{}`: cannot move {} to {}: {}", capture_->name, from, to,
                                    std::strerror(err)));
    }
    auto synced = io::SyncDir(failed);
    if (synced) synced = io::SyncDir(dir);
    if (!synced) return EnvError("", synced.error());
    ++stats_.failed;
    last_failure_ = fmt::format("capture `{}`: {}; nothing of the file was written; moved to {}", capture_->name,
                                error, to);
    return true;
  }
  return Error::Env(fmt::format("capture `{}`: cannot move {} to {}: no free name", capture_->name, from, failed));
}

}  // namespace flow::runtime
