#include "cli/develop.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <rapidjson/document.h>

#include "base/strings.h"
#include "base/url.h"
#include "cli/ingest_service.h"
#include "cli/materialize.h"
#include "cli/node.h"
#include "cli/output.h"
#include "lambda/lambda.h"
#include "runtime/fingerprint.h"
#include "runtime/supervisor.h"
#include "store/journal.h"

namespace flow::cli {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};
// Lambdas give up too, so that a lambda that never returns cannot hold the process.
void OnSignal(int) {
  g_stop = true;
  lambda::RequestStop();
}

std::string HumanBytes(uint64_t b) {
  if (b < 1024) return fmt::format("{} B", b);
  if (b < (1 << 20)) return fmt::format("{:.1f} KiB", b / 1024.0);
  if (b < (1ull << 30)) return fmt::format("{:.1f} MiB", b / 1048576.0);
  return fmt::format("{:.1f} GiB", b / 1073741824.0);
}

// Prometheus label values escape backslashes, quotes and line ends.
std::string Label(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

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

// A source file's identity for change detection.
struct Stamp {
  int64_t mtime_ns = 0;
  int64_t size = -1;
  bool operator==(const Stamp& o) const { return mtime_ns == o.mtime_ns && size == o.size; }
};

Stamp StampOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return {};
  return {static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec, static_cast<int64_t>(st.st_size)};
}

// Latency histogram buckets (seconds) of ingest commits.
constexpr double kBuckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

}  // namespace

std::string DevelopFile(const std::string& data_dir) { return data_dir + "/develop.json"; }

std::string RunningDevelopUrl(const std::string& data_dir) {
  std::ifstream in(DevelopFile(data_dir));
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  rapidjson::Document d;
  std::string text = ss.str();
  d.Parse(text.data(), text.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("url") || !d["url"].IsString() || !d.HasMember("pid") ||
      !d["pid"].IsInt64()) {
    return "";
  }
  pid_t pid = static_cast<pid_t>(d["pid"].GetInt64());
  if (pid <= 0 || (::kill(pid, 0) != 0 && errno != EPERM)) return "";
  return d["url"].GetString();
}

int RunDevelop(const GlobalOptions& g, const DevelopOptions& o) {
  std::vector<server::Origin> allow_origins;
  for (const auto& a : o.allow_origins) {
    auto origin = server::ParseOrigin(a);
    if (!origin) {
      PrintError(fmt::format("--allow-origin `{}` is not a web origin such as http://localhost:3000 "
                             "(a scheme, a host and an optional port, no path)",
                             a));
      return kExitUsage;
    }
    allow_origins.push_back(*origin);
  }
  bool terminal = ::isatty(STDERR_FILENO) && !JsonOutput();
  StatusView view(terminal);
  auto log = [&](const std::string& line) { view.Log(line); };

  // Loads, checks and compiles the catalog; nullopt after printing its errors.
  struct Built {
    std::unique_ptr<CheckedCatalog> checked;
    std::shared_ptr<runtime::Plan> plan;
    std::map<std::string, std::string> fingerprints;
    std::vector<std::string> files;  // local source files, to watch
  };
  // Node workers by derivation and lambda bodies: a reload reuses the workers of unchanged
  // derivations instead of starting them again.
  std::map<std::string, std::map<std::string, std::shared_ptr<lambda::Lambda>>> node_cache;
  auto build = [&](const std::string& consequence, int* code) -> std::optional<Built> {
    auto checked = LoadAndCheck(g, o.catalog, consequence, code);
    if (!checked) return std::nullopt;
    Built b;
    b.checked = std::make_unique<CheckedCatalog>(std::move(*checked));
    if (int node = PrepareNodeLambdas(g, *b.checked); node != kExitOk) {
      *code = node;
      return std::nullopt;
    }
    // Spools become lake fragments at least every 5 minutes while developing.
    for (auto& c : b.checked->loaded->catalog.collections) {
      if (c.flush_interval == 0) c.flush_interval = 300;
    }
    auto base = NodeStarterFor(*b.checked);
    std::map<std::string, std::map<std::string, std::shared_ptr<lambda::Lambda>>> used;
    runtime::NodeStarter cached = [&](const std::string& derivation, const std::vector<runtime::NodeLambda>& lambdas)
        -> Result<std::map<std::string, std::shared_ptr<lambda::Lambda>>> {
      std::string key = derivation;
      for (const auto& l : lambdas) {
        key += fmt::format("\n{}\n{}\n{}\n{}", l.id, l.transform, l.timeout.count(), l.body);
      }
      for (const auto& d : b.checked->loaded->catalog.node_dependencies) key += "\n" + d.package + "@" + d.version;
      if (auto it = node_cache.find(key); it != node_cache.end()) return used[key] = it->second;
      auto started = base(derivation, lambdas);
      if (started) used[key] = started.value();
      return started;
    };
    auto plan = runtime::CompilePlan(b.checked->loaded->catalog, b.checked->built, cached);
    if (!plan) {
      view.Log(fmt::format("error: {}{}", plan.error().message, consequence));
      *code = plan.error().ExitCode();
      return std::nullopt;
    }
    node_cache = std::move(used);
    b.plan = std::make_shared<runtime::Plan>(std::move(plan.value()));
    b.fingerprints = runtime::TaskFingerprints(b.checked->loaded->catalog, b.checked->built);
    for (const auto& f : b.checked->loaded->catalog.files) {
      if (IsFileUrl(f->url)) b.files.push_back(FilePathOfUrl(f->url));
    }
    return b;
  };

  int code = 0;
  auto first = build("; nothing was started", &code);
  if (!first) return code;
  Built current = std::move(*first);

  auto data = OpenDataDir(o.data_dir, &code);
  if (!data) return code;
  store::Store* store = data->store.get();
  runtime::Stamper stamper;

  runtime::Supervisor::Options po;
  po.log = log;
  po.materializations = o.materializations;
  runtime::Supervisor pipeline(store, &stamper, po);
  if (auto applied = pipeline.Apply(current.plan, current.fingerprints); !applied) {
    PrintError(applied.error().message);
    return applied.error().ExitCode();
  }

  // The ingestion API, and `flowctl materialize` into this develop.
  server::Options so;
  so.host = o.host;
  so.port = static_cast<uint16_t>(o.port);
  so.max_body = o.max_body;
  so.request_timeout = std::chrono::milliseconds(static_cast<int64_t>(o.request_timeout * 1000));
  so.allow_origins = allow_origins;
  auto control = [&](const std::string& method, const std::string& target, const std::string& body) {
    if (target != "/materializations") {
      return ErrorResponse(404, "no such resource: " + target);
    }
    if (method != "POST") {
      return ErrorResponse(405, "use POST");
    }
    rapidjson::Document d;
    d.Parse(body.data(), body.size());
    MaterializeOptions mo;
    auto str = [&](const char* k) {
      return d.IsObject() && d.HasMember(k) && d[k].IsString() ? std::string(d[k].GetString()) : std::string();
    };
    if (d.HasParseError() || !d.IsObject()) {
      return ErrorResponse(400, "expected a JSON object {target, collection, table, fields}");
    }
    mo.target = str("target");
    mo.collection = str("collection");
    mo.table = str("table");
    mo.all_fields = d.HasMember("allFields") && d["allFields"].IsBool() && d["allFields"].GetBool();
    if (d.HasMember("fields") && d["fields"].IsArray()) {
      for (const auto& f : d["fields"].GetArray()) {
        if (f.IsString()) mo.fields.push_back(f.GetString());
      }
    }
    auto m = OneOffMaterialization(*current.checked, mo);
    if (!m) return ErrorResponse(400, m.error().message);
    for (const auto& s : pipeline.Status()) {
      if (s.kind == runtime::TaskKind::kMaterialization && s.name == m.value()->name) {
        return ErrorResponse(409, "materialization `" + s.name + "` is already running");
      }
    }
    pipeline.AddMaterialization(m.value());
    log(fmt::format("started materialization `{}` of `{}` into table `{}` of target `{}`", m.value()->name,
                    mo.collection, mo.table, mo.target));
    return server::Response{200, fmt::format("{{\"name\":{}}}\n", JsonQuote(m.value()->name))};
  };
  IngestService service(store, &stamper, so.stream_pending_limit, control);
  service.SetPlan(current.plan);
  auto server = server::Server::Start(so, &service);
  if (!server) {
    PrintError(server.error().message);
    return server.error().ExitCode();
  }
  std::string url = fmt::format("http://{}:{}", o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host,
                                server.value()->port());
  {
    std::ofstream out(DevelopFile(o.data_dir), std::ios::trunc);
    out << fmt::format("{{\"url\":{},\"pid\":{}}}\n", JsonQuote(url), ::getpid());
  }
  service.SetReady(true);
  log(fmt::format("flowctl develop: ingestion API on {} (data in {}){}; Ctrl-C stops", url, o.data_dir,
                  o.no_watch ? "" : "; watching the catalog's sources"));

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);

  // Source watching.
  std::map<std::string, Stamp> watched;
  auto watch = [&](const std::vector<std::string>& files) {
    std::map<std::string, Stamp> next;
    for (const auto& f : files) next[f] = StampOf(f);
    // Keep watching files of the last good catalog too: an edit may fix a broken import.
    for (const auto& [f, s] : watched) next.emplace(f, StampOf(f));
    watched = std::move(next);
  };
  watch(current.files);
  auto last_watch = Clock::now();
  bool changed = false;
  Clock::time_point changed_at{};

  auto reload = [&]() {
    view.Clear();
    log("catalog sources changed: rebuilding");
    int rc = 0;
    auto next = build("; still running the previous catalog", &rc);
    if (!next) {
      view.Clear();
      return;
    }
    std::set<std::string> before;
    for (const auto& s : pipeline.Status()) before.insert(std::string(runtime::ToString(s.kind)) + ":" + s.name);
    auto applied = pipeline.Apply(next->plan, next->fingerprints);
    if (!applied) {
      log(fmt::format("error: {}; still running the previous catalog", applied.error().message));
      return;
    }
    service.SetPlan(next->plan);
    size_t kept = 0, changed = 0, added = 0;
    for (const auto& [key, fp] : next->fingerprints) {
      auto old = current.fingerprints.find(key);
      if (old == current.fingerprints.end()) {
        ++added;
      } else if (old->second == fp) {
        ++kept;
      } else {
        ++changed;
      }
    }
    size_t removed = 0;
    for (const auto& [key, _] : current.fingerprints) removed += next->fingerprints.count(key) ? 0 : 1;
    watch(next->files);
    current = std::move(*next);
    log(fmt::format("applied the new catalog: {} task{} unchanged, {} restarted from {} checkpoint{}, {} new, {} removed",
                    kept, kept == 1 ? "" : "s", changed, changed == 1 ? "its" : "their", changed == 1 ? "" : "s",
                    added, removed));
  };

  // Metrics and status.
  std::vector<uint64_t> buckets(std::size(kBuckets) + 1, 0);
  uint64_t latency_count = 0;
  double latency_sum = 0;
  auto render_metrics = [&]() {
    for (uint64_t us : service.commit_latencies()) {
      double s = us / 1e6;
      size_t i = 0;
      while (i < std::size(kBuckets) && s > kBuckets[i]) ++i;
      ++buckets[i];
      ++latency_count;
      latency_sum += s;
    }
    service.commit_latencies().clear();
    std::string m;
    m += "# HELP flowctl_ingested_documents_total Documents ingested through the API, by collection.\n"
         "# TYPE flowctl_ingested_documents_total counter\n";
    for (const auto& [c, n] : service.counters()) {
      m += fmt::format("flowctl_ingested_documents_total{{collection=\"{}\"}} {}\n", Label(c), n.documents);
    }
    m += "# HELP flowctl_collection_bytes Bytes committed to the collection's journals.\n"
         "# TYPE flowctl_collection_bytes gauge\n";
    const auto& committed = store->committed();
    for (const auto& [name, _] : current.plan->collections) {
      uint64_t bytes = 0;
      for (const auto& j : store::CollectionJournals(committed, name)) bytes += committed.heads.at(j);
      m += fmt::format("flowctl_collection_bytes{{collection=\"{}\"}} {}\n", Label(name), bytes);
    }
    auto status = pipeline.Status();
    // One metric family over every task; `value` returns nullopt to leave a task out.
    auto per_task = [&](std::string_view name, std::string_view type, std::string_view help, auto value) {
      m += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
      for (const auto& s : status) {
        std::optional<uint64_t> v = value(s);
        if (v) m += fmt::format("{}{{kind=\"{}\",task=\"{}\"}} {}\n", name, runtime::ToString(s.kind), Label(s.name), *v);
      }
    };
    using V = std::optional<uint64_t>;
    per_task("flowctl_task_documents_in_total", "counter", "Documents a task has read.",
             [](const runtime::TaskStatus& s) { return V(s.counters.in); });
    per_task("flowctl_task_documents_out_total", "counter",
             "Documents a derivation published, or rows a materialization stored.",
             [](const runtime::TaskStatus& s) { return V(s.counters.out); });
    per_task(
        "flowctl_task_dead_letters_total", "counter",
        "Documents or keys a task sent to its dead-letter collections (deadLetters).",
        [](const runtime::TaskStatus& s) { return s.kind == runtime::TaskKind::kCapture ? std::nullopt : V(s.counters.dead_letters); });
    per_task("flowctl_task_read_bytes", "gauge", "Bytes of its source journals a task has read (its position).",
             [](const runtime::TaskStatus& s) { return V(s.progress.read); });
    per_task("flowctl_task_bytes_out_total", "counter", "Bytes of the documents a derivation published.",
             [](const runtime::TaskStatus& s) { return s.kind == runtime::TaskKind::kDerivation ? V(s.counters.bytes_out) : std::nullopt; });
    per_task("flowctl_task_lag_bytes", "gauge", "Committed source bytes a task has not read yet.",
             [](const runtime::TaskStatus& s) { return V(s.progress.total - s.progress.read); });
    per_task("flowctl_task_up", "gauge", "Whether a task runs (0: halted or waiting to retry).",
             [](const runtime::TaskStatus& s) { return V(s.state == runtime::TaskState::kRunning || s.state == runtime::TaskState::kBackFilling ? 1 : 0); });
    m += "# HELP flowctl_ingest_commit_seconds Time to validate and commit one ingest request.\n"
         "# TYPE flowctl_ingest_commit_seconds histogram\n";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < std::size(kBuckets); ++i) {
      cumulative += buckets[i];
      m += fmt::format("flowctl_ingest_commit_seconds_bucket{{le=\"{}\"}} {}\n", kBuckets[i], cumulative);
    }
    m += fmt::format("flowctl_ingest_commit_seconds_bucket{{le=\"+Inf\"}} {}\n", latency_count);
    m += fmt::format("flowctl_ingest_commit_seconds_sum {}\nflowctl_ingest_commit_seconds_count {}\n", latency_sum,
                     latency_count);
    m += fmt::format("# TYPE flowctl_ingest_requests_total counter\nflowctl_ingest_requests_total {}\n",
                     service.requests());
    service.SetMetrics(std::move(m));
  };
  auto status_lines = [&](bool table) {
    std::vector<std::string> lines;
    auto status = pipeline.Status();
    uint64_t ingested = 0;
    for (const auto& [_, n] : service.counters()) ingested += n.documents;
    if (table) {
      lines.push_back(fmt::format("flowctl develop on {} — {} requests, {} documents ingested", url, service.requests(),
                                  ingested));
      lines.push_back(fmt::format("  {:<16} {:<40} {:<14} {:>10} {:>10} {:>12}", "KIND", "TASK", "STATE", "IN", "OUT",
                                  "LAG"));
    }
    for (const auto& s : status) {
      uint64_t lag = s.progress.total - s.progress.read;
      std::string lag_text = s.kind == runtime::TaskKind::kCapture ? "-" : HumanBytes(lag);
      if (s.state == runtime::TaskState::kBackFilling && s.progress.total > 0) {
        lag_text += fmt::format(" ({:.0f}%)", 100.0 * s.progress.read / s.progress.total);
      }
      if (table) {
        lines.push_back(fmt::format("  {:<16} {:<40} {:<14} {:>10} {:>10} {:>12}", runtime::ToString(s.kind), Truncate(s.name, 40), StateText(s),
                                    s.counters.in, s.counters.out, lag_text));
      } else {
        lines.push_back(fmt::format("status: {} `{}` {} in={} out={} lag={}", runtime::ToString(s.kind), s.name, StateText(s), s.counters.in, s.counters.out,
                                    lag_text));
      }
    }
    if (!table) {
      lines.push_back(fmt::format("status: ingest requests={} documents={}", service.requests(), ingested));
    }
    return lines;
  };

  auto last_metrics = Clock::now() - std::chrono::seconds(10);
  auto last_status = Clock::now();
  int exit_code = kExitOk;
  while (!g_stop) {
    bool progress = false;
    auto drained = service.Drain();
    if (!drained) {
      log(fmt::format("error: {}", drained.error().message));
      exit_code = kExitEnvironment;
      break;
    }
    progress = drained.value() > 0;
    auto round = pipeline.Step();
    if (!round) {
      exit_code = kExitEnvironment;
      break;
    }
    progress = progress || round->progress;

    auto now = Clock::now();
    if (now - last_metrics >= std::chrono::milliseconds(500)) {
      last_metrics = now;
      render_metrics();
      if (view.terminal()) view.Draw(status_lines(true));
    }
    if (!view.terminal() && now - last_status >= std::chrono::duration<double>(o.status_interval)) {
      last_status = now;
      for (const auto& l : status_lines(false)) PrintLine(l);
    }
    if (!o.no_watch && now - last_watch >= std::chrono::milliseconds(300)) {
      last_watch = now;
      bool differs = false;
      for (const auto& [f, s] : watched) differs = differs || !(StampOf(f) == s);
      if (differs && !changed) {
        changed = true;
        changed_at = now;
      }
      // Let an editor finish writing (a save may be several writes) before rebuilding.
      if (changed && now - changed_at >= std::chrono::milliseconds(200)) {
        changed = false;
        for (auto& [f, s] : watched) s = StampOf(f);
        reload();
      }
    }
    if (progress) continue;
    auto persisted = store->PersistDue(std::time(nullptr));
    if (!persisted) {
      log(fmt::format("error: {}", persisted.error().message));
      exit_code = persisted.error().ExitCode();
      break;
    }
    service.Wait(round->waiting ? std::chrono::milliseconds(100) : std::chrono::milliseconds(50));
  }
  view.Clear();
  service.SetReady(false);
  server.value()->Stop();
  std::remove(DevelopFile(o.data_dir).c_str());
  auto persisted = store->PersistAll();
  if (!persisted) {
    PrintError(persisted.error().message);
    return persisted.error().ExitCode();
  }
  for (const auto& l : status_lines(false)) PrintLine(l);
  PrintLine(g_stop ? "stopped; spools persisted" : "error: stopped by an error");
  return exit_code;
}

Command RegisterDevelop(CLI::App& app) {
  struct Flags {
    DevelopOptions o;
    std::string max_body = "64MiB";  // parsed into o.max_body when the command runs
  };
  auto f = std::make_shared<Flags>();
  DevelopOptions& o = f->o;
  auto* cmd = app.add_subcommand(
      "develop",
      "Run the pipeline continuously with the ingestion API, file-drop captures and live reload");
  AddCatalogOptions(*cmd, o.catalog);
  AddDataDirOption(*cmd, o.data_dir);
  cmd->add_option("--port", o.port, "Port of the ingestion API (0: any free port)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--host", o.host, "Address to listen on (loopback by default)")
      ->capture_default_str();
  cmd->add_flag("--no-watch", o.no_watch, "Do not rebuild when the catalog's sources change");
  cmd->add_option("--materialization", o.materializations,
                  "Run only this materialization of the catalog (repeatable; default: all)");
  cmd->add_option("--status-interval", o.status_interval,
                  "Seconds between status lines when stderr is not a terminal")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--request-timeout", o.request_timeout,
                  "Seconds a client has to send a request's headers and body (slow or idle "
                  "clients are cut off), and the keep-alive idle limit")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-body", f->max_body, "Largest ingest request body")->capture_default_str();
  cmd->add_option("--allow-origin", o.allow_origins,
                  "Let web pages of this origin (e.g. http://localhost:3000) call the API from a "
                  "browser (repeatable; by default browsers are refused, see docs/security.md)");
  cmd->footer(
      "Serves PUT/POST /ingest, WebSocket /ingest/<collection> (json/v1, csv/v1, tsv/v1), "
      "/healthz and /metrics (see docs/reference/ingestion-api.md); ingests files dropped into "
      "the catalog's fileDrop captures; runs every derivation and materialization continuously; "
      "and rebuilds when a source file changes: a catalog with errors is reported and the "
      "previous one keeps running, a good one is applied without losing data (unchanged tasks "
      "keep their state, changed ones restart from their checkpoints, new ones back-fill). The "
      "listening URL is written to <data-dir>/develop.json, where `flowctl materialize` and "
      "`flowctl ingest --url` find it. SIGINT/SIGTERM persist spools and exit 0.\n"
      "Browser safety: requests must be addressed to a loopback name or address or the --host "
      "(DNS rebinding), a request from a web page of another origin is refused unless "
      "--allow-origin lists it, and JSON endpoints require Content-Type: application/json (see "
      "docs/security.md).\n"
      "Exit status: 0 stopped by a signal, 1 the catalog has errors at start, 2 usage error, 3 "
      "an environment problem (port in use, data directory locked, the store failed).");
  return {cmd, [f](const GlobalOptions& g) -> int {
            auto bytes = ParseByteSize(f->max_body);
            if (!bytes || *bytes == 0) {
              PrintError(fmt::format("--max-body `{}` is not a size such as 64MiB", f->max_body));
              return kExitUsage;
            }
            f->o.max_body = *bytes;
            return RunDevelop(g, f->o);
          }};
}

}  // namespace flow::cli
