// `flowctl develop` as a library (SPEC sections 7 and 8): the catalog's tasks running
// continuously (runtime::Supervisor) over a data directory, the ingestion API (server/)
// with its control endpoint, Prometheus metrics, and live reload when the catalog's
// sources change. The command line (cli/develop.cc) supplies the flags, loads the catalog
// and shows the status and log lines this module hands it; nothing here prints.
//
// Internals, one job a file: `ingest_service.h` (the server's backend: requests queued
// for the pipeline thread, group commit through runtime::CommitGroup), `control.h` (POST
// /materializations), `metrics.h` (the /metrics text), `watcher.h` (source file changes),
// `build.h` (compiling a loaded catalog, reusing Node.js workers across reloads).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "catalog/check.h"
#include "catalog/loader.h"
#include "base/result.h"
#include "runtime/ingest_file.h"
#include "runtime/input.h"
#include "runtime/one_off.h"
#include "runtime/plan.h"
#include "runtime/supervisor.h"
#include "server/guard.h"

namespace flow::develop {

// A catalog loaded from its sources and checked, and how its Node.js workers start.
struct Source {
  std::unique_ptr<catalog::Loaded> loaded;
  catalog::Built built;  // points into `loaded`
  runtime::NodeStarter node;
};

struct Options {
  std::string data_dir;
  std::string host = "127.0.0.1";
  uint16_t port = 8081;                       // 0: any free port
  bool no_watch = false;                      // do not rebuild when the sources change
  std::vector<std::string> materializations;  // run only these (default: all)
  std::vector<std::string> backfill;          // back-filled at the start (runtime/backfill.h)
  // A derivation whose logic changed since its checkpoint (at the start or on a reload) is
  // back-filled with what is downstream; else it goes on with a warning.
  bool backfill_changed = true;
  uint64_t max_body = 64ull << 20;
  std::chrono::milliseconds request_timeout{30000};
  // Web origins (besides develop's own) whose pages may call the API.
  std::vector<server::Origin> allow_origins;
  // The status is handed over every half second (a terminal's redrawn view), or else every
  // `status_interval` seconds.
  bool redraw = false;
  double status_interval = 10;
  // Derivations catching up compute on up to this many threads of their own
  // (runtime::Supervisor::Options::threads); 0: the cores available.
  unsigned threads = 0;
};

// What the status view shows.
struct Status {
  std::string url;         // of the ingestion API
  uint64_t requests = 0;   // ingest requests answered
  uint64_t documents = 0;  // documents ingested through the API
  std::vector<runtime::TaskStatus> tasks;
};

// The status as lines of text: with `table`, a header and a table row a task (the
// terminal's redrawn view); else one `status: ...` line a task and one for ingestion (logs).
std::vector<std::string> StatusLines(const Status& status, bool table);

struct Hooks {
  // Loads and checks the catalog's sources, reporting their problems itself; on errors
  // returns nullopt with `*exit_code` set. `consequence` ends the errors' summary line
  // ("; nothing was started", "; still running the previous catalog").
  using Load = std::function<std::optional<Source>(const std::string& consequence, int* exit_code)>;
  Load load;
  // A line of develop's log; errors and warnings start "error: " and "warning: ".
  std::function<void(const std::string&)> log;
  // The error that ends develop before it runs, or while stopping.
  std::function<void(const std::string&)> error;
  // The status, as Options::redraw says.
  std::function<void(const Status&)> status;
  // The last status, once stopped and the spools persisted.
  std::function<void(const Status&)> stopped;
};

// Runs develop until SIGINT or SIGTERM (which it handles) or a failure of the store.
// Returns the exit code: 0 when stopped by a signal.
int Run(const Options& options, const Hooks& hooks);

// The file in a data directory that tells other commands where the `develop` running over
// it listens: `{"url": "http://127.0.0.1:8081", "pid": 123}`.
std::string DevelopFile(const std::string& data_dir);

// The URL of the develop running over `data_dir`, or "" when there is none.
std::string RunningDevelopUrl(const std::string& data_dir);

// The client side of a running develop's API (client.cc), for the commands that hand their
// work to the develop owning a data directory: `flowctl ingest` and `flowctl materialize`.
// `url` is the develop's, as RunningDevelopUrl gives it. A connection failure is an
// environment error naming the URL; a refusal is an error saying the develop's reason, the
// HTTP status and the URL (an environment error for 5xx, else the user's).

// Sends `input` to the develop at `url` as one PUT /ingest: JSON lines as they are, CSV/TSV
// rows converted with the projections of `csv_collection` (unused for JSON). Returns the
// acknowledgement (`{"Offsets": ...}`) and the number of documents sent. On an error,
// `*where` is the place it is about when there is one: the input's line (JSON lines) or the
// input (CSV/TSV, whose message starts with the row).
struct IngestAck {
  std::string body;
  size_t documents = 0;
};
Result<IngestAck> IngestThrough(const std::string& url, runtime::Input& input, const std::string& collection,
                                runtime::IngestFormat format,
                                const std::shared_ptr<const runtime::Collection>& csv_collection, std::string* where);

// Starts the one-off materialization `request` in the develop (POST /materializations).
Result<bool> MaterializeThrough(const std::string& url, const runtime::OneOffRequest& request);

}  // namespace flow::develop
