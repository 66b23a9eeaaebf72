// Tests of the ingestion server (src/server/server.h; SPEC sections 7 and 9) over real
// sockets with real clients: curl for HTTP, raw sockets for slow, stalled and many
// concurrent clients, and Beast's WebSocket client for streams. The backend is a fake that
// records calls and answers Ingest from a thread of its own.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// Beast only for the WebSocket client (a real one, over a real socket).
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "base/log.h"
#include "scratch.h"
#include "server/protocol.h"
#include "server/server.h"

using namespace flow;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using Clock = std::chrono::steady_clock;

namespace {

// curl with `args`; the body (-o -) and the -w format go to stdout. No proxy from the
// environment: the server is on loopback.
std::string Curl(const std::string& args) { return testing::ShOut("curl -s --noproxy '*' " + args); }

// Polls `done` every 5 ms for up to `timeout`.
bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout = 3000ms) {
  auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

class TestSink : public server::StreamSink {
 public:
  explicit TestSink(bool count_pending) : count_pending_(count_pending) {}
  uint64_t Push(std::string message) override {
    std::lock_guard lock(mu_);
    if (count_pending_) pending_ += message.size();
    pushed_.push_back(std::move(message));
    return pending_;
  }
  void Closed() override {
    std::lock_guard lock(mu_);
    ++closed_;
  }
  std::vector<std::string> pushed() {
    std::lock_guard lock(mu_);
    return pushed_;
  }
  size_t pushed_count() {
    std::lock_guard lock(mu_);
    return pushed_.size();
  }
  int closed() {
    std::lock_guard lock(mu_);
    return closed_;
  }
  void Drain() {
    std::lock_guard lock(mu_);
    pending_ = 0;
  }

 private:
  std::mutex mu_;
  bool count_pending_;
  uint64_t pending_ = 0;
  std::vector<std::string> pushed_;
  int closed_ = 0;
};

// Records every call. Ingest answers from a worker thread (a body "drop" is never
// answered: its Respond is dropped); Control answers 404 at once, on the network thread.
class TestBackend : public server::Backend {
 public:
  struct Stream {
    std::string collection;
    server::IngestFormat format;
  };

  TestBackend() : worker_([this] { Work(); }) {}
  ~TestBackend() override {
    {
      std::lock_guard lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  void Ingest(std::string body, server::Respond respond) override {
    std::lock_guard lock(mu_);
    ingested_.push_back(body);
    if (body == "drop") return;
    jobs_.push_back([body, respond] {
      respond({200, "{\"Offsets\": {\"acme/items\": " + std::to_string(body.size()) + "}}",
               "application/json"});
    });
    cv_.notify_all();
  }
  std::shared_ptr<server::StreamSink> OpenStream(const std::string& collection,
                                                 server::IngestFormat format,
                                                 std::shared_ptr<server::StreamPeer> peer,
                                                 server::Response* refusal) override {
    std::lock_guard lock(mu_);
    if (collection == "missing") {
      refusal->status = 404;
      refusal->body = "{\"error\": \"no collection missing\"}";
      return nullptr;
    }
    streams_.push_back({collection, format});
    peer_ = std::move(peer);
    sink_ = std::make_shared<TestSink>(count_pending);
    return sink_;
  }
  bool Ready() override { return ready; }
  std::string Metrics() override { return "flow_documents_total 3\n"; }
  void Control(const std::string& method, const std::string& target, std::string body,
               server::Respond respond) override {
    {
      std::lock_guard lock(mu_);
      controls_.push_back(method + " " + target + " " + body);
    }
    if (target == "/boom") throw std::runtime_error("boom");
    respond({404, "{\"error\": \"not found\"}", "application/json"});
  }

  std::vector<std::string> ingested() {
    std::lock_guard lock(mu_);
    return ingested_;
  }
  std::vector<std::string> controls() {
    std::lock_guard lock(mu_);
    return controls_;
  }
  std::vector<Stream> streams() {
    std::lock_guard lock(mu_);
    return streams_;
  }
  std::shared_ptr<TestSink> sink() {
    std::lock_guard lock(mu_);
    return sink_;
  }
  std::shared_ptr<server::StreamPeer> peer() {
    std::lock_guard lock(mu_);
    return peer_;
  }

  std::atomic<bool> ready{true};
  bool count_pending = false;  // Push returns the bytes pushed since TestSink::Drain

 private:
  void Work() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return quit_ || !jobs_.empty(); });
      if (quit_) return;
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool quit_ = false;
  std::vector<std::string> ingested_, controls_;
  std::vector<Stream> streams_;
  std::shared_ptr<TestSink> sink_;
  std::shared_ptr<server::StreamPeer> peer_;
  std::thread worker_;
};

struct Fixture {
  explicit Fixture(server::Options options = {}, bool count_pending = false) {
    backend.count_pending = count_pending;
    options.port = 0;
    auto started = server::Server::Start(options, &backend);
    REQUIRE_MESSAGE(started.ok(), (started.ok() ? std::string() : started.error().message));
    server = std::move(started.value());
    REQUIRE(server->port() != 0);
  }
  uint16_t port() const { return server->port(); }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port()) + path;
  }
  // The Host header line of a request to this server (raw sockets write their own).
  std::string HostLine() const { return "Host: 127.0.0.1:" + std::to_string(port()) + "\r\n"; }

  TestBackend backend;
  std::unique_ptr<server::Server> server;  // stopped before the backend goes
};

// Raw sockets, for clients curl cannot play.
int Connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}

void SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    REQUIRE(n > 0);
    data.remove_prefix(static_cast<size_t>(n));
  }
}

struct Received {
  std::string data;
  bool closed = false;  // the server closed (or reset) the connection
};

// Reads until the server closes the connection, or for at most `timeout`.
Received ReadUntilClosed(int fd, std::chrono::milliseconds timeout) {
  Received r;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return r;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      r.closed = true;
      return r;
    }
    r.data.append(buf, static_cast<size_t>(n));
  }
}

// Reads one response with a Content-Length body (the connection stays open).
std::string ReadResponse(int fd) {
  std::string data;
  auto deadline = Clock::now() + 3s;
  while (Clock::now() < deadline) {
    size_t end = data.find("\r\n\r\n");
    if (end != std::string::npos) {
      size_t at = data.find("Content-Length: ");
      size_t length = at == std::string::npos ? 0 : std::stoul(data.substr(at + 16));
      if (data.size() >= end + 4 + length) return data;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  return data;
}

// Beast's WebSocket client; every operation runs with a deadline so a failing server
// cannot hang the test.
class WsClient {
 public:
  // `host`: the Host header (default 127.0.0.1:PORT); `origin`: an Origin header, if any.
  beast::error_code Connect(uint16_t port, const std::string& target,
                            const std::string& protocols = {}, const std::string& origin = {},
                            std::string host = {}) {
    beast::error_code ec;
    beast::get_lowest_layer(ws).socket().connect({asio::ip::address_v4::loopback(), port}, ec);
    if (ec) return ec;
    ws.set_option(
        websocket::stream_base::decorator([protocols, origin](websocket::request_type& req) {
          if (!protocols.empty()) req.set(http::field::sec_websocket_protocol, protocols);
          if (!origin.empty()) req.set(http::field::origin, origin);
        }));
    if (host.empty()) host = "127.0.0.1:" + std::to_string(port);
    return Await([&](auto handler) { ws.async_handshake(response, host, target, handler); });
  }
  beast::error_code Write(const std::string& text) {
    ws.text(true);
    return Await([&](auto handler) { ws.async_write(asio::buffer(text), handler); });
  }
  beast::error_code Read(std::string* text, std::chrono::milliseconds timeout = 3000ms) {
    beast::flat_buffer buffer;
    auto ec = Await([&](auto handler) { ws.async_read(buffer, handler); }, timeout);
    *text = beast::buffers_to_string(buffer.data());
    return ec;
  }
  std::string Header(http::field field) const { return std::string(response[field]); }

  asio::io_context ioc;
  websocket::stream<beast::tcp_stream> ws{ioc};
  websocket::response_type response;

 private:
  template <class Start>
  beast::error_code Await(Start start, std::chrono::milliseconds timeout = 3000ms) {
    beast::get_lowest_layer(ws).expires_after(timeout);
    std::optional<beast::error_code> result;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    REQUIRE(result.has_value());
    return *result;
  }
};

}  // namespace

TEST_CASE("server: ingest round trip, keep-alive and answers from any thread") {
  Fixture f;
  std::string body = R"({"acme/items": [{"id": 1}]})";
  std::string expect = "{\"Offsets\": {\"acme/items\": " + std::to_string(body.size()) + "}}";
  // Two requests on one connection: the second makes no new connection.
  std::string out = Curl(
      "-o - -w ' %{http_code} %{num_connects}\\n' -H 'Content-Type: application/json' "
      "--data-binary '" +
      body + "' " + f.Url("/ingest") + " " + f.Url("/ingest"));
  CHECK(out == expect + " 200 1\n" + expect + " 200 0\n");
  CHECK(f.backend.ingested() == std::vector<std::string>{body, body});

  // PUT, and a type with parameters.
  out = Curl(
      "-o - -w ' %{http_code}' -X PUT -H 'Content-Type: Application/JSON; charset=utf-8' "
      "--data-binary '{}' " +
      f.Url("/ingest"));
  CHECK(out == "{\"Offsets\": {\"acme/items\": 2}} 200");

  // A Respond dropped unanswered answers 500 instead of hanging the connection.
  out = Curl("-o - -w ' %{http_code}' -H 'Content-Type: application/json' --data-binary drop " +
             f.Url("/ingest"));
  CHECK(out == "{\"error\": \"the request was dropped without a response\"} 500");
}

TEST_CASE("server: /ingest checks method (405 + Allow), content type (415) and body size (413)") {
  server::Options options;
  options.max_body = 1024;
  Fixture f(options);

  std::string out = Curl("-D - -o /dev/null -w '%{http_code}' " + f.Url("/ingest"));
  CHECK(out.find("\r\nAllow: PUT, POST\r\n") != std::string::npos);
  CHECK(out.substr(out.size() - 3) == "405");
  out = Curl("-o - -w ' %{http_code}' -X DELETE " + f.Url("/ingest"));
  CHECK(out == "{\"error\": \"use PUT or POST to ingest\"} 405");

  out = Curl("-o - -w ' %{http_code}' -H 'Content-Type: text/csv' --data-binary 'a,b' " +
             f.Url("/ingest"));
  CHECK(out ==
        "{\"error\": \"the Content-Type of an ingest request must be application/json\"} 415");
  // curl's default for --data is application/x-www-form-urlencoded.
  out = Curl("-o /dev/null -w '%{http_code}' --data-binary '{}' " + f.Url("/ingest"));
  CHECK(out == "415");

  auto dir = std::filesystem::temp_directory_path() /
             ("flowctl-server-test." + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string big = (dir / "big.json").string(), small = (dir / "small.json").string();
  std::ofstream(big) << "[\"" << std::string(4096, 'x') << "\"]";
  std::ofstream(small) << "[\"" << std::string(512, 'y') << "\"]";
  std::string json = "-H 'Content-Type: application/json' ";
  std::string too_big = "{\"error\": \"the request body is over 1024 bytes\"} 413";
  // Content-Length over the limit: refused from the header.
  CHECK(Curl("-o - -w ' %{http_code}' " + json + "--data-binary @" + big + " " +
             f.Url("/ingest")) == too_big);
  // Chunked: refused while reading the body.
  CHECK(Curl("-o - -w ' %{http_code}' " + json + "-H 'Transfer-Encoding: chunked' --data-binary @" +
             big + " " + f.Url("/ingest")) == too_big);
  // Expect: 100-continue gets the 100 (the body then arrives) or the 413 at once.
  auto start = Clock::now();
  CHECK(Curl("-o - -w ' %{http_code}' " + json + "-H 'Expect: 100-continue' --data-binary @" + big +
             " " + f.Url("/ingest")) == too_big);
  CHECK(Curl("-o /dev/null -w '%{http_code}' " + json +
             "-H 'Expect: 100-continue' --data-binary @" + small + " " + f.Url("/ingest")) ==
        "200");
  CHECK(Clock::now() - start < 900ms);  // curl waits 1 s for a 100 that never comes
  std::filesystem::remove_all(dir);

  // Only the request within the limit reached the backend.
  auto ingested = f.backend.ingested();
  REQUIRE(ingested.size() == 1);
  CHECK(ingested[0].size() == 516);
}

TEST_CASE("server: /healthz, /metrics, and everything else to Control") {
  Fixture f;
  CHECK(Curl("-o - -w ' %{http_code}' " + f.Url("/healthz")) == "ok\n 200");
  f.backend.ready = false;
  CHECK(Curl("-o - -w ' %{http_code}' " + f.Url("/healthz")) == "{\"error\": \"not ready\"} 503");
  CHECK(Curl("-o - -w ' %{http_code} %{content_type}' " + f.Url("/metrics")) ==
        "flow_documents_total 3\n 200 text/plain; version=0.0.4");

  CHECK(Curl("-o - -w ' %{http_code}' " + f.Url("/nope?x=1")) == "{\"error\": \"not found\"} 404");
  CHECK(Curl("-o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "
             "'{\"a\": 1}' " +
             f.Url("/materializations")) == "404");
  CHECK(f.backend.controls() ==
        std::vector<std::string>{"GET /nope?x=1 ", "POST /materializations {\"a\": 1}"});

  // /ingest/<collection> without an upgrade.
  CHECK(Curl("-o /dev/null -w '%{http_code}' " + f.Url("/ingest/acme")) == "400");
  CHECK(Curl("-o /dev/null -w '%{http_code}' -X POST " + f.Url("/ingest/acme")) == "405");
}

TEST_CASE("server: its own failures are log records, JSON with --log-format json") {
  testing::TempDir dir;
  std::string log_path = dir.path + "/stderr";
  Fixture f;
  ConfigureLog(LogLevel::kWarn, LogFormat::kJson);
  fflush(stderr);
  int saved = ::dup(STDERR_FILENO);
  int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(::dup2(fd, STDERR_FILENO) >= 0);
  ::close(fd);
  std::string answer = Curl("-o - -w ' %{http_code}' " + f.Url("/boom"));
  fflush(stderr);
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ConfigureLog(LogLevel::kWarn, LogFormat::kText);

  CHECK(answer == "{\"error\": \"the request was dropped without a response\"} 500");
  std::ifstream in(log_path);
  std::string line, rest;
  REQUIRE(std::getline(in, line));
  CHECK(line.rfind("{\"time\":", 0) == 0);
  CHECK(line.find("\"level\":\"error\",\"message\":\"server: the backend failed on /boom: "
                  "boom\"}") != std::string::npos);
  CHECK_FALSE(std::getline(in, rest));
}

TEST_CASE("server: a request that stalls, and an idle keep-alive connection, are cut off") {
  server::Options options;
  options.request_timeout = 300ms;
  Fixture f(options);

  // Headers begun, then nothing.
  int fd = Connect(f.port());
  SendAll(fd, "POST /ingest HTTP/1.1\r\n" + f.HostLine());
  auto start = Clock::now();
  Received r = ReadUntilClosed(fd, 3s);
  auto elapsed = Clock::now() - start;
  CHECK(r.closed);
  CHECK(r.data.empty());
  CHECK(elapsed >= 250ms);
  CHECK(elapsed < 2s);
  ::close(fd);

  // Headers complete, body stalls.
  fd = Connect(f.port());
  SendAll(fd, "POST /ingest HTTP/1.1\r\n" + f.HostLine() +
                  "Content-Type: application/json\r\nContent-Length: "
                  "100\r\n\r\n[1,");
  r = ReadUntilClosed(fd, 3s);
  CHECK(r.closed);
  CHECK(r.data.empty());
  ::close(fd);

  // A complete request is answered; the idle connection then closes.
  fd = Connect(f.port());
  SendAll(fd, "GET /healthz HTTP/1.1\r\n" + f.HostLine() + "\r\n");
  r = ReadUntilClosed(fd, 3s);
  CHECK(r.closed);
  CHECK(r.data.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  ::close(fd);
  CHECK(f.backend.ingested().empty());
}

TEST_CASE("server: a client sending one byte per 100 ms is cut off") {
  server::Options options;
  options.request_timeout = 300ms;
  Fixture f(options);
  std::string body = "[" + std::string(50, '1') + "]";
  std::string request =
      "POST /ingest HTTP/1.1\r\n" + f.HostLine() +
      "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body;
  int fd = Connect(f.port());
  auto start = Clock::now();
  size_t sent = 0;
  bool closed = false;
  while (sent < request.size() && !closed) {
    if (::send(fd, request.data() + sent, 1, MSG_NOSIGNAL) != 1) break;
    ++sent;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      char c;
      closed = ::recv(fd, &c, 1, 0) <= 0;
    }
  }
  auto elapsed = Clock::now() - start;
  ::close(fd);
  CHECK(closed);
  CHECK(sent < request.size());
  CHECK(elapsed < 1500ms);
  CHECK(f.backend.ingested().empty());
}

TEST_CASE("server: 500 concurrent connections each get their answer") {
  constexpr int kClients = 500;
  rlimit limit{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
  if (limit.rlim_cur < 4 * kClients) {
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 4 * kClients);
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  Fixture f;
  // All connections open at once, then every request, then every answer.
  std::vector<int> fds;
  for (int i = 0; i < kClients; ++i) fds.push_back(Connect(f.port()));
  for (int i = 0; i < kClients; ++i) {
    std::string body = "{\"i\": " + std::to_string(i) + "}";
    SendAll(fds[i], "POST /ingest HTTP/1.1\r\n" + f.HostLine() +
                        "Connection: close\r\nContent-Type: "
                        "application/json\r\n"
                        "Content-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body);
  }
  std::vector<std::string> answers(kClients);
  std::vector<bool> done(kClients, false);
  int left = kClients;
  auto deadline = Clock::now() + 8s;
  while (left > 0 && Clock::now() < deadline) {
    std::vector<pollfd> polls;
    std::vector<int> which;
    for (int i = 0; i < kClients; ++i) {
      if (!done[i]) {
        polls.push_back({fds[i], POLLIN, 0});
        which.push_back(i);
      }
    }
    if (::poll(polls.data(), polls.size(), 100) <= 0) continue;
    for (size_t k = 0; k < polls.size(); ++k) {
      if (polls[k].revents == 0) continue;
      int i = which[k];
      char buf[4096];
      ssize_t n = ::recv(fds[i], buf, sizeof buf, 0);
      if (n > 0) {
        answers[i].append(buf, static_cast<size_t>(n));
      } else {
        done[i] = true;
        --left;
      }
    }
  }
  CHECK(left == 0);
  int ok = 0;
  for (int i = 0; i < kClients; ++i) {
    ::close(fds[i]);
    std::string body = "{\"i\": " + std::to_string(i) + "}";
    std::string expect = "{\"Offsets\": {\"acme/items\": " + std::to_string(body.size()) + "}}";
    if (answers[i].rfind("HTTP/1.1 200 OK\r\n", 0) == 0 && answers[i].size() >= expect.size() &&
        answers[i].substr(answers[i].size() - expect.size()) == expect) {
      ++ok;
    }
  }
  CHECK(ok == kClients);
  CHECK(f.backend.ingested().size() == size_t{kClients});
}

TEST_CASE("server: connections beyond max_connections get 503") {
  server::Options options;
  options.max_connections = 2;
  Fixture f(options);
  std::string healthz = "GET /healthz HTTP/1.1\r\n" + f.HostLine() + "\r\n";
  int a = Connect(f.port()), b = Connect(f.port());
  for (int fd : {a, b}) {
    SendAll(fd, healthz);
    CHECK(ReadResponse(fd).rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  }
  int c = Connect(f.port());
  SendAll(c, healthz);
  Received r = ReadUntilClosed(c, 3s);
  CHECK(r.closed);
  CHECK(r.data.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0);
  CHECK(r.data.find("{\"error\": \"too many connections\"}") != std::string::npos);
  ::close(c);
  // A connection that ends makes room.
  ::close(a);
  CHECK(WaitUntil([&] {
    int d = Connect(f.port());
    SendAll(d, healthz);
    bool ok = ReadResponse(d).rfind("HTTP/1.1 200 OK\r\n", 0) == 0;
    ::close(d);
    return ok;
  }));
  ::close(b);
}

TEST_CASE("server: WebSocket protocol negotiation and refusal") {
  Fixture f;
  {
    WsClient c;
    REQUIRE(c.Connect(f.port(), "/ingest/acme%2Fitems", "x/v9, csv/v1, json/v1") ==
            beast::error_code());
    CHECK(c.Header(http::field::sec_websocket_protocol) == "csv/v1");
  }
  {
    WsClient c;
    REQUIRE(c.Connect(f.port(), "/ingest/acme%2Fitems", "tsv/v1") == beast::error_code());
    CHECK(c.Header(http::field::sec_websocket_protocol) == "tsv/v1");
  }
  {
    WsClient c;  // none offered: JSON lines, and no protocol in the answer
    REQUIRE(c.Connect(f.port(), "/ingest/other") == beast::error_code());
    CHECK(c.Header(http::field::sec_websocket_protocol).empty());
  }
  auto streams = f.backend.streams();
  REQUIRE(streams.size() == 3);
  CHECK(streams[0].collection == "acme/items");
  CHECK(streams[0].format == server::IngestFormat::kCsv);
  CHECK(streams[1].format == server::IngestFormat::kTsv);
  CHECK(streams[2].collection == "other");
  CHECK(streams[2].format == server::IngestFormat::kJson);
  {
    WsClient c;  // only unknown protocols
    CHECK(c.Connect(f.port(), "/ingest/acme%2Fitems", "x/v9, json/v2") ==
          websocket::error::upgrade_declined);
    CHECK(c.response.result_int() == 400);
  }
  {
    WsClient c;  // the backend refuses
    CHECK(c.Connect(f.port(), "/ingest/missing", "json/v1") == websocket::error::upgrade_declined);
    CHECK(c.response.result_int() == 404);
  }
  CHECK(f.backend.streams().size() == 3);
}

TEST_CASE("server: WebSocket messages in order, replies, and Close with text, code and reason") {
  Fixture f;
  WsClient c;
  REQUIRE(c.Connect(f.port(), "/ingest/acme%2Fitems", "json/v1") == beast::error_code());
  auto sink = f.backend.sink();
  auto peer = f.backend.peer();
  REQUIRE(sink != nullptr);
  std::vector<std::string> sent;
  for (int i = 0; i < 50; ++i) {
    sent.push_back("{\"i\": " + std::to_string(i) + "}\n");
    REQUIRE(c.Write(sent.back()) == beast::error_code());
  }
  REQUIRE(WaitUntil([&] { return sink->pushed_count() == sent.size(); }));
  CHECK(sink->pushed() == sent);

  // Replies sent from other threads.
  std::thread([peer] { peer->Send("{\"Offsets\": {}, \"Processed\": 50}"); }).join();
  std::string text;
  REQUIRE(c.Read(&text) == beast::error_code());
  CHECK(text == "{\"Offsets\": {}, \"Processed\": 50}");

  std::thread([peer] { peer->Close("row 3: not a number", 1007, "invalid data"); }).join();
  REQUIRE(c.Read(&text) == beast::error_code());
  CHECK(text == "row 3: not a number");
  CHECK(c.Read(&text) == websocket::error::closed);
  CHECK(c.ws.reason().code == 1007);
  CHECK(std::string(c.ws.reason().reason.data(), c.ws.reason().reason.size()) == "invalid data");
  REQUIRE(WaitUntil([&] { return sink->closed() == 1; }));

  // The peer outlives its stream: calls are no-ops.
  peer->Send("late");
  peer->Resume();
  peer->Close("late", 1000, "late");
  std::this_thread::sleep_for(50ms);
  CHECK(sink->closed() == 1);

  // A long reason is cut to the protocol's 123 bytes.
  WsClient d;
  REQUIRE(d.Connect(f.port(), "/ingest/acme%2Fitems") == beast::error_code());
  f.backend.peer()->Close("", 4000, std::string(200, 'r'));
  CHECK(d.Read(&text) == websocket::error::closed);
  CHECK(d.ws.reason().code == 4000);
  CHECK(d.ws.reason().reason.size() == 123);
}

TEST_CASE("server: WebSocket flow control stops reading until Resume") {
  server::Options options;
  options.stream_pending_limit = 10;
  options.stream_idle_timeout = 300ms;  // a paused stream is not idle
  Fixture f(options, /*count_pending=*/true);
  WsClient c;
  REQUIRE(c.Connect(f.port(), "/ingest/acme%2Fitems") == beast::error_code());
  auto sink = f.backend.sink();
  REQUIRE(c.Write("0123456789ab") == beast::error_code());  // 12 bytes pending: at the limit
  REQUIRE(c.Write("m2") == beast::error_code());
  REQUIRE(c.Write("m3") == beast::error_code());
  REQUIRE(WaitUntil([&] { return sink->pushed_count() == 1; }));
  std::this_thread::sleep_for(500ms);
  CHECK(sink->pushed_count() == 1);
  CHECK(sink->closed() == 0);

  sink->Drain();
  f.backend.peer()->Resume();
  REQUIRE(WaitUntil([&] { return sink->pushed_count() == 3; }));
  CHECK(sink->pushed() == std::vector<std::string>{"0123456789ab", "m2", "m3"});
  // 4 bytes pending: still reading.
  REQUIRE(c.Write("m4") == beast::error_code());
  REQUIRE(WaitUntil([&] { return sink->pushed_count() == 4; }));
  f.backend.peer()->Send("ok");
  std::string text;
  REQUIRE(c.Read(&text) == beast::error_code());
  CHECK(text == "ok");
}

TEST_CASE("server: WebSocket disconnect, oversized message and idle stream end the stream once") {
  server::Options options;
  options.max_frame = 1024;
  options.stream_idle_timeout = 300ms;
  Fixture f(options);
  std::string text;
  {
    // The client goes away without a close frame.
    WsClient c;
    REQUIRE(c.Connect(f.port(), "/ingest/acme%2Fitems") == beast::error_code());
    auto sink = f.backend.sink();
    REQUIRE(c.Write("a") == beast::error_code());
    REQUIRE(WaitUntil([&] { return sink->pushed_count() == 1; }));
    beast::get_lowest_layer(c.ws).socket().close();
    REQUIRE(WaitUntil([&] { return sink->closed() == 1; }));
    std::this_thread::sleep_for(100ms);
    CHECK(sink->closed() == 1);
  }
  {
    WsClient c;
    REQUIRE(c.Connect(f.port(), "/ingest/acme%2Fitems") == beast::error_code());
    auto sink = f.backend.sink();
    (void)c.Write(std::string(2000, 'x'));  // may fail: the server closes while it arrives
    CHECK(c.Read(&text) != beast::error_code());
    REQUIRE(WaitUntil([&] { return sink->closed() == 1; }));
    CHECK(sink->pushed_count() == 0);
  }
  {
    WsClient c;
    REQUIRE(c.Connect(f.port(), "/ingest/acme%2Fitems") == beast::error_code());
    auto sink = f.backend.sink();
    auto start = Clock::now();
    CHECK(c.Read(&text) == websocket::error::closed);
    CHECK(c.ws.reason().code == 1001);
    CHECK(Clock::now() - start >= 250ms);
    REQUIRE(WaitUntil([&] { return sink->closed() == 1; }));
  }
}

TEST_CASE("server: Stop ends streams once and is idempotent; a port in use is an error") {
  auto f = std::make_unique<Fixture>();
  WsClient c;
  REQUIRE(c.Connect(f->port(), "/ingest/acme%2Fitems") == beast::error_code());
  auto sink = f->backend.sink();
  auto peer = f->backend.peer();
  f->server->Stop();
  CHECK(sink->closed() == 1);
  std::string text;
  CHECK(c.Read(&text) != beast::error_code());
  f->server->Stop();
  peer->Send("after stop");  // a no-op
  CHECK(sink->closed() == 1);

  Fixture g;
  TestBackend backend;
  server::Options options;
  options.port = g.port();
  auto started = server::Server::Start(options, &backend);
  REQUIRE_FALSE(started.ok());
  CHECK(started.error().code == Error::Code::kEnvironment);
  CHECK(started.error().message.find("127.0.0.1:" + std::to_string(g.port())) != std::string::npos);
}

TEST_CASE("guard: ParseOrigin reads scheme://host[:port] and nothing else") {
  auto o = server::ParseOrigin("http://LocalHost:3000");
  REQUIRE(o.has_value());
  CHECK(*o == server::Origin{"http", "localhost", 3000});
  CHECK(o->ToString() == "http://localhost:3000");
  CHECK(*server::ParseOrigin("https://example.com/") ==
        server::Origin{"https", "example.com", 443});
  CHECK(server::ParseOrigin("https://example.com")->ToString() == "https://example.com");
  CHECK(*server::ParseOrigin("http://[::1]:8081") == server::Origin{"http", "[::1]", 8081});
  CHECK(*server::ParseOrigin("ws://127.0.0.1") == server::Origin{"http", "127.0.0.1", 80});
  for (const char* bad : {"null", "", "localhost:3000", "file:///tmp/x.html", "http://",
                          "http://a/b", "http://a?x", "http://user@a", "http://a:99999",
                          "http://a:x", "http://[::1", "http://a b", "chrome-extension://abc"}) {
    CAPTURE(bad);
    CHECK_FALSE(server::ParseOrigin(bad).has_value());
  }
}

TEST_CASE("guard: Host must be loopback or the --host, on the server's port (DNS rebinding)") {
  server::RequestGuard loopback("127.0.0.1", 8081, {});
  for (const char* ok : {"127.0.0.1:8081", "localhost:8081", "LOCALHOST:8081", "[::1]:8081",
                         "127.6.7.8:8081", "[::ffff:127.0.0.1]:8081"}) {
    CAPTURE(ok);
    CHECK_FALSE(loopback.CheckHost(ok, 1, 11).has_value());
  }
  for (const char* bad : {"evil.example:8081", "evil.example", "127.0.0.1:8082", "127.0.0.1",
                          "localhost", "127.0.0.1.evil.example:8081", "localhost.evil.example:8081",
                          "localhost.:8081", "[::2]:8081", "10.0.0.1:8081", "", ":8081", "a b:8081",
                          "127.0.0.1:8081x", "[::1]8081", "127.1:8081"}) {
    CAPTURE(bad);
    auto refused = loopback.CheckHost(bad, 1, 11);
    REQUIRE(refused.has_value());
    CHECK(refused->status == 403);
    CHECK(refused->message.find("DNS rebinding") != std::string::npos);
    CHECK(refused->message.find("docs/security.md") != std::string::npos);
  }
  // No Host: HTTP/1.1 requires one; HTTP/1.0 clients (never a browser) may omit it.
  CHECK(loopback.CheckHost("", 0, 11)->status == 400);
  CHECK_FALSE(loopback.CheckHost("", 0, 10).has_value());
  CHECK(loopback.CheckHost("127.0.0.1:8081", 2, 11)->status == 400);

  // Port 80: a Host without a port means 80.
  server::RequestGuard on80("127.0.0.1", 80, {});
  CHECK_FALSE(on80.CheckHost("localhost", 1, 11).has_value());
  CHECK_FALSE(on80.CheckHost("localhost:80", 1, 11).has_value());

  // --host NAME: that name too, in any case; other names are still refused.
  server::RequestGuard named("devbox.lan", 9000, {});
  CHECK_FALSE(named.CheckHost("devbox.lan:9000", 1, 11).has_value());
  CHECK_FALSE(named.CheckHost("DevBox.LAN:9000", 1, 11).has_value());
  CHECK_FALSE(named.CheckHost("localhost:9000", 1, 11).has_value());
  CHECK(named.CheckHost("evil.example:9000", 1, 11).has_value());
  // --host ADDRESS: that address, however it is written.
  server::RequestGuard v6("fd00::5", 9000, {});
  CHECK_FALSE(v6.CheckHost("[fd00:0::5]:9000", 1, 11).has_value());
  CHECK(v6.CheckHost("[fd00::6]:9000", 1, 11).has_value());
  // Every address (0.0.0.0, ::): any IP literal (it cannot be rebound), never a foreign name.
  for (const char* any : {"0.0.0.0", "::", "[::]"}) {
    CAPTURE(any);
    server::RequestGuard all(any, 8081, {});
    CHECK_FALSE(all.CheckHost("192.168.1.5:8081", 1, 11).has_value());
    CHECK_FALSE(all.CheckHost("[fe80::1]:8081", 1, 11).has_value());
    CHECK_FALSE(all.CheckHost("localhost:8081", 1, 11).has_value());
    CHECK(all.CheckHost("evil.example:8081", 1, 11).has_value());
    CHECK(all.CheckHost("192.168.1.5:8082", 1, 11).has_value());
  }
}

TEST_CASE("guard: Origin must be absent, the server's own, or allowed") {
  server::RequestGuard g("127.0.0.1", 8081, {*server::ParseOrigin("http://localhost:3000")});
  CHECK_FALSE(g.CheckOrigin("", 0).has_value());  // curl, scripts, flowctl: no browser
  for (const char* ok : {"http://127.0.0.1:8081", "http://localhost:8081", "http://[::1]:8081",
                         "http://LOCALHOST:8081", "http://localhost:3000"}) {
    CAPTURE(ok);
    CHECK_FALSE(g.CheckOrigin(ok, 1).has_value());
  }
  for (const char* bad : {"http://evil.example", "https://127.0.0.1:8081", "http://127.0.0.1:8082",
                          "http://localhost:3001", "http://127.0.0.1", "null", "file://", ""}) {
    CAPTURE(bad);
    auto refused = g.CheckOrigin(bad, 1);
    REQUIRE(refused.has_value());
    CHECK(refused->status == 403);
    CHECK(refused->message.find("--allow-origin") != std::string::npos);
  }
  // The refusal says how to allow the page.
  CHECK(g.CheckOrigin("http://Evil.example:8000", 1)
            ->message.find("restart develop with `--allow-origin "
                           "http://evil.example:8000`") != std::string::npos);
  CHECK(g.CheckOrigin("http://localhost:3000", 2)->status == 403);
  // The --host is an own origin too.
  server::RequestGuard named("devbox.lan", 9000, {});
  CHECK_FALSE(named.CheckOrigin("http://devbox.lan:9000", 1).has_value());
  CHECK(named.CheckOrigin("http://devbox.lan:9001", 1).has_value());
}

TEST_CASE("server: a foreign Origin or Host is refused before the backend sees anything") {
  Fixture f;
  std::string json =
      "-H 'Content-Type: application/json' --data-binary '{\"acme/items\": [{\"id\": 1}]}' ";
  std::string evil = "-H 'Origin: http://evil.example' ";
  std::string out = Curl("-o - -w ' %{http_code}' " + evil + json + f.Url("/ingest"));
  CHECK(out.substr(out.size() - 4) == " 403");
  CHECK(out.find("refused a request from the web page at `http://evil.example`") !=
        std::string::npos);
  CHECK(out.find("--allow-origin http://evil.example") != std::string::npos);
  // A browser's no-cors text/plain POST carries its Origin.
  CHECK(Curl("-o /dev/null -w '%{http_code}' " + evil +
             "-H 'Content-Type: text/plain' --data-binary x " + f.Url("/materializations")) ==
        "403");
  // Its CORS preflight, and a GET of the metrics.
  CHECK(Curl("-o /dev/null -w '%{http_code}' -X OPTIONS " + evil +
             "-H 'Access-Control-Request-Method: POST' " + f.Url("/ingest")) == "403");
  CHECK(Curl("-o /dev/null -w '%{http_code}' " + evil + f.Url("/metrics")) == "403");
  // A page opened from a file or a sandboxed frame: Origin null.
  CHECK(Curl("-o /dev/null -w '%{http_code}' -H 'Origin: null' " + json + f.Url("/ingest")) ==
        "403");

  // DNS rebinding: the page's own name, now resolving to 127.0.0.1.
  std::string port = std::to_string(f.port());
  out = Curl("-o - -w ' %{http_code}' -H 'Host: rebind.evil.example:" + port + "' " + json +
             f.Url("/ingest"));
  CHECK(out.substr(out.size() - 4) == " 403");
  CHECK(out.find("DNS rebinding") != std::string::npos);
  CHECK(Curl("-o /dev/null -w '%{http_code}' -H 'Host: rebind.evil.example:" + port + "' " +
             f.Url("/healthz")) == "403");
  // Same-origin-looking request on another port of loopback.
  CHECK(Curl("-o /dev/null -w '%{http_code}' -H 'Host: 127.0.0.1:1' " + f.Url("/healthz")) ==
        "403");
  CHECK(f.backend.ingested().empty());
  CHECK(f.backend.controls().empty());

  {
    WsClient c;  // a page's WebSocket
    CHECK(c.Connect(f.port(), "/ingest/acme%2Fitems", "", "http://evil.example") ==
          websocket::error::upgrade_declined);
    CHECK(c.response.result_int() == 403);
    CHECK(c.response.body().find("--allow-origin") != std::string::npos);
  }
  {
    WsClient c;  // the same through a rebound name
    CHECK(c.Connect(f.port(), "/ingest/acme%2Fitems", "", "", "rebind.evil.example:" + port) ==
          websocket::error::upgrade_declined);
    CHECK(c.response.result_int() == 403);
  }
  CHECK(f.backend.streams().empty());

  // Without an Origin (curl, scripts, flowctl) and from the server's own origin: served.
  CHECK(Curl("-o /dev/null -w '%{http_code}' " + json + f.Url("/ingest")) == "200");
  CHECK(Curl("-o /dev/null -w '%{http_code}' -H 'Origin: http://localhost:" + port + "' " + json +
             "http://localhost:" + port + "/ingest") == "200");
  {
    WsClient c;
    CHECK(c.Connect(f.port(), "/ingest/acme%2Fitems", "", "http://127.0.0.1:" + port) ==
          beast::error_code());
  }
  CHECK(f.backend.ingested().size() == 2);
  CHECK(f.backend.streams().size() == 1);
}

TEST_CASE("server: the control API requires application/json") {
  Fixture f;
  std::string body =
      "--data-binary '{\"target\": \"t\", \"collection\": \"c\", \"table\": \"x\"}' ";
  std::string out = Curl("-o - -w ' %{http_code}' -H 'Content-Type: text/plain' " + body +
                         f.Url("/materializations"));
  CHECK(out ==
        "{\"error\": \"the Content-Type of a request to /materializations must be "
        "application/json\"} 415");
  // curl's default (a form), and none at all.
  CHECK(Curl("-o /dev/null -w '%{http_code}' " + body + f.Url("/materializations")) == "415");
  CHECK(Curl("-o /dev/null -w '%{http_code}' -X POST -H 'Content-Type:' " +
             f.Url("/materializations")) == "415");
  CHECK(Curl("-o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: multipart/form-data; "
             "boundary=x' " +
             body + f.Url("/other")) == "415");
  // /ingest too (as before), also when a browser labels JSON text/plain.
  CHECK(Curl("-o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' --data-binary '{}' " +
             f.Url("/ingest")) == "415");
  CHECK(f.backend.controls().empty());
  CHECK(f.backend.ingested().empty());
  // JSON goes through; a GET needs no type.
  CHECK(Curl("-o /dev/null -w '%{http_code}' -H 'Content-Type: application/json; charset=utf-8' " +
             body + f.Url("/materializations")) == "404");
  CHECK(Curl("-o /dev/null -w '%{http_code}' " + f.Url("/materializations")) == "404");
  CHECK(f.backend.controls().size() == 2);
}

TEST_CASE("server: --allow-origin lets that origin's pages in, with CORS answers") {
  server::Options options;
  options.allow_origins = {*server::ParseOrigin("http://localhost:3000")};
  Fixture f(options);
  std::string allowed = "-H 'Origin: http://localhost:3000' ";
  // The preflight a browser sends before a fetch with a JSON body.
  std::string out = Curl(
      "-D - -o /dev/null -X OPTIONS " + allowed +
      "-H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: content-type' "
      "-H 'Access-Control-Request-Private-Network: true' " +
      f.Url("/ingest"));
  CHECK(out.rfind("HTTP/1.1 204 No Content\r\n", 0) == 0);
  CHECK(out.find("\r\nAccess-Control-Allow-Origin: http://localhost:3000\r\n") !=
        std::string::npos);
  CHECK(out.find("\r\nAccess-Control-Allow-Methods: GET, PUT, POST\r\n") != std::string::npos);
  CHECK(out.find("\r\nAccess-Control-Allow-Headers: Content-Type\r\n") != std::string::npos);
  CHECK(out.find("\r\nAccess-Control-Allow-Private-Network: true\r\n") != std::string::npos);
  // The request, whose answer the page may read.
  out = Curl("-D - -o /dev/null " + allowed +
             "-H 'Content-Type: application/json' --data-binary '{}' " + f.Url("/ingest"));
  CHECK(out.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(out.find("\r\nAccess-Control-Allow-Origin: http://localhost:3000\r\n") !=
        std::string::npos);
  CHECK(out.find("\r\nVary: Origin\r\n") != std::string::npos);
  // Still JSON only, and still no foreign Host.
  CHECK(Curl("-o /dev/null -w '%{http_code}' " + allowed +
             "-H 'Content-Type: text/plain' --data-binary '{}' " + f.Url("/ingest")) == "415");
  CHECK(Curl("-o /dev/null -w '%{http_code}' " + allowed + "-H 'Host: localhost:3000' " +
             f.Url("/healthz")) == "403");
  // Other origins, and a request without one (no CORS headers), as before.
  CHECK(Curl("-o /dev/null -w '%{http_code}' -H 'Origin: http://localhost:3001' " +
             f.Url("/healthz")) == "403");
  out = Curl("-D - -o /dev/null " + f.Url("/healthz"));
  CHECK(out.find("Access-Control-Allow-Origin") == std::string::npos);
  {
    WsClient c;
    CHECK(c.Connect(f.port(), "/ingest/acme%2Fitems", "", "http://localhost:3000") ==
          beast::error_code());
  }
  CHECK(f.backend.ingested().size() == 1);
  CHECK(f.backend.streams().size() == 1);
}

TEST_CASE("server protocol: a stream's protocol is the first offered one it speaks") {
  server::ProtocolChoice none = server::ChooseProtocol({});
  CHECK(!none.offered);
  CHECK(!none.format);
  server::ProtocolChoice csv = server::ChooseProtocol({" x/v2 , csv/v1", "tsv/v1"});
  CHECK(csv.offered);
  CHECK(csv.format == server::IngestFormat::kCsv);
  CHECK(csv.protocol == "csv/v1");
  server::ProtocolChoice unknown = server::ChooseProtocol({"json/v2, ,", "CSV/v1"});
  CHECK(unknown.offered);
  CHECK(!unknown.format);
  CHECK(server::ChooseProtocol({" , "}).offered == false);
}

TEST_CASE("server protocol: content types, close codes and close reasons") {
  CHECK(server::IsJsonType("application/json"));
  CHECK(server::IsJsonType(" Application/JSON ; charset=utf-8"));
  CHECK(!server::IsJsonType("application/jsonl"));
  CHECK(!server::IsJsonType("text/plain"));
  CHECK(server::JsonError("a \"b\"") == "{\"error\": \"a \\\"b\\\"\"}");
  CHECK(server::SendableCloseCode(1007) == 1007);
  CHECK(server::SendableCloseCode(4000) == 4000);
  CHECK(server::SendableCloseCode(1005) == 1011);
  CHECK(server::SendableCloseCode(999) == 1011);
  CHECK(server::TruncateReason("short") == "short");
  std::string reason(server::kMaxCloseReason - 1, 'a');
  reason += "\xc3\xa9";  // a 2-byte UTF-8 sequence across the limit
  CHECK(server::TruncateReason(reason) == std::string(server::kMaxCloseReason - 1, 'a'));
}
