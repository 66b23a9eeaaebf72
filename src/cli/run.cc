#include "cli/run.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>

#include <fmt/format.h>

#include "base/strings.h"

#include "cli/node.h"
#include "runtime/derive.h"
#include "runtime/plan.h"
#include "store/lock.h"

namespace flow::cli {
namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int RunRun(const GlobalOptions& g, const RunOptions& o) {
  auto start = std::chrono::steady_clock::now();
  int code = 0;
  auto checked = LoadAndCheck(g, o.catalog, "; nothing was run", &code);
  if (!checked) return code;
  auto plan = runtime::CompilePlan(checked->loaded->catalog, checked->built, NodeStarterFor(*checked));
  if (!plan) {
    fmt::print(stderr, "error: {}\n", plan.error().message);
    return plan.error().ExitCode();
  }
  auto data = OpenDataDir(o.data_dir, &code);
  if (!data) return code;
  store::Store* store = data->store.get();
  runtime::Stamper stamper;
  struct Task {
    std::unique_ptr<runtime::DeriveTask> task;
    bool halted = false;
  };
  std::vector<Task> tasks;
  for (const auto& d : plan->derivations) {
    tasks.push_back({std::make_unique<runtime::DeriveTask>(d, store, &stamper, NowNanos), false});
    auto opened = tasks.back().task->Open();
    if (!opened) {
      fmt::print(stderr, "error: derivation `{}`: {}\n", d->collection->name, opened.error().message);
      return opened.error().ExitCode();
    }
  }
  // Materializations. A target that fails with an environment error (unreachable, locked,
  // fenced off) is retried with backoff: its task is reopened, so it resumes from the
  // checkpoint stored in the target and never skips or repeats data.
  struct Target {
    std::shared_ptr<const runtime::Materialization> spec;
    std::unique_ptr<runtime::MaterializeTask> task;
    bool halted = false;
    int failures = 0;
    std::chrono::steady_clock::time_point retry_at{};
    runtime::MaterializeStats done;  // of tasks dropped before
  };
  std::vector<Target> targets;
  std::vector<std::string> names;
  for (const auto& m : plan->materializations) names.push_back(m->name);
  for (const auto& want : o.materializations) {
    if (std::find(names.begin(), names.end(), want) == names.end()) {
      std::string hint = DidYouMean(want, names);
      fmt::print(stderr, "error: no materialization `{}` in the catalog{}\n", want, hint.empty() ? "" : "; " + hint);
      return kExitUserError;
    }
  }
  for (const auto& m : plan->materializations) {
    if (!o.materializations.empty() &&
        std::find(o.materializations.begin(), o.materializations.end(), m->name) == o.materializations.end()) {
      continue;
    }
    targets.push_back({m, nullptr, false, 0, {}, {}});
  }
  constexpr int kMaxFailuresUntilIdle = 4;
  auto open_target = [&](Target& t) -> Result<bool> {
    auto driver = runtime::ConnectTarget(*t.spec);
    if (!driver) return driver.error();
    auto task = std::make_unique<runtime::MaterializeTask>(t.spec, store, std::move(driver.value()));
    auto opened = task->Open();
    if (!opened) return opened.error();
    t.task = std::move(task);
    return true;
  };

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  bool progress_shown = false, terminal = ::isatty(STDERR_FILENO);
  auto last_status = std::chrono::steady_clock::now();
  int exit_code = kExitOk;
  while (!g_stop) {
    bool progress = false;
    for (auto& t : tasks) {
      if (t.halted) continue;
      auto n = t.task->Step();
      if (!n) {
        // A failed derivation halts; the others keep running (SPEC 4).
        t.halted = true;
        if (progress_shown) fmt::print(stderr, "\r\033[K");
        fmt::print(stderr, "error: {}\n", n.error().message);
        if (store->failed()) return kExitEnvironment;  // the store refuses further work
        exit_code = std::max(exit_code, n.error().ExitCode());
        continue;
      }
      progress = progress || n.value() > 0;
    }
    bool retrying = false;
    for (auto& t : targets) {
      if (t.halted) continue;
      auto now_steady = std::chrono::steady_clock::now();
      if (!t.task && now_steady < t.retry_at) {
        retrying = true;
        continue;
      }
      Result<uint64_t> n = uint64_t{0};
      if (!t.task) {
        auto o = open_target(t);
        if (!o) n = o.error();
      }
      if (n && t.task) n = t.task->Step();
      if (n) {
        t.failures = 0;
        progress = progress || n.value() > 0;
        continue;
      }
      if (progress_shown) fmt::print(stderr, "\r\033[K");
      if (t.task) {
        const auto& st = t.task->stats();
        t.done.read += st.read;
        t.done.stored += st.stored;
        t.done.transactions += st.transactions;
      }
      t.task.reset();
      // Fenced off: another instance owns the target now; retrying would take it back.
      bool fenced = materialize::IsFencedOff(n.error());
      if (fenced || n.error().code != Error::Code::kEnvironment ||
          (o.until_idle && ++t.failures >= kMaxFailuresUntilIdle)) {
        t.halted = true;
        fmt::print(stderr, "error: materialization `{}`: {}\n", t.spec->name, n.error().message);
        exit_code = std::max(exit_code, n.error().ExitCode());
        continue;
      }
      if (!o.until_idle) ++t.failures;
      auto backoff = std::chrono::milliseconds(std::min(30000, 250 << std::min(t.failures, 7)));
      t.retry_at = std::chrono::steady_clock::now() + backoff;
      retrying = true;
      fmt::print(stderr, "warning: materialization `{}`: {}; retrying in {:.1f} s\n", t.spec->name,
                 n.error().message, backoff.count() / 1000.0);
    }
    if (retrying && !progress) {
      ::usleep(100 * 1000);
      continue;
    }
    auto now = std::chrono::steady_clock::now();
    if (terminal && now - last_status > std::chrono::milliseconds(500)) {
      last_status = now;
      std::string line;
      for (const auto& t : tasks) {
        line += fmt::format("{}{}: {} in, {} out{}", line.empty() ? "" : "; ", t.task->derivation().collection->name,
                            t.task->stats().read, t.task->stats().published, t.halted ? " (halted)" : "");
      }
      fmt::print(stderr, "\r\033[K{}", line);
      progress_shown = true;
    }
    if (progress) continue;
    auto persisted = store->PersistDue(std::time(nullptr));
    if (!persisted) {
      fmt::print(stderr, "error: {}\n", persisted.error().message);
      return persisted.error().ExitCode();
    }
    if (o.until_idle) break;
    ::usleep(50 * 1000);
  }
  if (progress_shown) fmt::print(stderr, "\r\033[K");
  auto persisted = store->PersistAll();
  if (!persisted) {
    fmt::print(stderr, "error: {}\n", persisted.error().message);
    return persisted.error().ExitCode();
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const auto& t : targets) {
    runtime::MaterializeStats st = t.done;
    if (t.task) {
      st.read += t.task->stats().read;
      st.stored += t.task->stats().stored;
      st.transactions += t.task->stats().transactions;
    }
    fmt::print(stderr, "materialization `{}`: {} documents read, {} rows stored in {} transactions{}\n",
               t.spec->name, st.read, st.stored, st.transactions, t.halted ? " (halted by an error)" : "");
  }
  for (const auto& t : tasks) {
    fmt::print(stderr, "derivation `{}`: {} documents read, {} published in {} transactions{}\n",
               t.task->derivation().collection->name, t.task->stats().read, t.task->stats().published,
               t.task->stats().transactions, t.halted ? " (halted by an error)" : "");
  }
  fmt::print(stderr, "{} in {:.2f} s\n", g_stop ? "stopped" : "idle", secs);
  return exit_code;
}

}  // namespace flow::cli
