#include "lambda/node.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>

#include <fmt/format.h>

#include "lambda/node/cache.h"
#include "lambda/node/module.h"
#include "lambda/node/npm.h"
#include "lambda/node/process.h"
#include "lambda/node/protocol.h"

namespace flow::lambda {
namespace {

// For the worker to load the module and the dependencies (not a lambda: no lambdaTimeout).
constexpr auto kStartTimeout = std::chrono::seconds(60);
// The longest wait for the worker without checking for a stop request (lambda::RequestStop).
constexpr auto kStopCheck = std::chrono::milliseconds(100);
using Clock = std::chrono::steady_clock;

}  // namespace

// ---- The worker ----------------------------------------------------------------------

struct NodeWorker::Impl {
  std::mutex mu;
  node::Child child;
  node::Connection connection;
  std::string dead;  // why the worker is gone, once it is
  // How to start the worker (again, after a timeout or a stop killed it: its pid is then -1
  // and `dead` empty).
  std::string node_path;
  std::vector<std::string> args, env;
  int output_fd = -1;  // NodeOptions::output_fd
  std::vector<NodeLambdaSpec> lambdas;
  std::vector<size_t> arity;  // of each lambda's rows: 1 (source), 2 (+ register) or 3 (+ previous)
  node::Module module;

  ~Impl() { Stop(); }

  void Stop() {
    connection.Close();
    child.Kill();
  }

  // Kills the worker in the middle of a request (it timed out, or flowctl is stopping) and
  // forgets what was in flight: the next invocation starts a new worker.
  void Kill() {
    Stop();
    connection.Reset();
    child.ClearOutput();
  }

  // Starts the worker and waits until it has loaded the module (the status 1 error of a
  // module that does not load is a user error).
  Result<bool> Launch() {
    int theirs = -1;
    if (auto opened = connection.Open(&theirs); !opened.ok()) return opened.error();
    auto started = child.Start(node_path, args, env, theirs, output_fd);
    close(theirs);
    if (!started.ok()) {
      Stop();
      return started.error();
    }

    // The first response says whether the module and the dependencies loaded.
    auto size = NextFrame("while starting", Clock::now() + kStartTimeout);
    if (!size.ok()) return size.error();
    if (*size == 0) {
      return Error::Env(
          fmt::format("the Node.js worker of the nodeJS lambdas did not start within {} s",
                      kStartTimeout.count()));
    }
    if (connection.Status() != 0) {
      char saved;
      auto error = node::ParseWorkerError(connection.Payload(*size, &saved));
      std::string message = error && error->message ? *error->message : "unknown";
      Kill();
      return Error::User(fmt::format("the nodeJS lambdas cannot be loaded: {}", message));
    }
    connection.ConsumeFrame(*size);
    return true;
  }

  // The worker is gone or unusable: reaps it and returns (and remembers) why.
  Error Died(std::string_view doing, std::string_view what = "") {
    connection.Close();
    std::string how = "its connection broke";
    if (child.pid() > 0) {
      // Give it a moment to finish dying by itself, so that its own exit status is reported.
      std::optional<int> status = child.Reap();
      how = status ? node::ExitDescription(*status) : "it stopped answering and was killed";
    }
    child.DrainOutput(true);
    std::string msg = fmt::format("the Node.js worker of the nodeJS lambdas died {} ({}{})", doing,
                                  how, what.empty() ? "" : fmt::format("; {}", what));
    std::string tail = child.OutputTail();
    if (!tail.empty()) msg += fmt::format("; its last output:\n{}", tail);
    dead = msg;
    return Error::Env(msg);
  }

  // Moves requests and responses on the socket, and when neither moved and no frame is
  // complete, waits for the socket (and drains the worker's output). Past `deadline`, kills
  // the worker and returns false; on a stop request, kills it and returns StoppedError.
  Result<bool> Pump(std::string_view doing, Clock::time_point deadline) {
    auto io = connection.Transfer();
    if (io == node::Connection::Io::kBroken) return Died(doing);
    bool bad = false;
    if (io == node::Connection::Io::kMoved || connection.FrameReady(&bad) || bad) return true;
    if (StopRequested()) {
      Kill();
      return StoppedError();
    }
    auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) {
      Kill();
      return false;
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::min<Clock::duration>(left, kStopCheck));
    int output = child.output_fd();
    pollfd fds[2] = {
        {connection.fd(), static_cast<short>(POLLIN | (connection.WantsWrite() ? POLLOUT : 0)), 0},
        {output, POLLIN, 0}};
    if (poll(fds, output >= 0 ? 2 : 1, static_cast<int>(wait.count()) + 1) < 0 && errno != EINTR) {
      return Died(doing, fmt::format("poll: {}", std::strerror(errno)));
    }
    if (output >= 0 && fds[1].revents) child.DrainOutput(false);
    return true;
  }

  // Waits for the complete frame at the front of the connection; returns its size, or 0 when
  // `deadline` passed first (the worker is then killed).
  Result<size_t> NextFrame(std::string_view doing, Clock::time_point deadline) {
    for (;;) {
      bool bad = false;
      if (size_t size = connection.FrameReady(&bad)) return size;
      if (bad) return Died(doing, "it sent a malformed response");
      auto ok = Pump(doing, deadline);
      if (!ok.ok()) return ok.error();
      if (!*ok) return size_t{0};
    }
  }

  // The error of a status 1 response (JSON `payload`) about the rows from `first_row` on.
  Error LambdaError(std::string_view payload, size_t index, size_t first_row, int* failed_row) {
    auto e = node::ParseWorkerError(payload);
    if (!e) {
      return Error::Internal(
          fmt::format("the Node.js worker sent a malformed error: {}", node::Tail(payload, 500)));
    }
    if (failed_row) {
      *failed_row = e->row >= 0 && first_row + static_cast<uint64_t>(e->row) <= INT32_MAX
                        ? static_cast<int>(first_row + static_cast<uint64_t>(e->row))
                        : -1;
    }
    std::string message = e->message.value_or("");
    const NodeLambdaSpec& l = lambdas[index];
    if (e->kind == "notArray") {
      return Error::User(fmt::format("{} returned {}, not an array", node::Label(l), message));
    }
    if (e->kind == "unserializable") {
      return Error::User(
          fmt::format("{} returned output that is not JSON: {}", node::Label(l), message));
    }
    std::string where;
    if (e->line > 0) {
      int i = node::BodyOf(module, static_cast<uint32_t>(e->line));
      if (i >= 0) {
        std::string pos = node::BodyPosition(
            module, lambdas, static_cast<size_t>(i), static_cast<uint32_t>(e->line),
            static_cast<uint32_t>(std::max<int64_t>(e->column, 0)), true);
        where =
            static_cast<size_t>(i) == index
                ? fmt::format(" ({})", pos)
                : fmt::format(" (in {}: {})", node::Label(lambdas[static_cast<size_t>(i)]), pos);
      }
    }
    return Error::User(fmt::format("{} threw: {}{}", node::Label(l), message, where));
  }
};

NodeWorker::NodeWorker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NodeWorker::~NodeWorker() = default;

pid_t NodeWorker::pid() const { return impl_->child.pid(); }

Result<bool> PrepareNodeLambdas(const std::vector<NodeLambdaSpec>& lambdas,
                                const NodeOptions& options) {
  auto esbuild = node::EsbuildOf(options);
  if (!esbuild.ok()) return esbuild.error();
  std::string cache_dir = options.cache_dir.empty() ? DefaultNodeCacheDir() : options.cache_dir;
  std::string ts_name;
  auto js = node::Transpile(node::Generate(lambdas), lambdas, *esbuild, cache_dir, &ts_name);
  if (!js.ok()) return js.error();
  if (!options.dependencies.empty()) {
    auto dir = node::InstallDependencies(options.dependencies, options.npm, cache_dir);
    if (!dir.ok()) return dir.error();
  }
  return true;
}

Result<std::shared_ptr<NodeWorker>> NodeWorker::Start(const std::vector<NodeLambdaSpec>& lambdas,
                                                      const NodeOptions& options) {
  for (size_t i = 0; i < lambdas.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (lambdas[i].id == lambdas[j].id) {
        return Error::Internal(fmt::format("two nodeJS lambdas have the id `{}`", lambdas[i].id));
      }
    }
  }
  auto node_path = node::FindProgram(options.node);
  if (!node_path) {
    return Error::Env(
        fmt::format("Node.js (`{}`) is not installed; install it (e.g. apt install nodejs) to run "
                    "nodeJS lambdas",
                    options.node));
  }
  std::string cache_dir = options.cache_dir.empty() ? DefaultNodeCacheDir() : options.cache_dir;
  auto esbuild = node::EsbuildOf(options);
  if (!esbuild.ok()) return esbuild.error();

  auto impl = std::make_unique<Impl>();
  impl->lambdas = lambdas;
  for (const auto& l : lambdas) impl->arity.push_back(node::Arity(l));
  impl->module = node::Generate(lambdas);
  node::WorkerConfig config;
  auto js = node::Transpile(impl->module, lambdas, *esbuild, cache_dir, &config.source);
  if (!js.ok()) return js.error();
  config.module = *js;
  config.count = lambdas.size();
  for (size_t i = 0; i < lambdas.size(); ++i) {
    if (lambdas[i].bootstrap) config.bootstraps.push_back(i);
  }
  if (!options.dependencies.empty()) {
    auto dir = node::InstallDependencies(options.dependencies, options.npm, cache_dir);
    if (!dir.ok()) return dir.error();
    config.deps_dir = *dir;
  }
  for (const auto& [name, version] : options.dependencies) {
    config.deps.emplace_back(name, NodeGlobalName(name));
  }

  std::string modules_path = config.deps_dir.empty() ? "" : config.deps_dir + "/node_modules";
  if (const char* existing = std::getenv("NODE_PATH"); existing && existing[0]) {
    modules_path = modules_path.empty() ? existing : modules_path + ":" + existing;
  }
  impl->node_path = *node_path;
  impl->output_fd = options.output_fd;
  impl->args = {"--enable-source-maps", "-e", node::kWorkerScript, node::EncodeConfig(config)};
  impl->env = node::ChildEnv(modules_path.empty() ? "" : "NODE_PATH", modules_path);
  if (auto launched = impl->Launch(); !launched.ok()) return launched.error();
  return std::shared_ptr<NodeWorker>(new NodeWorker(std::move(impl)));
}

// ---- The lambdas ---------------------------------------------------------------------

class NodeLambda final : public Lambda {
 public:
  NodeLambda(std::shared_ptr<NodeWorker> worker, size_t index)
      : worker_(std::move(worker)), index_(index) {}

  // Every error carries the lambda's identity (node::Label) in its context.
  Result<bool> Invoke(const std::vector<Row>& rows, doc::Allocator& alloc, Outputs* out,
                      int* failed_row) override {
    out->clear();
    out->reserve(rows.size());
    size_t next = 0;
    auto r = Run(
        [&](Row* row) {
          if (next == rows.size()) return false;
          *row = rows[next++];
          return true;
        },
        alloc,
        [&](size_t, std::vector<doc::Value>& docs) -> Result<bool> {
          out->push_back(std::move(docs));
          return true;
        },
        failed_row);
    if (!r) out->clear();
    return r;
  }

  Reads reads() const override {
    size_t arity = worker_->impl_->arity[index_];
    return {false, arity > 1, arity > 2, true};
  }

  Result<bool> Stream(const NextRow& next, doc::Allocator& alloc, const TakeOutputs& take,
                      int* failed_row) override {
    return Run(next, alloc, take, failed_row);
  }

 private:
  // Rows go in requests of at most about kChunkBytes of JSON, up to kInFlight requests ahead
  // of the responses: the worker runs one while the next is written (its rows read by the
  // caller) and the previous one's outputs parsed and taken, and no JSON text is large
  // enough for V8's large-object space. An error of `take` is returned as is; the others
  // carry the lambda's identity.
  Result<bool> Run(const NextRow& next, doc::Allocator& alloc, const TakeOutputs& take,
                   int* failed_row) {
    if (failed_row) *failed_row = -1;
    bool taken_failed = false;
    auto r = Exchange(next, alloc, take, failed_row, &taken_failed);
    if (r || taken_failed) return r;
    return Error(r.error()).About(node::Label(worker_->impl_->lambdas[index_]));
  }

  Result<bool> Exchange(const NextRow& next, doc::Allocator& alloc, const TakeOutputs& take,
                        int* failed_row, bool* taken_failed) {
    NodeWorker::Impl& w = *worker_->impl_;
    std::lock_guard lock(w.mu);
    const NodeLambdaSpec& spec = w.lambdas[index_];
    bool started = false;  // whether a row was asked for (an empty invocation needs no worker)
    Chunk in_flight[node::kInFlight];
    size_t head = 0, queued = 0;  // a ring of the chunks sent and not answered
    size_t sent = 0;              // rows sent
    bool more = true;             // `next` may give more rows
    std::optional<Error> failure;
    Outputs outputs;  // of one response
    while (more || queued) {
      while (!failure && more && queued < node::kInFlight) {
        if (!started) {
          // Only once there is a row: an empty invocation needs no worker.
          Row first;
          if (!next(&first)) {
            more = false;
            break;
          }
          started = true;
          if (!w.dead.empty()) return Error::Env(w.dead);
          if (StopRequested()) return StoppedError();
          if (w.child.pid() < 0) {  // killed by a timeout or a stop: start it again
            if (auto launched = w.Launch(); !launched.ok()) return launched.error();
          }
          bool given = false, too_large = false;
          size_t count = w.connection.AppendRequest(
              static_cast<uint32_t>(index_), w.arity[index_],
              [&](Row* row) {
                if (!given) {
                  given = true;
                  *row = first;
                  return true;
                }
                return more = next(row);
              },
              &too_large);
          if (!Appended(spec, count, too_large, &sent, &more, &failure, in_flight, head, &queued))
            break;
          continue;
        }
        bool too_large = false;
        size_t count = w.connection.AppendRequest(
            static_cast<uint32_t>(index_), w.arity[index_],
            [&](Row* row) { return more = next(row); }, &too_large);
        if (!Appended(spec, count, too_large, &sent, &more, &failure, in_flight, head, &queued))
          break;
      }
      if (!queued) break;
      // The worker answers chunks one after the other: each gets the whole timeout.
      auto size = w.NextFrame(fmt::format("while running the {}", node::Label(spec)),
                              Clock::now() + spec.timeout);
      if (!size.ok()) return size.error();
      if (*size == 0) return TimedOut(spec, in_flight[head], failed_row);
      Chunk chunk = in_flight[head];
      head = (head + 1) % node::kInFlight;
      --queued;
      if (!failure) {
        outputs.clear();
        outputs.resize(chunk.count);
        failure = Accept(w, *size, chunk.first, chunk.count, alloc, &outputs, failed_row);
        for (size_t k = 0; !failure && k < chunk.count; ++k) {
          auto t = take(chunk.first + k, outputs[k]);
          if (!t) {
            failure = t.error();
            *taken_failed = true;
          }
        }
      }
      w.connection.ConsumeFrame(*size);
      if (!w.dead.empty()) return Error::Env(w.dead);
    }
    if (failure) return *failure;
    return true;
  }

  // Rows [first, first + count) of an invocation, sent as one request.
  struct Chunk {
    size_t first, count;
  };

  // Records a request of `count` rows just appended (none: `next` had no more); false when
  // no more requests are to be sent.
  bool Appended(const NodeLambdaSpec& spec, size_t count, bool too_large, size_t* sent, bool* more,
                std::optional<Error>* failure, Chunk* in_flight, size_t head, size_t* queued) {
    if (too_large) {
      *failure = Error::User(fmt::format("a document for the {} is over {} MiB of JSON",
                                         node::Label(spec), node::kMaxFrame >> 20));
      return false;
    }
    if (count == 0) {
      *more = false;
      return false;
    }
    in_flight[(head + (*queued)++) % node::kInFlight] = {*sent, count};
    *sent += count;
    return true;
  }

  // The error of the lambda not answering `stuck` within its timeout.
  static Error TimedOut(const NodeLambdaSpec& spec, const Chunk& stuck, int* failed_row) {
    if (failed_row) *failed_row = stuck.first <= INT32_MAX ? static_cast<int>(stuck.first) : -1;
    return Error::User(fmt::format(
        "{} did not {} within {} (the lambda timeout; set `lambdaTimeout` to allow longer){}; its "
        "Node.js worker was killed and starts again on the next attempt",
        node::Label(spec), spec.bootstrap ? "finish" : "return", DescribeTimeout(spec.timeout),
        stuck.count > 1
            ? fmt::format(", running a group of {} documents starting with this one", stuck.count)
            : ""));
  }

  // Takes the outputs of rows [first, first + count) from the response frame of `size`
  // bytes into (*out)[0, count), or returns its error.
  std::optional<Error> Accept(NodeWorker::Impl& w, size_t size, size_t first, size_t count,
                              doc::Allocator& alloc, Outputs* out, int* failed_row) {
    const NodeLambdaSpec& spec = w.lambdas[index_];
    char saved;
    std::string_view payload = w.connection.Payload(size, &saved);
    std::optional<Error> error;
    if (w.connection.Status() != 0) {
      error = w.LambdaError(payload, index_, first, failed_row);
    } else {
      std::string parse_error;
      switch (node::DecodeOutputs(payload, count, 0, alloc, out, &parse_error)) {
        case node::Decoded::kOk:
          break;
        case node::Decoded::kNotJson:
          error = Error::User(fmt::format("{} returned output flowctl cannot accept: {}",
                                          node::Label(spec), parse_error));
          break;
        case node::Decoded::kMismatch:
          error = w.Died(fmt::format("while running the {}", node::Label(spec)),
                         "its response does not match the request");
          break;
      }
    }
    w.connection.Restore(size, saved);
    return error;
  }

  std::shared_ptr<NodeWorker> worker_;
  size_t index_;
};

std::unique_ptr<Lambda> NodeWorker::Get(const std::string& id) {
  for (size_t i = 0; i < impl_->lambdas.size(); ++i) {
    if (impl_->lambdas[i].id == id) return std::make_unique<NodeLambda>(shared_from_this(), i);
  }
  return nullptr;
}

}  // namespace flow::lambda
