// The ingestion server on Boost.Beast (the only file that includes Beast, which is slow to
// compile). Everything here runs on the one network thread: the io_context is the strand.
// Other threads reach a session only through Hub::Post, which holds the io_context while it
// is alive; Respond callbacks and StreamPeers hold weak references to their sessions, so
// they are no-ops once a session (or the whole server) is gone.
//
// Ownership: the server's session table owns every live session (so one waiting for the
// backend, with no socket operation pending, stays alive); handlers hold extra references
// while they are pending. A session leaves the table when it ends, exactly once.
#include "server/server.h"

#include <array>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/log.h"
#include "base/url.h"
#include "server/protocol.h"

namespace flow::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Fields = std::vector<std::pair<http::field, std::string>>;

// After a response that ends a connection, how long unread request bytes are drained
// before the socket is closed. Closing with unread bytes makes the kernel send a reset,
// which can destroy the response (a 413 for a body still in flight) before the client reads
// it; a client that got `Connection: close` hangs up well within this.
constexpr std::chrono::milliseconds kLinger{1000};

// The server's own failures, through base's log: a JSON record with --log-format json.
void Log(const std::string& what) { flow::Log(LogLevel::kError, "server: " + what); }

std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }

// Posts work onto the network thread while the server lives; afterwards, drops it.
class Hub {
 public:
  explicit Hub(asio::io_context* ioc) : ioc_(ioc) {}
  template <class F>
  void Post(F&& f) {
    std::lock_guard lock(mu_);
    if (ioc_ != nullptr) asio::post(*ioc_, std::forward<F>(f));
  }
  void Detach() {
    std::lock_guard lock(mu_);
    ioc_ = nullptr;
  }

 private:
  std::mutex mu_;
  asio::io_context* ioc_;
};

class ServerImpl;

class Session {
 public:
  virtual ~Session() = default;
  // Server shutdown: ends the session now (closes the socket; a stream's sink is told).
  virtual void Abort() = 0;
  // Whether the session counts against Options::max_connections (a 503 does not).
  bool counted = true;
};

class WsSession;

// StreamPeer: every call is posted to the network thread, where the session is looked up.
class Peer final : public StreamPeer, public std::enable_shared_from_this<Peer> {
 public:
  explicit Peer(std::shared_ptr<Hub> hub) : hub_(std::move(hub)) {}
  // Network thread; before any posted call runs (they run after the current handler).
  void Bind(std::weak_ptr<WsSession> session) { session_ = std::move(session); }

  void Send(std::string text) override;
  void Close(std::string text, uint16_t code, std::string reason) override;
  void Resume() override;

 private:
  template <class F>
  void Post(F&& f) {
    hub_->Post([self = shared_from_this(), f = std::forward<F>(f)]() mutable {
      if (auto session = self->session_.lock()) f(*session);
    });
  }

  std::shared_ptr<Hub> hub_;
  std::weak_ptr<WsSession> session_;  // network thread only
};

class ServerImpl final : public Server {
 public:
  ServerImpl(const Options& options, Backend* backend)
      : options_(options),
        backend_(backend),
        acceptor_(ioc_),
        accept_retry_(ioc_),
        hub_(std::make_shared<Hub>(&ioc_)) {}
  ~ServerImpl() override { Stop(); }

  Result<bool> Listen();
  void Run();
  uint16_t port() const override { return port_; }
  void Stop() override;

  // Network thread only.
  const Options& options() const { return options_; }
  Backend* backend() const { return backend_; }
  const std::shared_ptr<Hub>& hub() const { return hub_; }
  const RequestGuard& guard() const { return *guard_; }
  void Add(std::shared_ptr<Session> session) {
    if (session->counted) ++counted_;
    Session* key = session.get();
    sessions_.emplace(key, std::move(session));
  }
  void Remove(Session* session) {
    auto it = sessions_.find(session);
    if (it == sessions_.end()) return;
    if (it->second->counted) --counted_;
    sessions_.erase(it);
  }

 private:
  void Accept();
  void OnAccept(beast::error_code ec, tcp::socket socket);
  void Shutdown();

  Options options_;
  Backend* backend_;
  // Declared first, destroyed last: sessions and handlers hold sockets and timers of it.
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::steady_timer accept_retry_;
  std::shared_ptr<Hub> hub_;
  std::unordered_map<Session*, std::shared_ptr<Session>> sessions_;
  size_t counted_ = 0;
  bool stopping_ = false;  // network thread
  uint16_t port_ = 0;
  std::optional<RequestGuard> guard_;  // set by Listen, once the port is known
  std::thread thread_;
  std::mutex stop_mu_;
  bool stopped_ = false;
};

// One WebSocket stream: reads messages into the sink (pausing while it is full) and writes
// the peer's queued messages and close, one write at a time.
class WsSession final : public Session, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(ServerImpl* server, beast::tcp_stream stream, std::shared_ptr<StreamSink> sink,
            std::string protocol)
      : server_(server),
        ws_(std::move(stream)),
        idle_(ws_.get_executor()),
        sink_(std::move(sink)),
        protocol_(std::move(protocol)) {}

  void Accept(http::request<http::string_body> request) {
    const Options& options = server_->options();
    // The WebSocket stream keeps its own timers: the handshake and close handshake get the
    // request timeout; idleness is timed here (see Read), as Beast's idle timer would also
    // run while the stream is paused by flow control.
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout timeouts;
    timeouts.handshake_timeout = options.request_timeout;
    timeouts.idle_timeout = websocket::stream_base::none();
    timeouts.keep_alive_pings = false;
    ws_.set_option(timeouts);
    ws_.read_message_max(options.max_frame);
    ws_.set_option(
        websocket::stream_base::decorator([protocol = protocol_](websocket::response_type& res) {
          res.set(http::field::server, "flowctl");
          if (!protocol.empty()) res.set(http::field::sec_websocket_protocol, protocol);
        }));
    request_ = std::move(request);
    ws_.async_accept(*request_,
                     [self = shared_from_this()](beast::error_code ec) { self->OnAccept(ec); });
  }

  void Abort() override { End(); }

  // From the peer, on the network thread.
  void Send(std::string text) {
    if (ended_ || closing_) return;
    out_.push_back({std::move(text), false, {}});
    Write();
  }
  void Close(std::string text, uint16_t code, std::string reason) {
    if (ended_ || closing_) return;
    closing_ = true;  // messages read from now on are dropped; Send is a no-op
    if (!text.empty()) out_.push_back({std::move(text), false, {}});
    std::string truncated = TruncateReason(std::move(reason));
    // Through a string_view: Beast 1.74's reason.assign(data, size) picks the overload
    // assign(string, pos) and assigns an empty string.
    websocket::close_reason close(static_cast<websocket::close_code>(SendableCloseCode(code)),
                                  beast::string_view(truncated.data(), truncated.size()));
    out_.push_back({{}, true, close});
    Write();
  }
  void Resume() {
    if (ended_ || !paused_) return;
    paused_ = false;
    Read();
  }

 private:
  struct Outgoing {
    std::string text;
    bool close;
    websocket::close_reason reason;
  };

  void OnAccept(beast::error_code ec) {
    request_.reset();
    if (ended_) return;
    if (ec) return End();
    accepted_ = true;
    Read();
    Write();
  }

  // One read at a time, none while paused or closing (Beast's close reads the rest).
  void Read() {
    if (ended_ || !accepted_ || reading_ || paused_ || closing_) return;
    reading_ = true;
    // No message for stream_idle_timeout while waiting for one: close (going away).
    idle_.expires_after(server_->options().stream_idle_timeout);
    idle_.async_wait(
        [self = shared_from_this(), generation = ++idle_generation_](beast::error_code ec) {
          if (!ec) self->OnIdle(generation);
        });
    ws_.async_read(in_,
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnIdle(uint64_t generation) {
    if (ended_ || !reading_ || generation != idle_generation_) return;
    Close({}, static_cast<uint16_t>(websocket::close_code::going_away), "idle timeout");
  }

  void OnRead(beast::error_code ec) {
    reading_ = false;
    ++idle_generation_;
    idle_.cancel();
    if (ended_) return;
    // Closed by the client, reset, over read_message_max, or invalid framing.
    if (ec) return End();
    std::string message = beast::buffers_to_string(in_.data());
    in_.consume(in_.size());
    if (closing_) return;
    uint64_t pending = 0;
    try {
      pending = sink_->Push(std::move(message));
    } catch (const std::exception& e) {
      Log(std::string("a stream's sink failed: ") + e.what());
      Close({}, static_cast<uint16_t>(websocket::close_code::internal_error), "internal error");
      return;
    }
    if (pending >= server_->options().stream_pending_limit) {
      paused_ = true;  // until the peer's Resume
      return;
    }
    Read();
  }

  void Write() {
    if (ended_ || !accepted_ || writing_ || out_.empty()) return;
    writing_ = true;
    Outgoing& next = out_.front();
    if (next.close) {
      ws_.async_close(next.reason, [self = shared_from_this()](beast::error_code) {
        self->writing_ = false;
        self->End();
      });
      return;
    }
    ws_.text(true);
    ws_.async_write(asio::buffer(next.text),
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      self->writing_ = false;
                      if (self->ended_) return;
                      if (ec) return self->End();
                      self->out_.pop_front();
                      self->Write();
                    });
  }

  // Exactly once, whatever ends the stream: the sink hears Closed and is released.
  void End() {
    if (ended_) return;
    ended_ = true;
    auto keep = shared_from_this();
    ++idle_generation_;
    idle_.cancel();
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);  // pending operations are aborted
    out_.clear();
    std::shared_ptr<StreamSink> sink = std::move(sink_);
    try {
      sink->Closed();
    } catch (const std::exception& e) {
      Log(std::string("a stream's sink failed when closed: ") + e.what());
    }
    server_->Remove(this);
  }

  ServerImpl* server_;
  websocket::stream<beast::tcp_stream> ws_;
  asio::steady_timer idle_;
  uint64_t idle_generation_ = 0;
  std::shared_ptr<StreamSink> sink_;
  std::string protocol_;  // echoed; empty when the client offered none
  std::optional<http::request<http::string_body>> request_;  // the upgrade, while accepting
  beast::flat_buffer in_;
  std::deque<Outgoing> out_;
  bool accepted_ = false, reading_ = false, paused_ = false, writing_ = false, closing_ = false,
       ended_ = false;
};

void Peer::Send(std::string text) {
  Post([text = std::move(text)](WsSession& session) mutable { session.Send(std::move(text)); });
}
void Peer::Close(std::string text, uint16_t code, std::string reason) {
  Post([text = std::move(text), code, reason = std::move(reason)](WsSession& session) mutable {
    session.Close(std::move(text), code, std::move(reason));
  });
}
void Peer::Resume() {
  Post([](WsSession& session) { session.Resume(); });
}

class HttpSession;

// Behind a Respond: answers once, on the network thread; if every copy of the Respond is
// dropped unanswered, answers 500 so the connection does not hang.
class Responder {
 public:
  Responder(std::shared_ptr<Hub> hub, std::weak_ptr<HttpSession> session)
      : hub_(std::move(hub)), session_(std::move(session)) {}
  ~Responder() {
    if (answered_) return;
    try {
      Answer({500, JsonError("the request was dropped without a response"), "application/json"});
    } catch (...) {
    }
  }
  void Answer(Response response);

 private:
  std::shared_ptr<Hub> hub_;
  std::weak_ptr<HttpSession> session_;
  std::atomic<bool> answered_{false};
};

// One HTTP/1.1 connection: requests in turn (keep-alive), each within request_timeout,
// until it closes or upgrades to a WebSocket stream.
class HttpSession final : public Session, public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(ServerImpl* server, tcp::socket socket)
      : server_(server), stream_(std::move(socket)) {}

  void Start() { ReadHeader(); }
  // Over max_connections: 503, then close.
  void Reject() { SendError(503, "too many connections", true); }

  void Abort() override {
    if (done_) return;
    done_ = true;
    beast::error_code ignored;
    stream_.socket().close(ignored);
  }

  // The backend's answer, on the network thread.
  void Reply(Response response) {
    if (done_ || !awaiting_) return;
    awaiting_ = false;
    Send(response.status, std::move(response.body), std::move(response.content_type), !keep_alive_);
  }

 private:
  void ReadHeader() {
    version_ = 11;
    keep_alive_ = true;
    head_ = false;
    cors_origin_.clear();
    parser_.emplace();
    parser_->body_limit(server_->options().max_body);
    // One deadline for the whole request, headers and body: a slow client is cut off.
    stream_.expires_after(server_->options().request_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (done_) return;
    if (ec) return OnReadError(ec);
    auto& request = parser_->get();
    version_ = request.version();
    keep_alive_ = request.keep_alive();
    head_ = request.method() == http::verb::head;
    std::string_view target = View(request.target());
    std::string_view path = target.substr(0, target.find('?'));
    // Checks that need no body answer before it is read; the connection then closes unless
    // there is no body.
    bool close = !keep_alive_ || !parser_->is_done();
    // Browser safety first (server/guard.h): nothing of a refused request reaches the backend.
    const RequestGuard& guard = server_->guard();
    auto refused = guard.CheckHost(View(request[http::field::host]),
                                   request.count(http::field::host), version_);
    if (!refused) {
      refused =
          guard.CheckOrigin(View(request[http::field::origin]), request.count(http::field::origin));
    }
    if (refused) return SendError(refused->status, refused->message, close);
    if (request.count(http::field::origin) == 1)
      cors_origin_ = std::string(View(request[http::field::origin]));
    if (!cors_origin_.empty() && request.method() == http::verb::options &&
        request.count(http::field::access_control_request_method) > 0) {
      // A CORS preflight from an allowed origin (e.g. before a fetch with a JSON body).
      Fields preflight = {{http::field::access_control_allow_methods, "GET, PUT, POST"},
                          {http::field::access_control_allow_headers, "Content-Type"},
                          {http::field::access_control_max_age, "600"}};
      if (beast::iequals(request["Access-Control-Request-Private-Network"], "true")) {
        preflight.push_back({http::field::unknown, "Access-Control-Allow-Private-Network: true"});
      }
      return Send(204, "", "", close, std::move(preflight));
    }
    bool control = path != "/ingest" && path.substr(0, 8) != "/ingest/";
    if (control && request.method() != http::verb::get && request.method() != http::verb::head &&
        request.method() != http::verb::options &&
        !IsJsonType(View(request[http::field::content_type]))) {
      return SendError(
          415,
          "the Content-Type of a request to " + std::string(path) + " must be application/json",
          close);
    }
    if (path == "/ingest") {
      if (request.method() != http::verb::put && request.method() != http::verb::post) {
        return SendError(405, "use PUT or POST to ingest", close,
                         {{http::field::allow, "PUT, POST"}});
      }
      if (!IsJsonType(View(request[http::field::content_type]))) {
        return SendError(415, "the Content-Type of an ingest request must be application/json",
                         close);
      }
    }
    if (parser_->is_done()) return Dispatch();
    if (version_ >= 11 && beast::iequals(request[http::field::expect], "100-continue")) {
      // The client waits for this before sending the body.
      auto res =
          std::make_shared<http::response<http::empty_body>>(http::status::continue_, version_);
      http::async_write(stream_, *res,
                        [self = shared_from_this(), res](beast::error_code ec, size_t) {
                          if (self->done_) return;
                          if (ec) return self->End();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    // The deadline set in ReadHeader still runs.
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (self->done_) return;
                       if (ec) return self->OnReadError(ec);
                       self->Dispatch();
                     });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return SendError(
          413, "the request body is over " + std::to_string(server_->options().max_body) + " bytes",
          true);
    }
    if (ec == http::error::header_limit)
      return SendError(431, "the request header is too large", true);
    // A malformed request (not a connection that closed or timed out mid-request).
    if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return SendError(400, "malformed HTTP request: " + ec.message(), true);
    }
    End();  // closed between requests, timed out (the stream is closed), or reset
  }

  void Dispatch() {
    stream_.expires_never();  // no deadline while the backend works
    auto& request = parser_->get();
    std::string_view target = View(request.target());
    std::string_view path = target.substr(0, target.find('?'));
    Backend* backend = server_->backend();
    try {
      if (path == "/ingest") {
        awaiting_ = true;
        return backend->Ingest(std::move(request.body()), MakeRespond());
      }
      if (path.substr(0, 8) == "/ingest/") {
        if (websocket::is_upgrade(request)) return Upgrade(path.substr(8));
        if (request.method() != http::verb::get) {
          return SendError(405, "use GET with a WebSocket upgrade to stream", !keep_alive_,
                           {{http::field::allow, "GET"}});
        }
        return SendError(400, "expected a WebSocket upgrade (Upgrade: websocket)", !keep_alive_);
      }
      if (request.method() == http::verb::get && path == "/healthz") {
        if (backend->Ready()) return Send(200, "ok\n", "text/plain; charset=utf-8", !keep_alive_);
        return SendError(503, "not ready", !keep_alive_);
      }
      if (request.method() == http::verb::get && path == "/metrics") {
        return Send(200, backend->Metrics(), "text/plain; version=0.0.4", !keep_alive_);
      }
      awaiting_ = true;
      backend->Control(std::string(View(request.method_string())), std::string(target),
                       std::move(request.body()), MakeRespond());
    } catch (const std::exception& e) {
      // A Respond handed over answers 500 itself when it is dropped unanswered.
      Log(std::string("the backend failed on ") + std::string(target) + ": " + e.what());
      if (!awaiting_) SendError(500, "internal error", true);
    }
  }

  Respond MakeRespond() {
    auto responder = std::make_shared<Responder>(server_->hub(), weak_from_this());
    return [responder](Response response) { responder->Answer(std::move(response)); };
  }

  void Upgrade(std::string_view encoded_collection) {
    auto& request = parser_->get();
    std::string collection = PercentDecode(encoded_collection);
    if (collection.empty())
      return SendError(400, "missing collection name in /ingest/<collection>", !keep_alive_);
    std::vector<std::string_view> offers;
    auto [first, last] = request.equal_range(http::field::sec_websocket_protocol);
    for (auto field = first; field != last; ++field) offers.push_back(View(field->value()));
    ProtocolChoice choice = ChooseProtocol(offers);
    if (choice.offered && !choice.format) {
      return SendError(400,
                       "no supported WebSocket protocol offered: use json/v1, csv/v1 or tsv/v1",
                       !keep_alive_);
    }
    std::optional<IngestFormat> format = choice.format;
    std::string protocol = std::move(choice.protocol);
    if (!format) format = IngestFormat::kJson;

    auto peer = std::make_shared<Peer>(server_->hub());
    Response refusal{500, {}, "application/json"};
    std::shared_ptr<StreamSink> sink;
    try {
      sink = server_->backend()->OpenStream(collection, *format, peer, &refusal);
    } catch (const std::exception& e) {
      Log("the backend failed to open a stream to " + collection + ": " + e.what());
      sink = nullptr;
      refusal = {500, JsonError("internal error"), "application/json"};
    }
    if (!sink) {
      if (refusal.status < 400) refusal.status = 500;
      if (refusal.body.empty()) refusal.body = JsonError("cannot stream to " + collection);
      return Send(refusal.status, std::move(refusal.body), std::move(refusal.content_type),
                  !keep_alive_);
    }
    // The socket moves to the WebSocket session, which takes this one's place.
    done_ = true;
    auto self = shared_from_this();
    auto ws = std::make_shared<WsSession>(server_, std::move(stream_), std::move(sink),
                                          std::move(protocol));
    server_->Remove(this);
    server_->Add(ws);
    peer->Bind(ws);
    ws->Accept(parser_->release());
  }

  void SendError(int status, std::string_view message, bool close, Fields fields = {}) {
    Send(status, JsonError(message), "application/json", close, std::move(fields));
  }

  void Send(int status, std::string body, std::string content_type, bool close,
            Fields fields = {}) {
    if (status < 200 || status > 999) status = 500;  // 1xx is not a final answer
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(version_);
    res->result(static_cast<unsigned>(status));
    res->set(http::field::server, "flowctl");
    if (!content_type.empty()) res->set(http::field::content_type, content_type);
    for (auto& [name, value] : fields) {
      if (name == http::field::unknown) {
        // "Name: value", for a header Beast has no field for.
        size_t colon = value.find(':');
        res->set(value.substr(0, colon),
                 std::string(Trim(std::string_view(value).substr(colon + 1))));
      } else {
        res->set(name, value);
      }
    }
    if (!cors_origin_.empty()) {
      // The origin passed the guard: let its page read the answer.
      res->set(http::field::access_control_allow_origin, cors_origin_);
      res->set(http::field::vary, "Origin");
    }
    if (status == 204 || status == 304) body.clear();  // no body allowed
    res->body() = std::move(body);
    res->keep_alive(!close);
    res->prepare_payload();
    if (head_) res->body().clear();  // Content-Length stays that of the body not sent
    stream_.expires_after(server_->options().request_timeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res, close](beast::error_code ec, size_t) {
                        if (self->done_) return;
                        if (ec) return self->End();
                        if (close) return self->Linger();
                        self->ReadHeader();
                      });
  }

  // Half-closes, then drains what the client still sends (see kLinger) before closing.
  void Linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLinger);
    Drain();
  }
  void Drain() {
    stream_.async_read_some(asio::buffer(drain_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (self->done_) return;
                              if (ec) return self->End();
                              self->Drain();
                            });
  }

  void End() {
    if (done_) return;
    done_ = true;
    auto keep = shared_from_this();
    beast::error_code ignored;
    stream_.socket().close(ignored);
    server_->Remove(this);
  }

  ServerImpl* server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::array<char, 4096> drain_;
  unsigned version_ = 11;
  bool keep_alive_ = true, head_ = false;
  bool awaiting_ = false;  // a Respond is out
  bool done_ = false;
  std::string cors_origin_;  // the request's Origin, once the guard allowed it
};

void Responder::Answer(Response response) {
  if (answered_.exchange(true)) return;
  hub_->Post([session = session_, response = std::move(response)]() mutable {
    if (auto live = session.lock()) live->Reply(std::move(response));
  });
}

Result<bool> ServerImpl::Listen() {
  std::string where = options_.host + ":" + std::to_string(options_.port);
  beast::error_code ec;
  tcp::resolver resolver(ioc_);
  auto endpoints = resolver.resolve(options_.host, std::to_string(options_.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return Error::Env("cannot resolve the address " + where + ": " +
                      (ec ? ec.message() : "no address"));
  }
  tcp::endpoint endpoint = endpoints.begin()->endpoint();
  auto failed = [&](const char* what) {
    return Error::Env(std::string("cannot ") + what + " " + where + ": " + ec.message() +
                      (ec == asio::error::address_in_use
                           ? " (is another flowctl develop running? use --port)"
                           : ""));
  };
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) return failed("open a socket for");
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) return failed("set SO_REUSEADDR on");
  acceptor_.bind(endpoint, ec);
  if (ec) return failed("bind");
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return failed("listen on");
  port_ = acceptor_.local_endpoint(ec).port();
  if (ec) return failed("read the port of");
  guard_.emplace(options_.host, port_, options_.allow_origins);
  return true;
}

void ServerImpl::Run() {
  Accept();
  thread_ = std::thread([this] {
    // Nothing may escape the network thread: log, and serve on.
    for (;;) {
      try {
        ioc_.run();
        return;
      } catch (const std::exception& e) {
        Log(std::string("unexpected error on the network thread: ") + e.what());
      } catch (...) {
        Log("unexpected error on the network thread");
      }
    }
  });
}

void ServerImpl::Accept() {
  acceptor_.async_accept(
      [this](beast::error_code ec, tcp::socket socket) { OnAccept(ec, std::move(socket)); });
}

void ServerImpl::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (stopping_ || ec == asio::error::operation_aborted) return;
  if (ec) {
    // E.g. out of file descriptors: try again shortly instead of spinning.
    Log("cannot accept a connection: " + ec.message());
    accept_retry_.expires_after(std::chrono::milliseconds(100));
    accept_retry_.async_wait([this](beast::error_code ec) {
      if (!ec && !stopping_) Accept();
    });
    return;
  }
  socket.set_option(tcp::no_delay(true), ec);  // small responses and stream messages
  auto session = std::make_shared<HttpSession>(this, std::move(socket));
  session->counted = counted_ < options_.max_connections;
  Add(session);
  if (session->counted) {
    session->Start();
  } else {
    session->Reject();
  }
  Accept();
}

void ServerImpl::Shutdown() {
  stopping_ = true;
  beast::error_code ignored;
  acceptor_.close(ignored);
  accept_retry_.cancel();
  auto sessions = std::move(sessions_);
  sessions_.clear();
  counted_ = 0;
  for (auto& [key, session] : sessions) session->Abort();
  ioc_.stop();  // handlers not run yet are destroyed with the io_context
}

void ServerImpl::Stop() {
  if (std::this_thread::get_id() == thread_.get_id()) {
    // From a backend callback: the network thread cannot join itself. Shut down after
    // this handler; the destructor (on another thread) joins.
    asio::post(ioc_, [this] { Shutdown(); });
    return;
  }
  std::lock_guard lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  if (thread_.joinable()) {
    asio::post(ioc_, [this] { Shutdown(); });
    thread_.join();
  }
  hub_->Detach();
}

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(const Options& options, Backend* backend) {
  auto server = std::make_unique<ServerImpl>(options, backend);
  Result<bool> listening = server->Listen();
  if (!listening) return listening.error();
  server->Run();
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace flow::server
