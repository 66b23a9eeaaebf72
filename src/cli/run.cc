#include "cli/run.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>

#include <fmt/format.h>

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
  auto plan = runtime::CompilePlan(checked->built, NodeStarterFor(*checked));
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
        if (n.error().code == Error::Code::kEnvironment && n.error().message.find("I/O error") != std::string::npos) {
          return kExitEnvironment;  // the store refuses further work
        }
        exit_code = std::max(exit_code, n.error().ExitCode());
        continue;
      }
      progress = progress || n.value() > 0;
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
  for (const auto& t : tasks) {
    fmt::print(stderr, "derivation `{}`: {} documents read, {} published in {} transactions{}\n",
               t.task->derivation().collection->name, t.task->stats().read, t.task->stats().published,
               t.task->stats().transactions, t.halted ? " (halted by an error)" : "");
  }
  fmt::print(stderr, "{} in {:.2f} s\n", g_stop ? "stopped" : "idle", secs);
  return exit_code;
}

}  // namespace flow::cli
