// The pipeline side of `develop`'s ingestion API (SPEC section 7): requests and WebSocket
// messages arrive on the server's network thread and wait here; the pipeline thread, which
// owns the store, drains them between its task steps — one transaction per HTTP request,
// and per WebSocket stream one transaction of every message it has received since the last
// — and answers through the server's callbacks. Every transaction commits through
// runtime::CommitGroup, like every other ingestion.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/ingest.h"
#include "runtime/plan.h"
#include "server/server.h"
#include "store/journal.h"

namespace flow::develop {

// Counters the metrics endpoint reports (pipeline thread only).
struct IngestCounters {
  uint64_t documents = 0;  // ingested through the API
};

// A JSON error response: `{"error": "<message>"<extra>}` (`extra`: more members, each
// starting with a comma).
server::Response ErrorResponse(int status, const std::string& message, const std::string& extra = {});

class IngestService : public server::Backend {
 public:
  // `control` handles other requests (on the pipeline thread, during Drain).
  using ControlHandler = std::function<server::Response(const std::string& method, const std::string& target,
                                                 const std::string& body)>;
  IngestService(store::Store* store, runtime::Stamper* stamper, uint64_t stream_pending_limit, ControlHandler control);
  ~IngestService() override;

  // The catalog new requests and streams are checked against (pipeline thread).
  void SetPlan(std::shared_ptr<const runtime::Plan> plan);

  // Processes everything waiting. Returns the documents committed. An error means the
  // store failed (stop).
  Result<uint64_t> Drain();
  // Blocks until work arrives or `timeout` passes.
  void Wait(std::chrono::milliseconds timeout);
  // Wakes a Wait (e.g. on a signal).
  void Wake();

  // The metrics text GET /metrics serves (pipeline thread, e.g. every second).
  void SetMetrics(std::string text);
  void SetReady(bool ready);
  const std::map<std::string, IngestCounters>& counters() const { return counters_; }
  // Latencies of ingest commits, in microseconds (appended; the caller may clear them).
  std::vector<uint64_t>& commit_latencies() { return latencies_; }
  uint64_t requests() const { return requests_; }

  // server::Backend, on the network thread.
  void Ingest(std::string body, server::Respond respond) override;
  std::shared_ptr<server::StreamSink> OpenStream(const std::string& collection,
                                                 server::IngestFormat format,
                                                 std::shared_ptr<server::StreamPeer> peer,
                                                 server::Response* refusal) override;
  bool Ready() override;
  std::string Metrics() override;
  void Control(const std::string& method, const std::string& target, std::string body,
               server::Respond respond) override;

 private:
  class Stream;
  struct Request {
    enum class Kind { kIngest, kControl } kind;
    std::string method, target, body;
    server::Respond respond;
  };
  // Parses and validates an ingest body into `txn` (nothing reaches the store); returns the
  // response refusing it, or nullopt when it is valid.
  std::optional<server::Response> Prepare(const std::string& body, runtime::IngestTransaction* txn,
                                          std::map<std::string, uint64_t>* counted);
  void DrainStream(Stream& s, uint64_t* documents);

  store::Store* store_;
  runtime::Stamper* stamper_;
  uint64_t pending_limit_;
  ControlHandler control_;

  std::mutex mu_;  // guards the members below it
  std::condition_variable cv_;
  bool work_ = false;
  std::deque<Request> requests_queue_;
  std::vector<std::shared_ptr<Stream>> ready_streams_;
  std::shared_ptr<const runtime::Plan> plan_;
  std::string metrics_;
  bool ready_ = false;

  // Pipeline thread only.
  std::map<std::string, IngestCounters> counters_;
  std::vector<uint64_t> latencies_;
  uint64_t requests_ = 0;
};

}  // namespace flow::develop
