// Tests of src/lambda/remote against a real HTTP server (testdata_lambda/remote_server.js, run
// with Node.js on an ephemeral port): request shape for update and publish rows, responses
// turned into outputs, and the errors for bad statuses, bad responses and refused connections.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "lambda_harness.h"
#include "doc/parse.h"
#include "doc/value.h"
#include "lambda/lambda.h"
#include "lambda/remote.h"

using namespace flow;
using lambda::Row;

namespace {
using lambda::testing::Harness;
using lambda::testing::Json;

const char* const kServerScript = FLOWCTL_SOURCE_DIR "/tests/unit/testdata_lambda/remote_server.js";

// The server process and our ends of its pipes; the destructor kills and reaps it. A member
// of TestServer, so it is cleaned up even when TestServer's constructor fails a REQUIRE.
struct Child {
  pid_t pid = -1;
  int stdin_fd = -1;
  int stdout_fd = -1;

  ~Child() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (stdin_fd >= 0) close(stdin_fd);
    if (stdout_fd >= 0) close(stdout_fd);
  }
};

// The test server, started with `node`; no process survives a failed CHECK. The server also
// exits when its stdin (our pipe) closes, and the kernel kills it if this process dies first
// (PR_SET_PDEATHSIG).
class TestServer {
 public:
  TestServer() {
    int in[2], out[2];
    REQUIRE(pipe2(in, O_CLOEXEC) == 0);
    child_.stdin_fd = in[1];
    REQUIRE(pipe2(out, O_CLOEXEC) == 0);
    child_.stdout_fd = out[0];
    pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      dup2(in[0], STDIN_FILENO);
      dup2(out[1], STDOUT_FILENO);
      execlp("node", "node", kServerScript, static_cast<char*>(nullptr));
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    REQUIRE(pid > 0);
    child_.pid = pid;

    // The first line is the port; allow 10 s for Node.js to start.
    std::string line;
    pollfd pfd{child_.stdout_fd, POLLIN, 0};
    while (line.find('\n') == std::string::npos) {
      REQUIRE_MESSAGE(poll(&pfd, 1, 10000) == 1, "the test server printed no port within 10 s");
      char buf[64];
      ssize_t n = read(child_.stdout_fd, buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    if (line.find('\n') == std::string::npos) {
      int status = 0;
      waitpid(child_.pid, &status, 0);
      child_.pid = -1;
      bool no_node = WIFEXITED(status) && WEXITSTATUS(status) == 127;
      std::string why = no_node ? "`node` (Node.js) is not on PATH" : "it exited without printing its port";
      std::string message = std::string("cannot start the test server `node ") + kServerScript + "`: " + why;
      FAIL(message);
    }
    port_ = std::stoi(line);
  }

  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  Child child_;
  int port_ = 0;
};

// A TCP port bound on 127.0.0.1 but not listening: connections to it are refused, and no
// other test can take it while this object lives.
class RefusingPort {
 public:
  RefusingPort() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
  }
  ~RefusingPort() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};


std::string Texts(const std::vector<doc::Value>& docs) {
  std::string t = "[";
  for (size_t i = 0; i < docs.size(); ++i) t += (i ? "," : "") + Json(docs[i]);
  return t + "]";
}

// Invokes a lambda expected to fail; returns its error and the failed row.
std::pair<Error, int> Failure(const std::string& url, Harness& h, size_t rows = 2) {
  auto l = lambda::RemoteLambda::Make(url, false);
  std::vector<Row> batch;
  for (size_t i = 0; i < rows; ++i) batch.push_back({h.Parse(R"({"i":)" + std::to_string(i) + "}"), nullptr, nullptr, {}});
  lambda::Outputs out;
  int failed = 99;
  auto r = l->Invoke(batch, h.out_doc.GetAllocator(), &out, &failed);
  REQUIRE_FALSE(r.ok());
  return {r.error(), failed};
}

}  // namespace

TEST_CASE("lambda: remote update sends [source] rows and returns each row's documents") {
  TestServer server;
  Harness h;
  auto l = lambda::RemoteLambda::Make(server.Url("/echo"), false);
  std::vector<Row> rows = {{h.Parse(R"({"id":1,"name":"Ada"})"), nullptr, nullptr, {}},
                           // Update rows ignore register and previous even when set.
                           {h.Parse(R"({"id":2,"tags":["x",null]})"), h.Parse("5"), h.Parse("4"), {}}};
  lambda::Outputs out;
  int failed = 99;
  auto r = l->Invoke(rows, h.out_doc.GetAllocator(), &out, &failed);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(failed == -1);
  REQUIRE(out.size() == 2);
  CHECK(Texts(out[0]) ==
        R"([{"method":"PUT","contentType":"application/json","connection":1,"row":[{"id":1,"name":"Ada"}]},)"
        R"({"index":0}])");
  CHECK(Texts(out[1]) ==
        R"([{"method":"PUT","contentType":"application/json","connection":1,"row":[{"id":2,"tags":["x",null]}]},)"
        R"({"index":1}])");

  // The next batch reuses the connection (keep-alive); an empty batch sends nothing.
  r = l->Invoke({rows[1]}, h.out_doc.GetAllocator(), &out, &failed);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  REQUIRE(out.size() == 1);
  CHECK(out[0][0]["connection"].GetInt() == 1);
  CHECK(l->Invoke({}, h.out_doc.GetAllocator(), &out).ok());
  CHECK(out.empty());
}

TEST_CASE("lambda: remote publish sends [source, previous, register] rows") {
  TestServer server;
  Harness h;
  auto l = lambda::RemoteLambda::Make(server.Url("/echo"), true);
  std::vector<Row> rows = {
      {h.Parse(R"({"id":1})"), h.Parse(R"({"total":10})"), h.Parse(R"({"total":3})"), {}},
      // A publish row without register or previous sends nulls in their places.
      {h.Parse(R"({"id":2})"), nullptr, nullptr, {}}};
  lambda::Outputs out;
  auto r = l->Invoke(rows, h.out_doc.GetAllocator(), &out);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  REQUIRE(out.size() == 2);
  REQUIRE(out[0].size() == 2);
  CHECK(Json(out[0][0]["row"]) == R"([{"id":1},{"total":3},{"total":10}])");
  CHECK(Json(out[1][0]["row"]) == R"([{"id":2},null,null])");

  // Outputs live in the allocator passed to Invoke, not in the lambda.
  l.reset();
  CHECK(Json(out[1][1]) == R"({"index":1})");
}

TEST_CASE("lambda: remote bootstraps send a row of no arguments and ignore the answer") {
  TestServer server;
  Harness h;
  auto l = lambda::RemoteLambda::MakeBootstrap(server.Url("/echo"));
  lambda::Outputs out;
  auto r = l->Invoke({Row{}}, h.out_doc.GetAllocator(), &out);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  REQUIRE(out.size() == 1);
  CHECK(out[0].empty());
  // Whatever a bootstrap answers (here, JSON that is not the lambda protocol's) is fine...
  r = lambda::RemoteLambda::MakeBootstrap(server.Url("/notarray"))->Invoke({Row{}}, h.out_doc.GetAllocator(), &out);
  CHECK(r.ok());
  // ... as long as its status is 2xx.
  r = lambda::RemoteLambda::MakeBootstrap(server.Url("/status500"))->Invoke({Row{}}, h.out_doc.GetAllocator(), &out);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Error::Code::kUser);
  CHECK(r.error().message.find("answered HTTP 500: boom: the lambda failed") != std::string::npos);
}

TEST_CASE("lambda: remote non-2xx statuses are user errors with the body") {
  TestServer server;
  Harness h;
  auto [error, failed] = Failure(server.Url("/status500"), h);
  CHECK(error.code == Error::Code::kUser);
  CHECK(error.message == "remote lambda " + server.Url("/status500") + " answered HTTP 500: boom: the lambda failed");
  CHECK(failed == -1);

  auto [missing, f2] = Failure(server.Url("/nowhere"), h);
  CHECK(missing.message == "remote lambda " + server.Url("/nowhere") + " answered HTTP 404: no route /nowhere");
  CHECK(f2 == -1);

  // Long bodies are truncated.
  auto [long_error, f3] = Failure(server.Url("/long500"), h);
  std::string prefix = "remote lambda " + server.Url("/long500") + " answered HTTP 500: ";
  REQUIRE(long_error.message.rfind(prefix, 0) == 0);
  CHECK(long_error.message == prefix + std::string(500, 'x') + "…");
  CHECK(f3 == -1);
}

TEST_CASE("lambda: remote malformed responses are user errors") {
  TestServer server;
  Harness h;
  auto [malformed, failed] = Failure(server.Url("/malformed"), h);
  CHECK(malformed.code == Error::Code::kUser);
  CHECK(malformed.message.rfind("remote lambda " + server.Url("/malformed") + " answered malformed JSON: ", 0) ==
        0);
  CHECK(malformed.message.find(R"([[{"a":1}],)") != std::string::npos);
  CHECK(failed == -1);

  auto [not_array, f2] = Failure(server.Url("/notarray"), h);
  CHECK(not_array.code == Error::Code::kUser);
  CHECK(not_array.message == "remote lambda " + server.Url("/notarray") +
                                 " answered an object, not an array holding an array of output documents per row");
  CHECK(f2 == -1);

  auto [wrong_length, f3] = Failure(server.Url("/wronglength"), h, 3);
  CHECK(wrong_length.code == Error::Code::kUser);
  CHECK(wrong_length.message == "remote lambda " + server.Url("/wronglength") +
                                    " answered an array of 1 elements for 3 rows: it must hold one array of "
                                    "output documents per row");
  CHECK(f3 == -1);

  auto [element, f4] = Failure(server.Url("/elementnotarray"), h, 3);
  CHECK(element.code == Error::Code::kUser);
  CHECK(element.message == "remote lambda " + server.Url("/elementnotarray") +
                               " answered an object for row 1, not an array of output documents");
  CHECK(f4 == 1);
}

TEST_CASE("lambda: remote unreachable servers are environment errors") {
  RefusingPort port;
  Harness h;
  std::string url = "http://127.0.0.1:" + std::to_string(port.port()) + "/lambda";
  auto [error, failed] = Failure(url, h);
  CHECK(error.code == Error::Code::kEnvironment);
  CHECK(error.ExitCode() == kExitEnvironment);
  CHECK(error.message.rfind("remote lambda " + url + ": ", 0) == 0);
  CHECK(error.message.find("onnect") != std::string::npos);  // curl: "Failed to connect ... refused"
  CHECK(failed == -1);
}

TEST_CASE("lambda: remote servers that never answer time out (issue 16)") {
  TestServer server;
  Harness h;
  SUBCASE("the lambda timeout is a user error") {
    auto l = lambda::RemoteLambda::Make(server.Url("/hang"), false, std::chrono::milliseconds(500));
    lambda::Outputs out;
    int failed = 99;
    auto started = std::chrono::steady_clock::now();
    auto r = l->Invoke({{h.Parse("1"), nullptr, nullptr, {}}}, h.out_doc.GetAllocator(), &out, &failed);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Error::Code::kUser);
    CHECK(r.error().message == "remote lambda " + server.Url("/hang") +
                                   " did not answer within 0.5 s (the lambda timeout; set `lambdaTimeout` to "
                                   "allow longer)");
    CHECK(failed == -1);
    CHECK(secs < 3);
    // The lambda still works for the next request.
    auto echo = lambda::RemoteLambda::Make(server.Url("/echo"), false, std::chrono::milliseconds(2000));
    CHECK(echo->Invoke({{h.Parse("1"), nullptr, nullptr, {}}}, h.out_doc.GetAllocator(), &out).ok());
  }
  SUBCASE("a bootstrap too") {
    auto l = lambda::RemoteLambda::MakeBootstrap(server.Url("/hang"), std::chrono::milliseconds(300));
    lambda::Outputs out;
    auto r = l->Invoke({Row{}}, h.out_doc.GetAllocator(), &out);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("did not answer within 0.3 s") != std::string::npos);
  }
  SUBCASE("a stop request ends the wait") {
    auto l = lambda::RemoteLambda::Make(server.Url("/hang"), false, std::chrono::seconds(60));
    std::thread stopper([] {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      lambda::RequestStop();
    });
    lambda::Outputs out;
    auto started = std::chrono::steady_clock::now();
    auto r = l->Invoke({{h.Parse("1"), nullptr, nullptr, {}}}, h.out_doc.GetAllocator(), &out);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    stopper.join();
    lambda::ResetStop();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Error::Code::kEnvironment);
    CHECK(r.error().message == "the lambda was interrupted: flowctl is stopping");
    CHECK(secs < 2);
  }
}
