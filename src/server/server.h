// The network side of the ingestion API (SPEC section 7), served by `flowctl develop`:
// HTTP/1.1 with keep-alive and WebSocket upgrades (Boost.Beast), on one network thread of
// its own. The server speaks the protocol — routing, methods, content types, size limits,
// timeouts, WebSocket framing and flow control — and hands the work to a Backend (the
// pipeline), which answers through callbacks from any thread.
//
// Every request first passes the browser-safety checks (server/guard.h, docs/security.md):
// a Host that is not loopback, the --host or (listening on every address) an IP literal on
// the server's port → 403 (400 when missing in HTTP/1.1 or repeated); an Origin that is
// neither the server's own nor in Options::allow_origins → 403. A request from an allowed
// Origin gets `Access-Control-Allow-Origin`, and its CORS preflight (OPTIONS with
// Access-Control-Request-Method) is answered 204 here.
//
// Routes:
//   PUT|POST /ingest             Content-Type application/json (parameters such as
//                                `; charset=utf-8` allowed); body over max_body → 413,
//                                other methods 405 (with Allow), other types 415.
//   GET /ingest/<collection>     WebSocket upgrade; the protocol is the first of the
//                                client's Sec-WebSocket-Protocol values that is json/v1,
//                                csv/v1 or tsv/v1 (echoed back); none offered → json/v1;
//                                only unknown ones → 400. A plain GET (no upgrade) → 400.
//                                <collection> is percent-decoded (names contain '/').
//   GET /healthz                 200 "ok\n" when Backend::Ready(), else 503.
//   GET /metrics                 200 text/plain; version=0.0.4, Backend::Metrics().
//   anything else under /        Backend::Control (e.g. POST /materializations); the
//                                backend answers 404 for what it does not know. A method
//                                other than GET, HEAD and OPTIONS needs Content-Type
//                                application/json (415 otherwise): the control API is JSON.
// Errors are JSON bodies `{"error": "..."}` with the status.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "server/guard.h"

namespace flow::server {

// What a WebSocket stream's messages hold, from its protocol: JSON (json/v1), CSV (csv/v1)
// or TSV (tsv/v1). The backend maps it to its own formats (develop's: runtime::IngestFormat),
// so that the server needs no runtime.
enum class IngestFormat { kJson, kCsv, kTsv };

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 8081;                    // 0: any free port (see Server::port())
  uint64_t max_body = 64ull << 20;         // HTTP request bodies
  uint64_t max_frame = (16ull << 20) + 4096;  // one WebSocket message
  // A request's headers and body must arrive within this (a client sending one byte a
  // second is cut off); also the keep-alive idle limit between requests.
  std::chrono::milliseconds request_timeout{30000};
  // A WebSocket connection with no frame from the client for this long is closed.
  std::chrono::milliseconds stream_idle_timeout{300000};
  // A stream stops reading its socket while this many bytes wait in its sink.
  uint64_t stream_pending_limit = 8ull << 20;
  size_t max_connections = 4096;           // more are accepted and closed at once (503)
  // Web origins, besides the server's own, whose pages may call the API (--allow-origin).
  std::vector<Origin> allow_origins;
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};
using Respond = std::function<void(Response)>;  // callable once, from any thread

// How the backend talks back to one WebSocket stream. Thread-safe; callable from any
// thread, also after the connection is gone (then no-ops).
class StreamPeer {
 public:
  virtual ~StreamPeer() = default;
  // Sends a text message (e.g. `{"Offsets": {...}, "Processed": 12}`).
  virtual void Send(std::string text) = 0;
  // Sends `text` (when not empty) as a last text message, then closes the connection with
  // close code `code` (e.g. 1007 invalid data, 1011 server error) and `reason` (truncated
  // to the protocol's 123 bytes).
  virtual void Close(std::string text, uint16_t code, std::string reason) = 0;
  // The sink's pending bytes fell below the limit: the server reads the socket again.
  virtual void Resume() = 0;
};

// One WebSocket stream's receiving end, implemented by the backend. Called on the network
// thread, in order.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  // A complete message (text or binary) from the client. Returns the bytes now waiting in
  // the sink; at or above Options::stream_pending_limit the server stops reading until
  // StreamPeer::Resume.
  virtual uint64_t Push(std::string message) = 0;
  // The connection ended (closed by the client, timed out, or failed). Messages not yet
  // taken into a transaction are dropped.
  virtual void Closed() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // PUT/POST /ingest: the whole body, after the method, type and size checks.
  virtual void Ingest(std::string body, Respond respond) = 0;
  // A WebSocket stream to `collection`. Returns null and fills `refusal` (e.g. 404 for an
  // unknown collection, 400 for a derived one) to refuse the upgrade.
  virtual std::shared_ptr<StreamSink> OpenStream(const std::string& collection, IngestFormat format,
                                                 std::shared_ptr<StreamPeer> peer,
                                                 Response* refusal) = 0;
  virtual bool Ready() = 0;
  virtual std::string Metrics() = 0;
  // Any other request: `target` is the request target (path and query).
  virtual void Control(const std::string& method, const std::string& target, std::string body,
                       Respond respond) = 0;
};

class Server {
 public:
  // Binds and listens (errors: the address is in use or cannot be bound, an environment
  // error naming host:port), then serves on a thread of its own until Stop.
  static Result<std::unique_ptr<Server>> Start(const Options& options, Backend* backend);
  virtual ~Server() = default;  // stops
  // The port listened on (the chosen one when Options::port is 0).
  virtual uint16_t port() const = 0;
  // Stops accepting, closes every connection and joins the network thread. Idempotent.
  virtual void Stop() = 0;
};

}  // namespace flow::server
