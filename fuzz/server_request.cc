// Fuzz target: the HTTP/WebSocket request path of the ingestion server (src/server). The
// server runs once per process on a loopback port with a backend that answers at once;
// each input is sent as the raw bytes of one connection (requests, an upgrade and
// WebSocket frames after it), then the client half-closes and reads until the server
// closes. Invariants: the server answers with HTTP or nothing, and closes the connection
// within its request timeout (no stuck connection).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "fuzz.h"
#include "server/server.h"

using flow::fuzz::Check;
namespace server = flow::server;

namespace {

class Sink final : public server::StreamSink {
 public:
  explicit Sink(std::shared_ptr<server::StreamPeer> peer) : peer_(std::move(peer)) {}
  uint64_t Push(std::string message) override {
    // Answer now and then, and close on a message that asks for it, as the pipeline does.
    if (message == "close") {
      peer_->Close("{\"error\":\"closed\"}", 1007, "asked to close");
    } else {
      peer_->Send("{\"Processed\":" + std::to_string(message.size()) + "}");
    }
    return 0;
  }
  void Closed() override {}

 private:
  std::shared_ptr<server::StreamPeer> peer_;
};

class Backend final : public server::Backend {
 public:
  void Ingest(std::string body, server::Respond respond) override {
    respond({200, "{\"bytes\":" + std::to_string(body.size()) + "}"});
  }
  std::shared_ptr<server::StreamSink> OpenStream(const std::string& collection,
                                                 server::IngestFormat,
                                                 std::shared_ptr<server::StreamPeer> peer,
                                                 server::Response* refusal) override {
    if (collection != "acme/orders") {
      *refusal = {404, "{\"error\":\"no such collection\"}"};
      return nullptr;
    }
    return std::make_shared<Sink>(std::move(peer));
  }
  bool Ready() override { return true; }
  std::string Metrics() override { return "flowctl_up 1\n"; }
  void Control(const std::string& method, const std::string& target, std::string body,
               server::Respond respond) override {
    if (method == "GET" && target == "/collections") return respond({200, "[]"});
    (void)body;
    respond({404, "{\"error\":\"not found\"}"});
  }
};

constexpr auto kRequestTimeout = std::chrono::milliseconds(2000);

uint16_t Port() {
  static Backend backend;
  static std::unique_ptr<server::Server> s = [] {
    server::Options o;
    o.port = 0;
    o.max_body = 64 << 10;  // small limits, so that inputs reach them
    o.max_frame = 16 << 10;
    o.request_timeout = kRequestTimeout;
    o.stream_idle_timeout = kRequestTimeout;
    o.max_connections = 64;
    auto started = server::Server::Start(o, &backend);
    Check(started.ok(), "cannot start the server");
    return std::move(started.value());
  }();
  return s->port();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint16_t port = Port();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  Check(fd >= 0, "socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // A refusal that passes (a loopback port or queue briefly out, on a loaded machine) is
  // the machine's, not the server's: retried for up to 2 s; one that lasts breaks the
  // invariant, with its errno.
  int connected = -1, why = 0;
  for (int attempt = 0; attempt < 40; ++attempt) {
    connected = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    if (connected == 0) break;
    why = errno;
    if (why == EISCONN) {
      connected = 0;
      break;
    }
    ::close(fd);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    Check(fd >= 0, "socket() failed");
  }
  Check(connected == 0, std::string("connect() failed for 2 s: ") + std::strerror(why));
  // The server may answer and close before reading everything: EPIPE and ECONNRESET end
  // the sending, not the test.
  size_t sent = 0;
  while (sent < size) {
    ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string response;
  auto deadline = std::chrono::steady_clock::now() + 3 * kRequestTimeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    Check(left.count() > 0,
          "the server kept a half-closed connection open past its request timeout");
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;  // closed (or reset)
    if (response.size() < 64) response.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  Check(response.empty() || response.rfind("HTTP/1.", 0) == 0,
        "the server answered something other than HTTP");
  return 0;
}
