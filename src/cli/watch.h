// `--watch` for the commands that rerun on a change (`flowctl test`, `flowctl preview`): the
// files a run read are watched with develop's SourceWatcher, and the run is repeated once a
// change has settled, until SIGINT or SIGTERM.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace flow::cli {

struct WatchLoop {
  // Runs once, setting `*files` to the local files it read (the catalog's sources, inputs);
  // left empty when the catalog did not load.
  std::function<void(std::vector<std::string>* files)> run;
  // Watched when `run` could not list its files: the catalog's root source when it is a
  // local file (so that an edit can fix a catalog that does not load).
  std::vector<std::string> always;
  // The note after each run, given the number of files watched: "watching 3 files of the
  // catalog: save a change to run the tests again (Ctrl-C to stop)".
  std::function<std::string(size_t files)> watching;
  // The note before each rerun: "the catalog changed: running the tests again".
  std::string changed;
};

struct CatalogOptions;

// The catalog's root file (its source, or the built catalog) when it is a local file: what
// WatchLoop::always holds so that an edit can fix a catalog that does not load.
std::vector<std::string> CatalogRootFile(const CatalogOptions& c);

// Runs `loop` until SIGINT or SIGTERM, and returns 0 then.
int RunWatching(const WatchLoop& loop);

// Whether SIGINT or SIGTERM arrived during RunWatching (a run may stop early).
bool WatchStopped();

}  // namespace flow::cli
