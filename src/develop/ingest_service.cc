#include "develop/ingest_service.h"

#include <limits>
#include <optional>

#include <fmt/format.h>

#include "base/strings.h"
#include "doc/parse.h"
#include "runtime/feed.h"

namespace flow::develop {
namespace {

using Clock = std::chrono::steady_clock;

// "did you mean `x`?" for a collection `plan` lacks, or "".
std::string CollectionHint(const runtime::Plan* plan, const std::string& name) {
  std::vector<std::string> names;
  if (plan) {
    for (const auto& [n, _] : plan->collections) names.push_back(n);
  }
  return DidYouMean(name, names);
}

}  // namespace

server::Response ErrorResponse(int status, const std::string& message, const std::string& extra) {
  return {status, fmt::format("{{\"error\":{}{}}}\n", JsonQuote(message), extra)};
}

class IngestService::Stream : public server::StreamSink, public std::enable_shared_from_this<Stream> {
 public:
  Stream(IngestService* service, std::shared_ptr<const runtime::Collection> collection, runtime::IngestFormat format,
         std::shared_ptr<server::StreamPeer> peer)
      : service_(service), collection_(collection), feed_(format, collection), peer_(std::move(peer)) {}

  uint64_t Push(std::string message) override {
    std::lock_guard lock(service_->mu_);
    if (closed_ || failed_) return 0;
    pending_bytes_ += message.size();
    frames_.push_back(std::move(message));
    if (!queued_) {
      queued_ = true;
      service_->ready_streams_.push_back(shared_from_this());
    }
    service_->work_ = true;
    service_->cv_.notify_one();
    return pending_bytes_;
  }

  void Closed() override {
    std::lock_guard lock(service_->mu_);
    closed_ = true;
    frames_.clear();  // received, but not yet in a transaction: never written
    pending_bytes_ = 0;
  }

 private:
  friend class IngestService;
  IngestService* service_;
  // Guarded by the service's mutex.
  std::deque<std::string> frames_;
  uint64_t pending_bytes_ = 0;
  bool queued_ = false, closed_ = false, failed_ = false;
  // Pipeline thread only.
  std::shared_ptr<const runtime::Collection> collection_;
  runtime::DocumentFeed feed_;
  std::shared_ptr<server::StreamPeer> peer_;
  uint64_t processed_ = 0;
};

IngestService::IngestService(store::Store* store, runtime::Stamper* stamper, uint64_t stream_pending_limit,
                             ControlHandler control)
    : store_(store), stamper_(stamper), pending_limit_(stream_pending_limit), control_(std::move(control)) {}

IngestService::~IngestService() = default;

void IngestService::SetPlan(std::shared_ptr<const runtime::Plan> plan) {
  std::lock_guard lock(mu_);
  plan_ = std::move(plan);
}

void IngestService::SetMetrics(std::string text) {
  std::lock_guard lock(mu_);
  metrics_ = std::move(text);
}

void IngestService::SetReady(bool ready) {
  std::lock_guard lock(mu_);
  ready_ = ready;
}

bool IngestService::Ready() {
  std::lock_guard lock(mu_);
  return ready_;
}

std::string IngestService::Metrics() {
  std::lock_guard lock(mu_);
  return metrics_;
}

void IngestService::Wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return work_; });
}

void IngestService::Wake() {
  std::lock_guard lock(mu_);
  work_ = true;
  cv_.notify_one();
}

void IngestService::Ingest(std::string body, server::Respond respond) {
  std::lock_guard lock(mu_);
  requests_queue_.push_back({Request::Kind::kIngest, "", "", std::move(body), std::move(respond)});
  work_ = true;
  cv_.notify_one();
}

void IngestService::Control(const std::string& method, const std::string& target, std::string body,
                            server::Respond respond) {
  std::lock_guard lock(mu_);
  requests_queue_.push_back({Request::Kind::kControl, method, target, std::move(body), std::move(respond)});
  work_ = true;
  cv_.notify_one();
}

// The server's stream formats are the runtime's ingest formats.
static runtime::IngestFormat FeedFormat(server::IngestFormat format) {
  switch (format) {
    case server::IngestFormat::kCsv:
      return runtime::IngestFormat::kCsv;
    case server::IngestFormat::kTsv:
      return runtime::IngestFormat::kTsv;
    case server::IngestFormat::kJson:
      break;
  }
  return runtime::IngestFormat::kJson;
}

std::shared_ptr<server::StreamSink> IngestService::OpenStream(
    const std::string& collection, server::IngestFormat format,
    std::shared_ptr<server::StreamPeer> peer, server::Response* refusal) {
  std::shared_ptr<const runtime::Plan> plan;
  {
    std::lock_guard lock(mu_);
    plan = plan_;
  }
  auto it = plan ? plan->collections.find(collection) : decltype(plan->collections.end()){};
  if (!plan || it == plan->collections.end()) {
    std::string hint = CollectionHint(plan.get(), collection);
    *refusal = ErrorResponse(404, fmt::format("no collection `{}` in the catalog{}", collection,
                                              hint.empty() ? "" : "; " + hint));
    return nullptr;
  }
  if (it->second->derived) {
    *refusal = ErrorResponse(
        400, fmt::format("collection `{}` is derived: its documents come from its derivation and cannot be ingested",
                         collection));
    return nullptr;
  }
  return std::make_shared<Stream>(this, it->second, FeedFormat(format), std::move(peer));
}

Result<uint64_t> IngestService::Drain() {
  std::deque<Request> requests;
  std::vector<std::shared_ptr<Stream>> streams;
  {
    std::lock_guard lock(mu_);
    requests.swap(requests_queue_);
    streams.swap(ready_streams_);
    work_ = false;
  }
  uint64_t documents = 0;
  // Group commit: each request is validated and combined in a transaction of its own (a
  // bad one is answered at once and never reaches the store); then the valid ones are
  // appended and committed together, with one sync, and each is answered with the heads of
  // the journals it wrote.
  struct Valid {
    std::unique_ptr<runtime::IngestTransaction> txn;
    std::map<std::string, uint64_t> counted;
    server::Respond respond;
    Clock::time_point start;
  };
  std::vector<Valid> valid;
  for (auto& r : requests) {
    if (r.kind == Request::Kind::kControl) {
      r.respond(control_ ? control_(r.method, r.target, r.body) : ErrorResponse(404, "not found"));
      continue;
    }
    ++requests_;
    Valid v;
    v.start = Clock::now();
    reduce::CombinerOptions whole;  // a request's rounds never reach the store early
    whole.memory_budget = std::numeric_limits<uint64_t>::max() / 2;
    v.txn = std::make_unique<runtime::IngestTransaction>(store_, stamper_, whole);
    auto refused = Prepare(r.body, v.txn.get(), &v.counted);
    if (refused) {
      r.respond(std::move(*refused));
      continue;
    }
    v.respond = std::move(r.respond);
    valid.push_back(std::move(v));
  }
  if (!valid.empty()) {
    std::vector<runtime::IngestTransaction*> group;
    for (auto& v : valid) group.push_back(v.txn.get());
    auto committed = runtime::CommitGroup(store_, group);
    for (size_t i = 0; i < valid.size(); ++i) {
      auto& v = valid[i];
      if (!committed) {
        v.respond(ErrorResponse(
            500, committed.error().message + "; nothing of this request was written"));
        continue;
      }
      v.respond(
          {200, fmt::format("{{\"Offsets\":{}}}\n", runtime::HeadsJson(committed->written[i]))});
      for (const auto& [name, n] : v.counted) {
        counters_[name].documents += n;
        documents += n;
      }
      latencies_.push_back(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - v.start).count());
    }
    if (store_->failed()) return Error::Env("the data directory failed; see the error above");
  }
  for (auto& s : streams) {
    DrainStream(*s, &documents);
    if (store_->failed()) return Error::Env("the data directory failed; see the error above");
  }
  return documents;
}

std::optional<server::Response> IngestService::Prepare(const std::string& body, runtime::IngestTransaction* txn,
                                                      std::map<std::string, uint64_t>* counted) {
  rapidjson::Document parsed;
  doc::ParseError perr;
  doc::ParseLimits limits;
  limits.max_bytes = body.size() + 1;
  limits.max_depth = 258;  // the body's object and arrays around documents of 256 levels
  if (!doc::ParseDocument(body, &parsed, &perr, limits)) {
    return ErrorResponse(400, fmt::format("the body is not valid JSON: {} (at byte {}); nothing was written", perr.message,
                                          perr.offset));
  }
  if (!parsed.IsObject()) {
    return ErrorResponse(400,
                         "the body must be a JSON object of collection names to arrays of documents, e.g. "
                         "{\"acme/orders\": [{...}]}; nothing was written");
  }
  auto refuse = [&](const std::string& message, const std::string& extra = {}) {
    return ErrorResponse(400, message + "; nothing was written", extra);
  };
  for (auto& m : parsed.GetObject()) {
    std::string name(m.name.GetString(), m.name.GetStringLength());
    auto it = plan_->collections.find(name);
    if (it == plan_->collections.end()) {
      std::string hint = CollectionHint(plan_.get(), name);
      return refuse(fmt::format("no collection `{}` in the catalog{}", name, hint.empty() ? "" : " (" + hint + ")"),
                    fmt::format(",\"collection\":{}", JsonQuote(name)));
    }
    const auto& c = it->second;
    if (c->derived) {
      return refuse(fmt::format("collection `{}` is derived: its documents come from its derivation", name),
                    fmt::format(",\"collection\":{}", JsonQuote(name)));
    }
    if (!m.value.IsArray()) {
      return refuse(fmt::format("collection `{}`: expected an array of documents", name),
                    fmt::format(",\"collection\":{}", JsonQuote(name)));
    }
    uint64_t index = 0;
    for (auto& item : m.value.GetArray()) {
      // The body may be larger than a document may be (SPEC 9).
      size_t size = 0;
      if (size_t limit = doc::ParseLimits{}.max_bytes; !doc::FitsJsonLimit(item, limit, &size)) {
        return refuse(fmt::format("collection `{}`, document {}: the document is {} bytes as JSON, over the limit of "
                                  "{} MiB",
                                  name, index, size, limit >> 20),
                      fmt::format(",\"collection\":{},\"index\":{}", JsonQuote(name), index));
      }
      doc::Value copy = doc::Copy(item, txn->allocator(c));
      auto added = txn->Add(c, copy);
      if (!added) {
        return refuse(fmt::format("collection `{}`, document {}: {}", name, index, added.error().message),
                      fmt::format(",\"collection\":{},\"index\":{}", JsonQuote(name), index));
      }
      ++(*counted)[name];
      ++index;
    }
  }
  return std::nullopt;
}

void IngestService::DrainStream(Stream& s, uint64_t* documents) {
  std::deque<std::string> frames;
  bool resume = false;
  {
    std::lock_guard lock(mu_);
    frames.swap(s.frames_);
    resume = s.pending_bytes_ >= pending_limit_;
    s.pending_bytes_ = 0;
    s.queued_ = false;
    if (s.closed_ || s.failed_) return;
  }
  if (frames.empty()) return;
  runtime::IngestTransaction txn(store_, stamper_);
  uint64_t before = s.feed_.documents();
  auto fail = [&](const std::string& message, uint16_t code) {
    auto aborted = txn.Abort();
    (void)aborted;
    {
      std::lock_guard lock(mu_);
      s.failed_ = true;
      s.frames_.clear();
    }
    s.peer_->Close(fmt::format("{{\"error\":{}}}", JsonQuote(message)), code, message);
  };
  for (const auto& frame : frames) {
    auto fed = s.feed_.Feed(frame, &txn);
    // A message holds whole lines (rows): a last one without a line end ends with it.
    if (fed && !frame.empty() && frame.back() != '\n') fed = s.feed_.Feed("\n", &txn);
    if (!fed) {
      const std::string& where = s.feed_.error_where();
      fail(fmt::format("{}{}{}; nothing of this transaction was written", where, where.empty() ? "" : ": ",
                       fed.error().message),
           1007);
      return;
    }
  }
  auto heads = txn.Commit();
  if (!heads) {
    fail(heads.error().message, 1011);
    return;
  }
  s.processed_ += frames.size();
  uint64_t added = s.feed_.documents() - before;
  *documents += added;
  counters_[s.collection_->name].documents += added;
  s.peer_->Send(fmt::format("{{\"Offsets\":{},\"Processed\":{}}}", runtime::HeadsJson(heads.value()), s.processed_));
  if (resume) s.peer_->Resume();
}

}  // namespace flow::develop
