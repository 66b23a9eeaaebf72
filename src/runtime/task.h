// The one shape of a running task — a file-drop capture, a derivation or a
// materialization — as the supervisor (runtime/supervisor.h) drives it: open, step,
// checkpoint, status, close. Each kind keeps its own header (capture.h, derive.h,
// materialize.h) for what only it has; the supervisor, `run`, `develop`, `materialize` and
// the test driver see tasks through this interface alone.
//
// A task is used by one thread at a time. After an error from Open or Step it must be
// dropped: a new task reopens from what the store (or the target) committed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "base/result.h"
#include "runtime/source_reader.h"

namespace flow::runtime {

enum class TaskKind { kCapture, kDerivation, kMaterialization };

// What the supervisor knows of a task: kStarting until its first open, kRunning or
// kBackFilling (more than 1 MiB of its sources behind) while it steps, kRetrying between
// a failed attempt and the next, kHalted after an error it does not retry, kStopped when
// the command stopping interrupted it (it resumes from its checkpoint next time).
enum class TaskState { kStarting, kRunning, kBackFilling, kRetrying, kHalted, kStopped };

// "capture", "derivation", "materialization": as the status view, the control API and
// metrics show them.
const char* ToString(TaskKind kind);
// "starting", "running", "back-filling", "retrying", "halted", "stopped".
const char* ToString(TaskState state);

// kRunning, or kBackFilling while more than 1 MiB of the sources is unread.
TaskState MovingState(const ReadProgress& progress);

// The clock seam: tasks never read a clock of their own. `wall` gives Unix nanoseconds
// (read delays, UUID timestamps; the test driver's is simulated); `steady` measures
// durations (transaction bounds, retry backoff).
struct Clock {
  std::function<int64_t()> wall;
  std::function<std::chrono::steady_clock::time_point()> steady;

  // The system's clocks.
  Clock();
  // A wall clock of the caller's (simulated in tests) with the system's steady clock.
  Clock(std::function<int64_t()> wall_nanos);  // NOLINT(google-explicit-constructor)
};

// A task's counters since it was opened.
struct TaskCounters {
  uint64_t in = 0;            // documents read (captures: files ingested)
  uint64_t out = 0;           // documents published, or rows stored (captures: documents)
  uint64_t bytes_out = 0;     // derivations: bytes of the documents published
  uint64_t dead_letters = 0;  // documents or keys sent to dead letters
  uint64_t transactions = 0;  // transactions committed
  uint64_t refused = 0;       // captures: files moved to .failed

  TaskCounters& operator+=(const TaskCounters& o) {
    in += o.in;
    out += o.out;
    bytes_out += o.bytes_out;
    dead_letters += o.dead_letters;
    transactions += o.transactions;
    refused += o.refused;
    return *this;
  }
};

class Task {
 public:
  virtual ~Task() = default;

  virtual TaskKind kind() const = 0;
  // The catalog name: the capture's, the derived collection's or the materialization's.
  virtual const std::string& name() const = 0;

  // Loads the checkpoint (and, per kind, replays registers, creates tables, takes the
  // fence). Call once, before Step.
  virtual Result<bool> Open() = 0;
  // One transaction; returns how many documents (captures: files) it took, 0 when nothing
  // is ready. A transaction may be pipelined (materializations): its failure is then
  // returned by the next Step, and a Step returning 0 has committed everything read.
  virtual Result<uint64_t> Step() = 0;
  // Commits everything read so far: after it returns true nothing read is pending.
  virtual Result<bool> Checkpoint() { return true; }
  // Ends the task: waits for anything in flight (nothing uncommitted is kept).
  virtual void Close() {}

  virtual TaskCounters counters() const = 0;
  // Over the sources opened so far, against their committed heads.
  virtual ReadProgress progress() const { return {}; }
  // The earliest Unix nanoseconds at which a document waiting for its read delay becomes
  // ready; 0 when none waits. Valid after a Step.
  virtual int64_t next_ready() const { return 0; }
  // After a Step: the transaction ended at its size bound while more input was ready, so
  // the task is catching up (a back-fill) rather than keeping pace. Derivations only.
  virtual bool behind() const { return false; }
  // A unit of input the task refused and set aside while it goes on (a capture's file
  // moved to .failed), with where it went; taken once.
  virtual std::optional<Error> TakeRefusal() { return std::nullopt; }
};

}  // namespace flow::runtime
