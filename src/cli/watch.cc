#include "cli/watch.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>

#include <fmt/format.h>

#include "base/diagnostics.h"
#include "base/url.h"
#include "cli/common.h"
#include "cli/output.h"
#include "develop/watcher.h"

namespace flow::cli {
namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop = true; }

}  // namespace

bool WatchStopped() { return g_stop; }

std::vector<std::string> CatalogRootFile(const CatalogOptions& c) {
  std::string url = SourceUrl(c.catalog.empty() ? c.source : c.catalog);
  if (!IsFileUrl(url)) return {};
  return {FilePathOfUrl(url)};
}

int RunWatching(const WatchLoop& loop) {
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  develop::SourceWatcher watcher;
  std::vector<std::string> files = loop.always;
  // Watched from before the first run, so that a change during a run is not missed.
  watcher.Watch(files);
  for (;;) {
    loop.run(&files);
    if (files.empty()) files = loop.always;
    watcher.Watch(files);
    if (g_stop) return kExitOk;
    PrintNote(loop.watching(files.size()));
    while (!g_stop && !watcher.Poll(std::chrono::steady_clock::now())) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (g_stop) return kExitOk;
    PrintNote(loop.changed);
    fmt::print("\n");
    std::fflush(stdout);
  }
}

}  // namespace flow::cli
