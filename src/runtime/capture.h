// File-drop captures (SPEC 1.8): files appearing in a directory are ingested in byte-wise
// name order, each as one transaction, then moved to `<path>/.done/` (or, when any line or
// row is invalid, to `<path>/.failed/` with a `.error` file beside it; nothing of a failed
// file is written). Exactly once across crashes: the commit that ingests a file also stores
// the checkpoint `capture/<name>` identifying it (name, size, mtime, inode); a file still in
// the directory that matches it was committed before a crash and is moved without being
// ingested again. See docs/captures.md.
// A task is used by one thread (the Store's).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "reduce/combiner.h"
#include "runtime/collection.h"
#include "runtime/feed.h"
#include "runtime/ingest.h"
#include "runtime/task.h"
#include "store/journal.h"

namespace flow::runtime {

struct FileDropCapture {
  std::string name;
  std::string path;  // absolute directory
  IngestFormat format = IngestFormat::kJson;  // of every file; a `.gz` suffix adds gunzip
  // The bound collections in catalog order (at least one). Every document of a file is
  // written to each of them, in the file's one transaction.
  std::vector<std::shared_ptr<const Collection>> targets;

  // The ledger checkpoint key: `capture/<name>`.
  std::string CheckpointKey() const;
};

// What identifies a dropped file: the checkpoint's content (JSON text).
struct DroppedFile {
  std::string name;  // within the capture directory
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint64_t inode = 0;

  bool operator==(const DroppedFile&) const = default;
  std::string Encode() const;
  static std::optional<DroppedFile> Decode(std::string_view json);
};

// Whether a directory entry's name is one a capture ingests: not a dotfile (which covers
// `.done` and `.failed`) and not ending in `.tmp` or `.part` (files being written).
bool IsCapturedName(std::string_view name);

struct CaptureStats {
  uint64_t files = 0;      // ingested: committed (then moved to .done)
  uint64_t failed = 0;     // moved to .failed
  uint64_t recovered = 0;  // found committed but not moved (a crash, a failed move): moved only
  uint64_t documents = 0;  // added to transactions that committed (before combining)
  uint64_t bytes = 0;      // of committed files, as parsed (after gunzip)
};

class FileDropTask final : public Task {
 public:
  // `store` and `stamper` outlive the task. `options` bound each file's transaction's
  // memory (a larger file is appended in rounds; see IngestTransaction).
  FileDropTask(std::shared_ptr<const FileDropCapture> capture, store::Store* store, Stamper* stamper,
               reduce::CombinerOptions options = {});
  ~FileDropTask() override;
  FileDropTask(const FileDropTask&) = delete;
  FileDropTask& operator=(const FileDropTask&) = delete;

  // Creates the directory if missing, loads the checkpoint and moves the file it names to
  // .done if that file is still there, unchanged (its commit happened; its move did not).
  // Call once, before Step.
  Result<bool> Open() override;

  TaskKind kind() const override { return TaskKind::kCapture; }
  const std::string& name() const override;

  // Handles the next ready file in byte-wise name order: ingests it as one transaction
  // and moves it to .done, or moves it to .failed with its error. Returns the number of
  // files handled: 0 when none is ready. Errors are environment errors (the directory
  // cannot be read or renamed in, the store fails) naming the capture and path; the file
  // then stays in place and a later Step (or a new task's Open) resumes with it. After a
  // store error the store must be reopened, and with it the task.
  Result<uint64_t> Step() override;

  const CaptureStats& stats() const { return stats_; }
  TaskCounters counters() const override;
  // The failure of a file moved to .failed since the last call, as last_failure() says it.
  std::optional<Error> TakeRefusal() override;
  // The error of the last file moved to .failed, with the capture, its place and where it
  // was moved (for the caller to report); empty when none failed.
  const std::string& last_failure() const { return last_failure_; }
  const FileDropCapture& capture() const { return *capture_; }

 private:
  // Ingests the regular file open as `fd` (closed here), identified by `file`.
  Result<uint64_t> Ingest(int fd, const DroppedFile& file);
  Result<bool> MoveToDone(const std::string& name);
  Result<bool> MoveToFailed(const std::string& name, const std::string& error);
  Result<bool> Scan();
  Error EnvError(const std::string& what, const Error& cause) const;

  std::shared_ptr<const FileDropCapture> capture_;
  store::Store* store_;
  Stamper* stamper_;
  reduce::CombinerOptions options_;
  std::optional<DroppedFile> checkpoint_;  // the last file committed
  std::deque<std::string> pending_;        // names from the last scan, in order
  std::string last_failure_;
  uint64_t refusals_taken_ = 0;  // stats_.failed when TakeRefusal last returned
  bool opened_ = false;
  CaptureStats stats_;
};

}  // namespace flow::runtime
