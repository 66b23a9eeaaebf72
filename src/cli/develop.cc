// `flowctl develop`: `run` plus the ingestion API (SPEC section 7), file-drop captures, a
// status view, and live reload of the catalog's sources (SPEC section 8). The flags and the
// status view; develop itself is the `develop` module (develop/develop.h).
#include "cli/commands.h"

#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/common.h"
#include "cli/node.h"
#include "base/strings.h"
#include "cli/output.h"
#include "develop/develop.h"
#include "server/guard.h"

namespace flow::cli {

// The flags: most go straight into develop's options; these are converted when it runs.
struct DevelopOptions {
  CatalogOptions catalog;
  develop::Options d;
  int port = 8081;
  double request_timeout = 30;       // seconds
  std::string max_body = "64MiB";
  std::string on_change = "backfill";
  std::vector<std::string> allow_origins;  // "http://host:port"
};

namespace {

// The status block: redrawn in place on a terminal; log lines go above it.
class StatusView {
 public:
  explicit StatusView(bool terminal) : terminal_(terminal) {}
  void Log(const std::string& line) {
    Clear();
    PrintLine(line);
  }
  void Clear() {
    if (terminal_ && shown_ > 0) fmt::print(stderr, "\033[{}F\033[J", shown_);
    shown_ = 0;
  }
  void Draw(const std::vector<std::string>& lines) {
    Clear();
    for (const auto& l : lines) fmt::print(stderr, "{}\n", l);
    shown_ = lines.size();
  }
  bool terminal() const { return terminal_; }

 private:
  bool terminal_;
  size_t shown_ = 0;
};

}  // namespace

int RunDevelop(const GlobalOptions& g, const DevelopOptions& o) {
  develop::Options d = o.d;
  for (const auto& a : o.allow_origins) {
    auto origin = server::ParseOrigin(a);
    if (!origin) {
      PrintError(fmt::format("--allow-origin `{}` is not a web origin such as http://localhost:3000 "
                             "(a scheme, a host and an optional port, no path)",
                             a));
      return kExitUsage;
    }
    d.allow_origins.push_back(*origin);
  }
  auto bytes = ParseByteSize(o.max_body);
  if (!bytes || *bytes == 0) {
    PrintError(fmt::format("--max-body `{}` is not a size such as 64MiB", o.max_body));
    return kExitUsage;
  }
  d.max_body = *bytes;
  d.port = static_cast<uint16_t>(o.port);
  d.backfill_changed = o.on_change == "backfill";
  d.request_timeout = std::chrono::milliseconds(static_cast<int64_t>(o.request_timeout * 1000));
  d.redraw = ::isatty(STDERR_FILENO) && !JsonOutput();
  StatusView view(d.redraw);

  develop::Hooks hooks;
  hooks.load = [&](const std::string& consequence, int* code) -> std::optional<develop::Source> {
    auto checked = LoadAndCheck(g, o.catalog, consequence, code);
    if (!checked) return std::nullopt;
    if (int node = PrepareNodeLambdas(g, *checked, consequence, !o.catalog.no_type_check);
        node != kExitOk) {
      *code = node;
      return std::nullopt;
    }
    runtime::NodeStarter starter = NodeStarterFor(*checked);
    return develop::Source{std::move(checked->loaded), std::move(checked->built),
                           std::move(starter)};
  };
  hooks.log = [&](const std::string& line) { view.Log(line); };
  hooks.error = [&](const std::string& message) {
    view.Clear();
    PrintError(message);
  };
  hooks.status = [&](const develop::Status& status) {
    if (view.terminal()) {
      view.Draw(develop::StatusLines(status, true));
    } else {
      for (const auto& l : develop::StatusLines(status, false)) PrintLine(l);
    }
  };
  hooks.stopped = [&](const develop::Status& status) {
    view.Clear();
    for (const auto& l : develop::StatusLines(status, false)) PrintLine(l);
  };
  return develop::Run(d, hooks);
}

Command RegisterDevelop(CLI::App& app) {
  auto f = std::make_shared<DevelopOptions>();
  DevelopOptions& o = *f;
  o.d.data_dir = kDefaultDataDir;
  auto* cmd = app.add_subcommand(
      "develop",
      "Run the pipeline continuously with the ingestion API, file-drop captures and live reload");
  AddCatalogOptions(*cmd, o.catalog);
  AddTypeCheckFlag(*cmd, o.catalog);
  AddDataDirOption(*cmd, o.d.data_dir);
  cmd->add_option("--port", o.port, "Port of the ingestion API (0: any free port)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--host", o.d.host, "Address to listen on (loopback by default)")
      ->capture_default_str();
  cmd->add_flag("--no-watch", o.d.no_watch, "Do not rebuild when the catalog's sources change");
  cmd->add_option("--materialization", o.d.materializations,
                  "Run only this materialization of the catalog (repeatable; default: all)");
  cmd->add_option("--backfill", o.d.backfill,
                  "Recompute this derivation or materialization from the start of its sources' history when "
                  "develop starts, with everything downstream (repeatable; see docs/lifecycle.md)")
      ->type_name("NAME");
  cmd->add_option("--on-change", o.on_change,
                  "A derivation whose logic changed (at the start or on a reload): `backfill` it and what is "
                  "downstream, or `continue` from its checkpoint with a warning")
      ->check(CLI::IsMember({"continue", "backfill"}))
      ->capture_default_str();
  cmd->add_option("--status-interval", o.d.status_interval,
                  "Seconds between status lines when stderr is not a terminal")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--request-timeout", o.request_timeout,
                  "Seconds a client has to send a request's headers and body (slow or idle "
                  "clients are cut off), and the keep-alive idle limit")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-body", o.max_body, "Largest ingest request body")->capture_default_str();
  AddThreadsOption(
      *cmd, o.d.threads,
      "How many derivations catching up on a backlog may compute at once, each on a thread of its "
      "own, so that a long back-fill holds up neither the ingestion API nor the other tasks; also "
      "the "
      "threads a materialization's transaction reads and combines on");
  cmd->add_option("--allow-origin", o.allow_origins,
                  "Let web pages of this origin (e.g. http://localhost:3000) call the API from a "
                  "browser (repeatable; by default browsers are refused, see docs/security.md)");
  cmd->footer(
      "Serves PUT/POST /ingest, WebSocket /ingest/<collection> (json/v1, csv/v1, tsv/v1), "
      "/healthz and /metrics (see docs/reference/ingestion-api.md); ingests files dropped into "
      "the catalog's fileDrop captures; runs every derivation and materialization continuously; "
      "and rebuilds when a source file changes: a catalog with errors is reported and the "
      "previous one keeps running, a good one is applied without losing data (unchanged tasks "
      "keep their state, a changed derivation is back-filled with what is downstream (--on-change), "
      "new tasks back-fill). The "
      "listening URL is written to <data-dir>/develop.json, where `flowctl materialize` and "
      "`flowctl ingest --url` find it. SIGINT/SIGTERM persist spools and exit 0.\n"
      "Browser safety: requests must be addressed to a loopback name or address or the --host "
      "(DNS rebinding), a request from a web page of another origin is refused unless "
      "--allow-origin lists it, and JSON endpoints require Content-Type: application/json (see "
      "docs/security.md).\n"
      "Exit status: 0 stopped by a signal, 1 the catalog has errors at start, 2 usage error, 3 "
      "an environment problem (port in use, data directory locked, the store failed).");
  return {cmd, [f](const GlobalOptions& g) { return RunDevelop(g, *f); }};
}

}  // namespace flow::cli
