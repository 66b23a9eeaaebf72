// Tests of src/http (the libcurl adapter) against a one-shot server on a loopback socket:
// status and body, the request's method, headers and body, the response limit, and why a
// request failed (refused, timed out after connecting, cancelled).
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "http/client.h"

using namespace flow;

namespace {

// Accepts one connection, reads the request (headers and a Content-Length body), answers
// `reply` (none while it is empty, until the client goes away) and closes.
class OneShotServer {
 public:
  explicit OneShotServer(std::string reply) : reply_(std::move(reply)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(fd_, 1) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~OneShotServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/x"; }
  const std::string& request() const { return request_; }  // after the response

 private:
  void Serve() {
    pollfd p{fd_, POLLIN, 0};
    while (!stop_ && poll(&p, 1, 50) == 0) {
    }
    if (stop_) return;
    int c = accept(fd_, nullptr, nullptr);
    if (c < 0) return;
    char buf[4096];
    size_t want = std::string::npos;
    while (request_.size() < want) {
      pollfd q{c, POLLIN, 0};
      if (poll(&q, 1, 50) == 0) {
        if (stop_) break;
        continue;
      }
      ssize_t n = read(c, buf, sizeof buf);
      if (n <= 0) break;
      request_.append(buf, static_cast<size_t>(n));
      size_t end = request_.find("\r\n\r\n");
      if (end != std::string::npos && want == std::string::npos) {
        size_t cl = request_.find("Content-Length: ");
        want = end + 4 + (cl == std::string::npos ? 0 : std::stoul(request_.substr(cl + 16)));
      }
    }
    if (!reply_.empty()) {
      (void)!write(c, reply_.data(), reply_.size());
    } else {
      for (pollfd q{c, POLLIN, 0}; !stop_;) {  // wait for the client to give up
        if (poll(&q, 1, 50) > 0 && read(c, buf, sizeof buf) <= 0) break;
      }
    }
    close(c);
  }

  std::string reply_;
  int fd_ = -1;
  int port_ = 0;
  std::string request_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

TEST_CASE("http: a response's status and body, any status") {
  OneShotServer server(
      "HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\nConnection: close\r\n\r\nnope!");
  http::Request request;
  request.url = server.url();
  auto r = http::Perform(request);
  REQUIRE(r.ok());
  CHECK(r->status == 404);
  CHECK(r->body == "nope!");
}

TEST_CASE("http: the method, headers and body are sent") {
  OneShotServer server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
  http::Session session;
  http::Request request;
  request.method = "PUT";
  request.url = server.url();
  request.body = "[[1]]";
  request.headers = {"Content-Type: application/json", "Expect:"};
  http::Response response;
  REQUIRE(session.Perform(request, &response).ok());
  CHECK(response.status == 200);
  CHECK(response.body == "ok");
  CHECK(server.request().rfind("PUT /x HTTP/1.1\r\n", 0) == 0);
  CHECK(server.request().find("\r\nContent-Type: application/json\r\n") != std::string::npos);
  CHECK(server.request().find("\r\nUser-Agent: flowctl\r\n") != std::string::npos);
  CHECK(server.request().find("Expect") == std::string::npos);
  CHECK(server.request().substr(server.request().size() - 5) == "[[1]]");
}

TEST_CASE("http: responses over the limit fail as too large") {
  for (std::string length : {"Content-Length: 20\r\n", ""}) {  // announced or not
    CAPTURE(length);
    OneShotServer server("HTTP/1.1 200 OK\r\n" + length +
                         "Connection: close\r\n\r\n01234567890123456789");
    http::Request request;
    request.url = server.url();
    request.max_response_bytes = 10;
    http::Failure failure;
    auto r = http::Perform(request, &failure);
    REQUIRE(!r.ok());
    CHECK(r.error().code == Error::Code::kEnvironment);
    CHECK(failure.kind == http::Failure::Kind::kTooLarge);
  }
}

TEST_CASE("http: a refused connection is an environment error with libcurl's messages") {
  std::string url;
  {
    OneShotServer closed("x");
    url = closed.url();
  }  // a port nobody listens on
  http::Request request;
  request.url = url;
  http::Failure failure;
  auto r = http::Perform(request, &failure);
  REQUIRE(!r.ok());
  CHECK(r.error().code == Error::Code::kEnvironment);
  CHECK(r.error().message.find("onnect") != std::string::npos);  // "Failed to connect to ..."
  CHECK(failure.kind == http::Failure::Kind::kOther);
  CHECK(failure.summary == "Couldn't connect to server");
  CHECK(!failure.connected);
}

TEST_CASE("http: a server that never answers times out after connecting, or is cancelled") {
  {
    OneShotServer silent("");
    http::Request request;
    request.url = silent.url();
    request.timeout = std::chrono::milliseconds(300);
    http::Failure failure;
    auto r = http::Perform(request, &failure);
    REQUIRE(!r.ok());
    CHECK(failure.kind == http::Failure::Kind::kTimedOut);
    CHECK(failure.connected);
  }
  {
    OneShotServer silent("");
    http::Request request;
    request.url = silent.url();
    auto start = std::chrono::steady_clock::now();
    request.cancelled = [start] {
      return std::chrono::steady_clock::now() - start > std::chrono::milliseconds(200);
    };
    http::Failure failure;
    auto r = http::Perform(request, &failure);
    REQUIRE(!r.ok());
    CHECK(failure.kind == http::Failure::Kind::kCancelled);
  }
}
