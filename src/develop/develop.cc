#include "develop/develop.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <ctime>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <rapidjson/document.h>

#include "base/strings.h"
#include "develop/build.h"
#include "develop/control.h"
#include "develop/ingest_service.h"
#include "develop/metrics.h"
#include "develop/watcher.h"
#include "lambda/lambda.h"
#include "runtime/parallel.h"
#include "store/journal.h"
#include "store/lock.h"

namespace flow::develop {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};
// Lambdas give up too, so that a lambda that never returns cannot hold the process.
void OnSignal(int) {
  g_stop = true;
  lambda::RequestStop();
}

// One run of develop: the pipeline thread's state and loop.
class Session {
 public:
  Session(const Options& o, const Hooks& h) : o_(o), h_(h), builder_(h.load, h.log) {}

  // Builds the catalog, opens the data directory and starts the tasks and the server.
  // Returns an exit code when it cannot.
  std::optional<int> Start();
  // Runs until a signal or a failure; returns the exit code.
  int Loop();
  // Stops the server and persists the spools.
  int Stop(int exit_code);

 private:
  std::optional<int> OpenStore();
  std::optional<int> StartServer();
  // Rebuilds and applies the catalog; false when it could not (the previous one runs on).
  bool Reload();
  void RenderMetrics();
  Status Snapshot() const;

  const Options& o_;
  const Hooks& h_;
  Builder builder_;
  Built current_;
  std::unique_ptr<store::DataDirLock> lock_;
  std::unique_ptr<store::Store> store_;
  runtime::Stamper stamper_;
  std::unique_ptr<runtime::Supervisor> tasks_;
  std::unique_ptr<IngestService> service_;
  std::unique_ptr<server::Server> server_;
  std::string url_;
  CommitHistogram latencies_;
};

std::optional<int> Session::Start() {
  int code = 0;
  auto first = builder_.Build("; nothing was started", &code);
  if (!first) return code;
  current_ = std::move(*first);
  if (auto failed = OpenStore()) return failed;

  runtime::Supervisor::Options po;
  po.log = h_.log;
  po.materializations = o_.materializations;
  po.backfill_changed = o_.backfill_changed;
  po.threads = static_cast<int>(o_.threads ? o_.threads : runtime::DefaultThreads());
  tasks_ = std::make_unique<runtime::Supervisor>(store_.get(), &stamper_, po);
  auto backfill = runtime::BackfillOf(*current_.plan, o_.backfill);
  if (!backfill) {
    h_.error(backfill.error().message);
    return backfill.error().ExitCode();
  }
  if (auto applied = tasks_->Apply(current_.plan, current_.fingerprints, *backfill); !applied) {
    h_.error(applied.error().message);
    return applied.error().ExitCode();
  }
  return StartServer();
}

std::optional<int> Session::OpenStore() {
  auto lock = store::DataDirLock::Acquire(o_.data_dir);
  if (!lock) {
    h_.error(lock.error().message);
    return lock.error().ExitCode();
  }
  lock_ = std::move(lock.value());
  auto store = store::Store::Open(o_.data_dir);
  if (!store) {
    h_.error(store.error().message);
    return store.error().ExitCode();
  }
  store_ = std::move(store.value());
  return std::nullopt;
}

// The ingestion API, and `flowctl materialize` into this develop.
std::optional<int> Session::StartServer() {
  server::Options so;
  so.host = o_.host;
  so.port = o_.port;
  so.max_body = o_.max_body;
  so.request_timeout = o_.request_timeout;
  so.allow_origins = o_.allow_origins;
  auto control = [this](const std::string& method, const std::string& target,
                        const std::string& body) {
    return HandleControl(method, target, body, *current_.source, tasks_.get(), h_.log);
  };
  service_ =
      std::make_unique<IngestService>(store_.get(), &stamper_, so.stream_pending_limit, control);
  service_->SetPlan(current_.plan);
  auto server = server::Server::Start(so, service_.get());
  if (!server) {
    h_.error(server.error().message);
    return server.error().ExitCode();
  }
  server_ = std::move(server.value());
  url_ = fmt::format("http://{}:{}",
                     o_.host.find(':') != std::string::npos ? "[" + o_.host + "]" : o_.host,
                     server_->port());
  {
    std::ofstream out(DevelopFile(o_.data_dir), std::ios::trunc);
    out << fmt::format("{{\"url\":{},\"pid\":{}}}\n", JsonQuote(url_), ::getpid());
  }
  service_->SetReady(true);
  h_.log(fmt::format("flowctl develop: ingestion API on {} (data in {}){}; Ctrl-C stops", url_,
                     o_.data_dir, o_.no_watch ? "" : "; watching the catalog's sources"));
  return std::nullopt;
}

bool Session::Reload() {
  h_.log("catalog sources changed: rebuilding");
  int rc = 0;
  auto next = builder_.Build("; still running the previous catalog", &rc);
  if (!next) return false;
  auto applied = tasks_->Apply(next->plan, next->fingerprints);
  if (!applied) {
    h_.log(fmt::format("error: {}; still running the previous catalog", applied.error().message));
    return false;
  }
  service_->SetPlan(next->plan);
  std::string summary =
      ReloadSummary(current_.fingerprints, next->fingerprints, tasks_->backfilled());
  current_ = std::move(*next);
  h_.log(summary);
  return true;
}

void Session::RenderMetrics() {
  for (uint64_t us : service_->commit_latencies()) latencies_.Add(us);
  service_->commit_latencies().clear();
  MetricsInput in;
  in.ingested = &service_->counters();
  const auto& committed = store_->committed();
  for (const auto& [name, _] : current_.plan->collections) {
    uint64_t bytes = 0;
    for (const auto& j : store::CollectionJournals(committed, name)) bytes += committed.heads.at(j);
    in.collection_bytes[name] = bytes;
  }
  in.tasks = tasks_->Status();
  in.latencies = &latencies_;
  in.requests = service_->requests();
  service_->SetMetrics(develop::RenderMetrics(in));
}

Status Session::Snapshot() const {
  Status s;
  s.url = url_;
  s.requests = service_->requests();
  for (const auto& [_, n] : service_->counters()) s.documents += n.documents;
  s.tasks = tasks_->Status();
  return s;
}

int Session::Loop() {
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);
  SourceWatcher watcher;
  watcher.Watch(current_.files);
  auto last_metrics = Clock::now() - std::chrono::seconds(10);
  auto last_status = Clock::now();
  while (!g_stop) {
    auto drained = service_->Drain();
    if (!drained) {
      h_.log(fmt::format("error: {}", drained.error().message));
      return kExitEnvironment;
    }
    auto round = tasks_->Step();
    if (!round) return kExitEnvironment;
    bool progress = drained.value() > 0 || round->progress;

    auto now = Clock::now();
    if (now - last_metrics >= std::chrono::milliseconds(500)) {
      last_metrics = now;
      RenderMetrics();
      if (o_.redraw) h_.status(Snapshot());
    }
    if (!o_.redraw && now - last_status >= std::chrono::duration<double>(o_.status_interval)) {
      last_status = now;
      h_.status(Snapshot());
    }
    if (!o_.no_watch && watcher.Poll(now) && Reload()) watcher.Watch(current_.files);
    if (progress) continue;
    auto persisted = store_->PersistDue(std::time(nullptr));
    if (!persisted) {
      h_.log(fmt::format("error: {}", persisted.error().message));
      return persisted.error().ExitCode();
    }
    // A derivation computing on its own thread is published as soon as it is done.
    service_->Wait(round->busy      ? std::chrono::milliseconds(1)
                   : round->waiting ? std::chrono::milliseconds(100)
                                    : std::chrono::milliseconds(50));
  }
  return kExitOk;
}

int Session::Stop(int exit_code) {
  service_->SetReady(false);
  server_->Stop();
  std::remove(DevelopFile(o_.data_dir).c_str());
  auto persisted = store_->PersistAll();
  if (!persisted) {
    h_.error(persisted.error().message);
    return persisted.error().ExitCode();
  }
  h_.stopped(Snapshot());
  h_.log(g_stop ? "stopped; spools persisted" : "error: stopped by an error");
  return exit_code;
}

}  // namespace

int Run(const Options& options, const Hooks& hooks) {
  Session session(options, hooks);
  if (auto failed = session.Start()) return *failed;
  int code = session.Loop();
  return session.Stop(code);
}

std::string DevelopFile(const std::string& data_dir) { return data_dir + "/develop.json"; }

std::string RunningDevelopUrl(const std::string& data_dir) {
  std::ifstream in(DevelopFile(data_dir));
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  rapidjson::Document d;
  std::string text = ss.str();
  d.Parse(text.data(), text.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("url") || !d["url"].IsString() ||
      !d.HasMember("pid") || !d["pid"].IsInt64()) {
    return "";
  }
  pid_t pid = static_cast<pid_t>(d["pid"].GetInt64());
  if (pid <= 0 || (::kill(pid, 0) != 0 && errno != EPERM)) return "";
  return d["url"].GetString();
}

}  // namespace flow::develop
