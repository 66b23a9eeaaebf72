#include "runtime/supervisor.h"

#include <fmt/format.h>

#include <algorithm>
#include <future>
#include <set>
#include <thread>

#include "base/log.h"
#include "base/strings.h"
#include "lambda/lambda.h"
#include "runtime/capture.h"
#include "runtime/derive.h"
#include "runtime/materialize.h"

namespace flow::runtime {
namespace {

constexpr int kMaxFailuresUntilIdle = 4;
// The longest a materialization is held while its sources are back-filled: its tables
// still show progress during a very long back-fill.
constexpr std::chrono::seconds kMaxHold{30};
// The most source documents of a transaction computed on a thread of its own: larger than a
// step's on the store's thread (DeriveTask::kMaxDocs), since nothing waits for it, so that a
// back-fill commits less often.
constexpr uint64_t kBackgroundDocs = 4 * DeriveTask::kMaxDocs;

}  // namespace

std::string StateText(const TaskStatus& s) {
  if (s.kind == TaskKind::kCapture && s.counters.refused) return fmt::format("{} failed", s.counters.refused);
  return ToString(s.state);
}

struct Supervisor::Entry {
  TaskKind kind = TaskKind::kDerivation;
  std::string name;
  std::string fingerprint;  // empty for one-off materializations
  bool one_off = false;
  bool rebuild = false;  // a materialization's next opening rebuilds its tables (a back-fill)
  // Creates the task (connecting to a target), not yet opened.
  std::function<Result<std::unique_ptr<Task>>()> make;
  std::unique_ptr<Task> task;
  TaskState state = TaskState::kStarting;
  int failures = 0;        // since the last commit (see StepMaterialization)
  uint64_t committed = 0;  // transactions `task` has committed
  std::chrono::steady_clock::time_point retry_at{};
  // The collections it reads (derivations: their transforms' sources; materializations:
  // their bindings'), for holding a materialization while its sources are back-filled.
  std::vector<std::string> sources;
  // A materialization held since then (UpstreamBehind); unset while it steps.
  std::optional<std::chrono::steady_clock::time_point> held_since;
  // A derivation's own stamper, when derivations may compute on threads of their own.
  std::unique_ptr<Stamper> stamper;
  // A derivation computing a transaction on a thread of its own (DeriveTask::Compute), over
  // `ledger`, a copy of the store's committed state; Publish commits it on this thread. The
  // task is not touched meanwhile: Status shows what it showed when the computing began.
  std::future<Result<uint64_t>> computing;
  std::unique_ptr<store::LedgerState> ledger;
  // The transaction computed before, finishing on a thread of its own (DeriveTask::Finish)
  // meanwhile; Publish commits it on this thread, before the next.
  std::future<Result<bool>> finishing;
  std::shared_ptr<DeriveTask::Transaction> finished;
  TaskCounters shown_counters;
  ReadProgress shown_progress;
  int64_t shown_next_ready = 0;
  TaskCounters done;      // of the tasks dropped before
  ReadProgress progress;  // of the last task dropped
  std::string error;

  bool stepping() const { return state != TaskState::kHalted && state != TaskState::kStopped; }
};

Supervisor::Supervisor(store::Store* store, Stamper* stamper, Options options)
    : store_(store), stamper_(stamper), options_(std::move(options)) {}

Supervisor::~Supervisor() {
  for (auto& e : entries_) {
    // Computed but not committed: the derivation goes on from its checkpoint next time.
    if (e->computing.valid()) e->computing.wait();
    if (e->finishing.valid()) e->finishing.wait();
  }
  for (auto& e : entries_) {
    if (e->task) e->task->Close();
  }
}

void Supervisor::Log(const std::string& line) {
  if (options_.log) {
    options_.log(line);
    return;
  }
  for (auto [prefix, level] : {std::pair{std::string_view("error: "), LogLevel::kError},
                               std::pair{std::string_view("warning: "), LogLevel::kWarn}}) {
    if (std::string_view(line).substr(0, prefix.size()) == prefix) {
      flow::Log(level, std::string_view(line).substr(prefix.size()));
      return;
    }
  }
  flow::Log(LogLevel::kInfo, line);
}

Result<bool> Supervisor::Apply(std::shared_ptr<const Plan> plan,
                               const std::map<std::string, std::string>& fingerprints, Backfill backfill) {
  // What derivations are computing commits first: a reset, or a task stopping, must not
  // race it.
  for (auto& e : entries_) {
    while (e->computing.valid() || e->finishing.valid()) {
      if (e->computing.valid()) e->computing.wait();
      if (e->finishing.valid()) e->finishing.wait();
      Round ignored;
      if (auto n = StepDerivation(*e, &ignored, /*launch=*/false); !n) return n.error();
    }
  }
  auto fingerprint = [&](const std::string& key) {
    auto it = fingerprints.find(key);
    return it == fingerprints.end() ? std::string() : it->second;
  };
  std::vector<std::string> names;
  for (const auto& m : plan->materializations) names.push_back(m->name);
  for (const auto& want : options_.materializations) {
    if (std::find(names.begin(), names.end(), want) == names.end()) {
      std::string hint = DidYouMean(want, names);
      return Error::User(fmt::format("no materialization `{}` in the catalog{}", want,
                                     hint.empty() ? "" : "; " + hint));
    }
  }
  // A running entry of the catalog keeps running when its fingerprint is unchanged and it
  // has not halted. Nothing running is touched until every new derivation has opened, so
  // that one that cannot open leaves the previous plan running.
  std::map<std::pair<TaskKind, std::string>, Entry*> running;
  for (auto& e : entries_) {
    if (!e->one_off) running[{e->kind, e->name}] = e.get();
  }
  auto keep = [&](TaskKind kind, const std::string& name, const std::string& fp) -> Entry* {
    auto it = running.find({kind, name});
    if (it == running.end() || fp.empty() || it->second->fingerprint != fp ||
        it->second->state == TaskState::kHalted) {
      return nullptr;
    }
    return it->second;
  };
  // Derivations whose logic changed since their checkpoint: back-filled, or warned about.
  for (const auto& spec : plan->derivations) {
    const std::string& name = spec->collection->name;
    if (backfill.derivations.count(name) || !LogicChanged(*spec, store_->committed())) continue;
    if (options_.backfill_changed) {
      Log(fmt::format("derivation `{}` changed since its checkpoint: back-filling it and what is downstream", name));
      backfill.derivations.insert(name);
    } else {
      Log(fmt::format("warning: derivation `{}` changed since its checkpoint; it goes on from there, and what it "
                      "derived before keeps the earlier logic: to derive everything again, run `flowctl run "
                      "--backfill {}`",
                      name, name));
    }
  }
  backfill = Downstream(*plan, std::move(backfill));
  std::vector<std::unique_ptr<Entry>> fresh;  // new entries
  std::map<std::string, Entry*> opened_derivations;
  // Those not back-filled open first, so that one that cannot open leaves the store as it was.
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1 && !backfill.empty()) {
      // One commit resets the derivations and records that the materializations must
      // rebuild their tables, so that a process dying before they do cannot leave them
      // refusing the new generations: the next one rebuilds them, --backfill or not.
      std::vector<std::string> journals, checkpoints;
      for (const auto& spec : plan->derivations) {
        if (backfill.derivations.count(spec->collection->name)) {
          BackfillScope(*spec, store_->committed(), &journals, &checkpoints);
        }
      }
      std::map<std::string, std::string> rebuilds;
      for (const auto& name : backfill.materializations) rebuilds[RebuildKey(name)] = "requested";
      if (auto reset = store_->Reset(journals, checkpoints, rebuilds); !reset) return reset.error();
      for (const auto& name : backfill.derivations) {
        flow::Log(LogLevel::kInfo, "back-filling", {{"task", name}, {"kind", "derivation"}});
      }
    }
    for (const auto& spec : plan->derivations) {
      const std::string& name = spec->collection->name;
      bool backfilled = backfill.derivations.count(name) > 0;
      if (backfilled != (pass == 1)) continue;
      std::string fp = fingerprint("derivation:" + name);
      if (Entry* kept = backfilled ? nullptr : keep(TaskKind::kDerivation, name, fp)) {
        opened_derivations[name] = kept;
        continue;
      }
      auto e = std::make_unique<Entry>();
      e->kind = TaskKind::kDerivation;
      e->name = name;
      e->fingerprint = fp;
      for (const auto& t : spec->transforms) e->sources.push_back(t.source->name);
      if (options_.threads > 0) e->stamper = std::make_unique<Stamper>();
      e->task = std::make_unique<DeriveTask>(spec, store_, e->stamper ? e->stamper.get() : stamper_, options_.clock);
      if (auto opened = e->task->Open(); !opened) {
        return Error(opened.error()).In(fmt::format("derivation `{}`", name));
      }
      e->state = TaskState::kRunning;
      flow::Log(LogLevel::kInfo, "task started", {{"task", name}, {"kind", "derivation"}});
      opened_derivations[name] = e.get();
      fresh.push_back(std::move(e));
    }
  }
  std::vector<Entry*> derivations, materializations;
  for (const auto& spec : plan->derivations) derivations.push_back(opened_derivations[spec->collection->name]);
  // Materializations: unchanged ones keep their connection and position; the others are
  // (re)opened on their next step, from the checkpoint in the target.
  for (const auto& m : plan->materializations) {
    if (!options_.materializations.empty() &&
        std::find(options_.materializations.begin(), options_.materializations.end(), m->name) ==
            options_.materializations.end()) {
      continue;
    }
    std::string fp = fingerprint("materialization:" + m->name);
    bool rebuild = backfill.materializations.count(m->name) > 0;
    if (Entry* kept = rebuild ? nullptr : keep(TaskKind::kMaterialization, m->name, fp)) {
      materializations.push_back(kept);
      continue;
    }
    auto e = NewMaterialization(m, rebuild);
    e->fingerprint = fp;
    flow::Log(LogLevel::kInfo, "task started", {{"task", m->name}, {"kind", "materialization"}});
    materializations.push_back(e.get());
    fresh.push_back(std::move(e));
  }

  // The plan applies: assemble the new set in stepping order.
  std::map<Entry*, std::unique_ptr<Entry>> owned;
  std::vector<std::unique_ptr<Entry>> next;
  std::vector<std::unique_ptr<Entry>> one_offs;
  for (auto& e : entries_) {
    if (e->one_off) {
      one_offs.push_back(std::move(e));
    } else {
      Entry* p = e.get();
      owned[p] = std::move(e);
    }
  }
  for (auto& e : fresh) {
    Entry* p = e.get();
    owned[p] = std::move(e);
  }
  // Captures: reopened from the plan (their position is in the ledger).
  for (const auto& c : plan->captures) {
    auto task = std::make_unique<FileDropTask>(c, store_, stamper_);
    if (auto opened = task->Open(); !opened) {
      Log(fmt::format("error: {}; it is stopped until the catalog changes",
                      Error(opened.error()).In(fmt::format("capture `{}`", c->name)).message));
      exit_code_ = std::max(exit_code_, opened.error().ExitCode());
      if (!first_failure_) first_failure_ = opened.error();
      continue;
    }
    auto e = std::make_unique<Entry>();
    e->kind = TaskKind::kCapture;
    e->name = c->name;
    e->task = std::move(task);
    e->state = TaskState::kRunning;
    next.push_back(std::move(e));
  }
  for (Entry* p : derivations) next.push_back(std::move(owned[p]));
  for (auto& o : one_offs) next.push_back(std::move(o));
  for (Entry* p : materializations) next.push_back(std::move(owned[p]));
  // What is left stops.
  for (auto& [p, e] : owned) {
    if (e && e->task) e->task->Close();
  }
  entries_ = std::move(next);
  backfilled_ = std::move(backfill);
  return true;
}

std::unique_ptr<Supervisor::Entry> Supervisor::NewMaterialization(
    std::shared_ptr<const Materialization> m, bool rebuild) {
  auto e = std::make_unique<Entry>();
  e->kind = TaskKind::kMaterialization;
  e->name = m->name;
  e->rebuild = rebuild;
  for (const auto& b : m->bindings) e->sources.push_back(b.source->name);
  Entry* entry = e.get();
  e->make = [this, m, entry]() -> Result<std::unique_ptr<Task>> {
    auto driver = ConnectTarget(*m);
    if (!driver) return driver.error();
    auto task = std::make_unique<MaterializeTask>(m, store_, std::move(driver.value()), stamper_, options_.clock);
    task->set_rebuild(entry->rebuild);
    task->set_threads(static_cast<unsigned>(std::max(1, options_.threads)));
    return std::unique_ptr<Task>(std::move(task));
  };
  return e;
}

void Supervisor::AddMaterialization(std::shared_ptr<const Materialization> m, bool rebuild) {
  auto e = NewMaterialization(std::move(m), rebuild);
  e->one_off = true;
  entries_.push_back(std::move(e));
}

void Supervisor::Drop(Entry& e) {
  if (!e.task) return;
  e.done += e.task->counters();
  e.progress = e.task->progress();
  e.task->Close();
  e.task.reset();
}

void Supervisor::Halt(Entry& e, const Error& error, const std::string& line) {
  e.state = TaskState::kHalted;
  e.error = error.message;
  Log(line);
  exit_code_ = std::max(exit_code_, error.ExitCode());
  if (!first_failure_) first_failure_ = error;
}

Result<uint64_t> Supervisor::StepCapture(Entry& e) {
  auto n = e.task->Step();
  while (auto refused = e.task->TakeRefusal()) {
    Log(fmt::format("error: {}", refused->message));
    exit_code_ = std::max(exit_code_, static_cast<int>(kExitUserError));
  }
  if (!n) {
    Log("error: " + Error(n.error()).In(fmt::format("capture `{}`", e.name)).message);
    e.error = n.error().message;
    if (store_->failed()) return n.error();
    return uint64_t{0};  // retried on the next round
  }
  e.error.clear();
  return n;
}

Result<uint64_t> Supervisor::StepDerivation(Entry& e, Round* round, bool launch) {
  auto* derive = static_cast<DeriveTask*>(e.task.get());
  Result<uint64_t> n = uint64_t{0};
  bool stepped = false;  // a transaction was taken from a thread
  auto done = [](const auto& future) {
    return future.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  };
  // Catching up, transactions are pipelined (DeriveTask::Finish): one is computed on a
  // thread of its own while the one before it finishes on another; each is committed here,
  // in order, once finished.
  if (e.finishing.valid()) {
    if (!done(e.finishing)) {
      round->busy = true;
      return uint64_t{0};
    }
    stepped = true;
    auto finished = e.finishing.get();
    auto txn = std::move(e.finished);
    if (finished) finished = derive->Publish(*txn);
    if (!finished) n = finished.error();
    // Status shows what a computing task showed when it began, which was before this
    // commit (the counters are only changed here, by Publish).
    if (e.computing.valid()) e.shown_counters = e.task->counters();
  }
  if (n && e.computing.valid()) {
    if (!done(e.computing)) {
      round->busy = true;
      return n;
    }
    stepped = true;
    n = e.computing.get();
    --computing_;
    e.ledger.reset();
    if (n && n.value() > 0) {
      e.finished = derive->TakeComputed();
      e.finishing = std::async(std::launch::async, [derive, txn = e.finished] { return derive->Finish(*txn); });
    }
  }
  if (n && launch && options_.threads > 0 &&
      (e.task->behind() ||  // documents waiting for a read delay are not a backlog
       (MovingState(e.task->progress()) == TaskState::kBackFilling && e.task->next_ready() == 0))) {
    // Catching up: its transactions are computed on a thread of their own, larger, while
    // this thread goes on serving the other tasks and ingestion.
    round->busy = true;
    if (computing_ < options_.threads) {  // else it waits for a thread
      e.shown_counters = e.task->counters();
      e.shown_progress = e.task->progress();
      e.shown_next_ready = e.task->next_ready();
      e.ledger = std::make_unique<store::LedgerState>(store_->committed());
      e.computing = std::async(std::launch::async, [derive, ledger = e.ledger.get()] {
        return derive->Compute(*ledger, kBackgroundDocs);
      });
      ++computing_;
    }
  } else if (n && !stepped && !e.finishing.valid()) {
    n = e.task->Step();
  }
  if (e.finishing.valid()) round->busy = true;
  if (!n) {
    // What is computing is dropped, what finished before the failure is committed.
    Settle(e);
  }
  if (!n && lambda::StopRequested()) {
    // Interrupted because the command is stopping: not the derivation's failure. The task
    // rolled back and is not stepped again; it resumes from its checkpoint next time.
    e.state = TaskState::kStopped;
    return uint64_t{0};
  }
  if (!n) {
    // A failed derivation halts; the others keep running (SPEC 4).
    Drop(e);
    Halt(e, n.error(), fmt::format("error: {}", n.error().message));
    if (store_->failed()) return n.error();  // the store refuses further work
    return uint64_t{0};
  }
  return n;
}

void Supervisor::Settle(Entry& e) {
  if (e.computing.valid()) {
    auto dropped = e.computing.get();
    (void)dropped;  // computed after the failure: derived again from the checkpoint
    --computing_;
    e.ledger.reset();
    if (e.task) static_cast<DeriveTask*>(e.task.get())->TakeComputed();
  }
  if (e.finishing.valid()) {
    auto finished = e.finishing.get();
    auto txn = std::move(e.finished);
    if (finished && !store_->failed()) {
      auto published = static_cast<DeriveTask*>(e.task.get())->Publish(*txn);
      if (!published) Log(fmt::format("error: derivation `{}`: {}", e.name, published.error().message));
    }
  }
}

uint64_t Supervisor::StepMaterialization(Entry& e, Round* round) {
  if (!e.task && options_.clock.steady() < e.retry_at) {
    round->waiting = true;
    return 0;
  }
  Result<uint64_t> n = uint64_t{0};
  if (!e.task) {
    auto made = e.make();
    Result<bool> opened = made ? made.value()->Open() : Result<bool>(made.error());
    if (opened) {
      e.task = std::move(made.value());
      e.committed = 0;
      e.rebuild = false;  // rebuilt: a reopening goes on from the rebuild's checkpoint
    } else {
      n = opened.error();
    }
  }
  if (n && e.task && UpstreamBehind(e)) {
    // Its source is being back-filled: storing every small upstream transaction would write
    // each row many times, so it waits until the upstream catches up, or kMaxHold.
    auto now = options_.clock.steady();
    if (!e.held_since) e.held_since = now;
    if (now - *e.held_since < kMaxHold) return 0;
  }
  e.held_since.reset();
  if (n && e.task) n = e.task->Step();
  if (n) {
    // Step is pipelined: its success may only mean that a transaction started, whose store
    // fails in the next Step. Only a commit, or a Step with nothing to store (everything
    // before it committed), ends a run of failures; else a target that fails every
    // transaction (a full disk) was retried every 0.5 s, and `run --until-idle` never ended.
    uint64_t committed = e.task ? e.task->counters().transactions : 0;
    if (n.value() == 0 || committed > e.committed) e.failures = 0;
    e.committed = committed;
    e.error.clear();
    e.state = TaskState::kRunning;
    return n.value();
  }
  Drop(e);
  e.error = n.error().message;
  // Fenced off: another instance owns the target now; retrying would take it back.
  bool fenced = n.error().code == Error::Code::kFenced;
  if (fenced || n.error().code != Error::Code::kEnvironment || !options_.retry_targets ||
      (options_.until_idle && ++e.failures >= kMaxFailuresUntilIdle)) {
    Error named = Error(n.error()).In(fmt::format("materialization `{}`", e.name));
    Halt(e, n.error(), "error: " + named.message);
    return 0;
  }
  if (!options_.until_idle) ++e.failures;
  auto backoff = std::chrono::milliseconds(std::min(30000, 250 << std::min(e.failures, 7)));
  e.retry_at = options_.clock.steady() + backoff;
  e.state = TaskState::kRetrying;
  round->waiting = true;
  // Named once: a message that names the materialization already is not prefixed again.
  Error named = Error(n.error()).In(fmt::format("materialization `{}`", e.name));
  Log(fmt::format("warning: {}; retrying in {:.1f} s", named.message, backoff.count() / 1000.0));
  return 0;
}

Result<uint64_t> Supervisor::StepOnce(Entry& e, Round* round) {
  // Documents the task stamps carry the supervisor's clock (simulated in tests).
  if (stamper_) stamper_->clock().AdvanceTo(doc::ClockFromUnixNanos(options_.clock.wall()));
  if (e.stamper && !e.computing.valid() && !e.finishing.valid()) e.stamper->clock().AdvanceTo(doc::ClockFromUnixNanos(options_.clock.wall()));
  Result<uint64_t> n = uint64_t{0};
  switch (e.kind) {
    case TaskKind::kCapture:
      n = StepCapture(e);
      if (n && !e.error.empty()) round->waiting = true;
      break;
    case TaskKind::kDerivation:
      n = StepDerivation(e, round);
      break;
    case TaskKind::kMaterialization:
      n = StepMaterialization(e, round);
      break;
  }
  if (n && n.value() > 0) round->progress = true;
  return n;
}

bool Supervisor::UpstreamBehind(const Entry& m) const {
  std::vector<std::string> todo = m.sources;
  std::set<std::string> seen;
  while (!todo.empty()) {
    std::string name = std::move(todo.back());
    todo.pop_back();
    if (!seen.insert(name).second) continue;
    auto it = derivations_.find(name);
    if (it == derivations_.end()) continue;  // not derived, or not run here
    const Entry& d = *it->second;
    if (!d.stepping() || !d.task) continue;  // halted: it will not catch up
    if (d.computing.valid() || d.finishing.valid() || d.task->behind()) return true;
    todo.insert(todo.end(), d.sources.begin(), d.sources.end());
  }
  return false;
}

Result<Supervisor::Round> Supervisor::Step() {
  Round round;
  derivations_.clear();
  for (auto& e : entries_) {
    if (e->kind == TaskKind::kDerivation) derivations_[e->name] = e.get();
  }
  for (auto& e : entries_) {
    if (!e->stepping()) continue;
    for (;;) {
      auto n = StepOnce(*e, &round);
      if (!n) return n.error();
      if (!options_.drain_each || n.value() == 0 || !e->stepping()) break;
    }
  }
  return round;
}

Result<bool> Supervisor::Run(const std::atomic<bool>& stop,
                             const std::function<void()>& after_round) {
  while (!stop) {
    auto round = Step();
    if (!round) return round.error();  // the store refuses further work
    if (round->waiting && !round->progress && !round->busy) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (after_round) after_round();
    if (round->progress) continue;
    if (round->busy) {  // a derivation is computing on its own thread
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    auto persisted = store_->PersistDue(options_.clock.wall() / 1000000000);
    if (!persisted) {
      Log("error: " + persisted.error().message);
      return persisted.error();
    }
    if (options_.until_idle) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

std::vector<TaskStatus> Supervisor::Status() const {
  std::vector<TaskStatus> out;
  for (const auto& e : entries_) {
    TaskStatus s;
    s.kind = e->kind;
    s.name = e->name;
    s.counters = e->done;
    s.progress = e->progress;
    if (e->computing.valid()) {
      s.counters += e->shown_counters;
      s.progress = e->shown_progress;
    } else if (e->task) {
      s.counters += e->task->counters();
      s.progress = e->task->progress();
    }
    s.error = e->error;
    s.state = e->state;
    if (e->state == TaskState::kRunning && e->kind != TaskKind::kCapture)
      s.state = MovingState(s.progress);
    out.push_back(std::move(s));
  }
  return out;
}

int64_t Supervisor::NextReady() const {
  int64_t next = 0;
  for (const auto& e : entries_) {
    if (!e->task || !e->stepping()) continue;
    int64_t n = e->computing.valid() ? e->shown_next_ready : e->task->next_ready();
    if (n && (!next || n < next)) next = n;
  }
  return next;
}

}  // namespace flow::runtime
