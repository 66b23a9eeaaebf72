// The supervisor: the set of running tasks of a catalog — file-drop captures,
// derivations and materializations (runtime/task.h) — over one store, stepped in rounds.
// `flowctl run`, `develop`, `materialize` and the test driver all run their tasks through
// it.
//
// Failures, by kind (SPEC 4):
// - a derivation that fails halts; the others go on. One interrupted because the command
//   is stopping (lambda::StopRequested) is stopped, not halted: it resumes from its
//   checkpoint next time;
// - a materialization whose target fails with an environment error (unreachable, wrong
//   password, disk full) is reconnected with backoff and reopened from the checkpoint in
//   its target, so nothing is skipped or repeated; one fenced off by another instance, or
//   failing with any other error, halts;
// - a capture's refused file is reported (it went to .failed) and the capture goes on;
//   one that cannot step is retried on the next round.
// An error of the store itself ends the round: the store refuses further work.
//
// Apply swaps in a newly built catalog (develop's live reload): a task whose fingerprint
// is unchanged keeps running with its state and position; a changed one restarts from its
// checkpoint; a new one starts from its checkpoint or back-fills; a removed one stops.
//
// The store is used by the calling thread only: each round steps the tasks one after the
// other, except that a derivation catching up computes its transactions on a thread of its
// own (Options::threads; DeriveTask::Compute), and the round only publishes what it
// derived, so a long back-fill holds up neither ingestion nor the other tasks. Each task's
// transactions stay strictly ordered.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "runtime/backfill.h"
#include "runtime/ingest.h"
#include "runtime/plan.h"
#include "runtime/task.h"

namespace flow::runtime {

// What the supervisor shows of one task.
struct TaskStatus {
  TaskKind kind = TaskKind::kDerivation;
  std::string name;
  TaskState state = TaskState::kStarting;
  TaskCounters counters;  // over every attempt
  ReadProgress progress;
  std::string error;  // the last error (halted, retrying)
};

// A task's state as the status view, metrics and summaries show it ("running", "halted",
// ...); a capture that moved files to .failed shows "N failed".
std::string StateText(const TaskStatus& s);

class Supervisor {
 public:
  struct Options {
    bool until_idle = false;                    // retry a target at most 4 times, then halt
    bool retry_targets = true;                  // false: a target's first error halts it
    std::vector<std::string> materializations;  // run only these (empty: all)
    // Step each task until it has nothing ready before stepping the next (the test
    // driver's order: what a derivation publishes is read downstream in the same round),
    // rather than one transaction each.
    bool drain_each = false;
    Clock clock;
    // Receives warnings and errors, one line each, starting "warning: " or "error: "
    // (default: base's log).
    std::function<void(const std::string&)> log;
    // A derivation whose logic changed since its checkpoint is back-filled, with everything
    // downstream (develop's default); otherwise it goes on from its checkpoint with a warning
    // naming the back-fill (run's).
    bool backfill_changed = false;
    // How many derivations may compute a transaction at once on threads of their own, while
    // this thread commits and serves the other tasks: those catching up (more than 1 MiB
    // behind, or their last transaction ended at its size bound). 0: every task steps on
    // the calling thread (the test driver's deterministic order). Also the threads a
    // materialization's transaction reads and combines on (MaterializeTask::set_threads;
    // 0: one), which gives the same rows for any number.
    int threads = 0;
  };
  Supervisor(store::Store* store, Stamper* stamper, Options options);
  ~Supervisor();

  // Runs `plan`'s tasks, keeping those whose fingerprint (TaskFingerprints) is unchanged
  // since the last Apply. A user error for a --materialization that the catalog lacks; an
  // error opening a derivation is returned (nothing of the new plan is applied then, but
  // the back-fills' resets are committed). `backfill` (runtime/backfill.h) and, with
  // backfill_changed, the derivations whose logic changed, are back-filled with everything
  // downstream: their collections and registers are reset in the store before they open,
  // and the materializations rebuild their tables when they open.
  Result<bool> Apply(std::shared_ptr<const Plan> plan,
                     const std::map<std::string, std::string>& fingerprints, Backfill backfill = {});
  // What the last Apply that succeeded back-filled, with everything downstream.
  const Backfill& backfilled() const { return backfilled_; }

  // Adds a materialization that is not in the catalog (`flowctl materialize`, or one sent
  // to a running develop); it is kept across Apply. `rebuild`: its first opening rebuilds
  // its tables (a back-fill).
  void AddMaterialization(std::shared_ptr<const Materialization> m, bool rebuild = false);

  struct Round {
    bool progress = false;  // some task processed documents
    bool waiting = false;   // some task waits to be retried
    bool busy = false;      // a derivation computes on a thread of its own: step again soon
  };
  // Steps every task once (or, with drain_each, until it has nothing ready). An error
  // means the store itself failed: stop.
  Result<Round> Step();

  // Steps rounds until `stop` is set or, with until_idle, a round finds nothing to do. A
  // round in which every task waits to be retried is followed by 100 ms of sleep; an idle
  // one persists the spools that are due, then sleeps 50 ms. `after_round` is called after
  // each other round (a progress line). An error when the store fails (a task's step
  // logged it already) or cannot persist (logged here); the exit code is then its own.
  Result<bool> Run(const std::atomic<bool>& stop, const std::function<void()>& after_round);

  std::vector<TaskStatus> Status() const;
  // The earliest Unix nanoseconds at which a document waiting for a read delay becomes
  // ready, over all tasks; 0 when none waits.
  int64_t NextReady() const;
  // The first error a task halted with since the supervisor started, if any.
  const std::optional<Error>& first_failure() const { return first_failure_; }
  // The exit code the tasks call for: 0, or the worst of halted tasks' errors.
  int exit_code() const { return exit_code_; }

 private:
  struct Entry;
  void Log(const std::string& line);
  std::unique_ptr<Entry> NewMaterialization(std::shared_ptr<const Materialization> m, bool rebuild = false);
  // One step of `e`: documents (captures: files) processed; an error only when the store
  // failed.
  Result<uint64_t> StepOnce(Entry& e, Round* round);
  Result<uint64_t> StepCapture(Entry& e);
  // `launch`: whether it may start computing a transaction on a thread of its own.
  Result<uint64_t> StepDerivation(Entry& e, Round* round, bool launch = true);
  // Waits for what derivation `e` computes on threads of its own: commits a transaction
  // that finished, drops one being computed.
  void Settle(Entry& e);
  uint64_t StepMaterialization(Entry& e, Round* round);
  // Whether a derivation upstream of materialization `m` (reading a collection `m` reads,
  // directly or through other derivations) is behind: catching up on a back-fill.
  bool UpstreamBehind(const Entry& m) const;
  void Halt(Entry& e, const Error& error, const std::string& line);
  void Drop(Entry& e);

  store::Store* store_;
  Stamper* stamper_;
  Options options_;
  std::vector<std::unique_ptr<Entry>> entries_;  // captures, derivations, materializations
  std::map<std::string, Entry*> derivations_;     // by collection, as of this round
  std::optional<Error> first_failure_;
  int exit_code_ = 0;
  Backfill backfilled_;
  int computing_ = 0;  // derivations computing on threads of their own
};

}  // namespace flow::runtime
