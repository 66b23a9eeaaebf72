// The tasks of a running catalog — file-drop captures, derivations and materializations —
// stepped in rounds
// over one store, by `flowctl run` and `flowctl develop`. A failed derivation halts (the
// others go on, SPEC 4); a materialization whose target fails with an environment error
// (unreachable, wrong password, disk full) is reopened with backoff from the checkpoint in
// its target, so nothing is skipped or repeated; a fenced-off one halts.
//
// Apply swaps in a newly built catalog (develop's live reload): a task whose fingerprint
// is unchanged keeps running with its state and position; a changed one restarts from its
// checkpoint; a new one starts from its checkpoint or back-fills; a removed one stops.
// Single-threaded, like the store.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "cli/common.h"
#include "runtime/capture.h"
#include "runtime/derive.h"
#include "runtime/materialize.h"
#include "runtime/plan.h"

namespace flow::cli {

// Fingerprints of a checked catalog's tasks, by "derivation:NAME" and
// "materialization:NAME": equal when nothing that the task's behaviour depends on changed
// (its sources, schemas, lambdas, projections, target).
std::map<std::string, std::string> TaskFingerprints(const CheckedCatalog& catalog);

struct TaskStatus {
  std::string kind;  // "capture", "derivation" or "materialization"
  std::string name;
  std::string state;  // "running", "back-filling", "retrying", "halted", "stopped"
  uint64_t in = 0;    // documents read (captures: files ingested)
  uint64_t out = 0;   // documents published, or rows stored (captures: documents)
  uint64_t bytes_out = 0;  // derivations: bytes of the documents published
  uint64_t dead_letters = 0;  // documents or keys sent to dead letters
  runtime::ReadProgress progress;
  std::string error;  // the last error (halted, retrying)
};

class Pipeline {
 public:
  struct Options {
    bool until_idle = false;                    // retry a target at most 4 times, then halt
    std::vector<std::string> materializations;  // run only these (empty: all)
    std::function<int64_t()> now;               // Unix nanoseconds (default: the wall clock)
    // Receives warnings and errors, one line each (default: stderr).
    std::function<void(const std::string&)> log;
  };
  Pipeline(store::Store* store, runtime::Stamper* stamper, Options options);
  ~Pipeline();

  // Runs `plan`'s tasks, keeping those whose fingerprint is unchanged since the last Apply.
  // A user error for a --materialization that the catalog lacks; an error opening a
  // derivation is returned (nothing of the new plan is applied then).
  Result<bool> Apply(std::shared_ptr<const runtime::Plan> plan, const std::map<std::string, std::string>& fingerprints);

  // Adds a materialization that is not in the catalog (`flowctl materialize` into a
  // running develop); it is kept across Apply.
  void AddMaterialization(std::shared_ptr<const runtime::Materialization> m);

  struct Round {
    bool progress = false;  // some task processed documents
    bool waiting = false;   // some target waits to be retried
  };
  // Steps every task once. An error means the store itself failed: stop.
  Result<Round> Step();

  std::vector<TaskStatus> Status() const;
  // The exit code the tasks call for: 0, or the worst of halted tasks' errors.
  int exit_code() const { return exit_code_; }

 private:
  struct Derive;
  struct Target;
  void Log(const std::string& line);
  Result<bool> OpenTarget(Target& t);
  void StepTarget(Target& t, Round* round);

  store::Store* store_;
  runtime::Stamper* stamper_;
  Options options_;
  std::shared_ptr<const runtime::Plan> plan_;
  std::vector<std::unique_ptr<Derive>> derivations_;
  std::vector<std::unique_ptr<Target>> targets_;
  std::vector<std::unique_ptr<runtime::FileDropTask>> captures_;
  int exit_code_ = 0;
};

}  // namespace flow::cli
