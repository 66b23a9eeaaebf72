// HTTP requests for flowctl's clients: fetching catalog sources and schemas by URL, remote
// lambdas and commands talking to a running `develop`. The only user of libcurl: no other
// file includes <curl/curl.h>, and only this library links it. A Session is used by one
// thread; separate Sessions may be used from separate threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace flow::http {

struct Request {
  std::string method = "GET";
  std::string url;                   // http or https
  std::string_view body;             // the body of any method but GET; not copied
  std::vector<std::string> headers;  // "Name: value"; "Name:" drops one libcurl would add
  std::chrono::milliseconds connect_timeout{0};  // 0: libcurl's default (300 s)
  std::chrono::milliseconds timeout{0};          // the whole request; 0: none
  size_t max_response_bytes = 0;                 // 0: no limit
  long max_redirects = 0;                        // redirects followed (0: none followed)
  bool accept_compressed = false;                // offer every encoding libcurl decodes
  // Polled at least once a second during the request: true aborts it (Failure::kCancelled).
  std::function<bool()> cancelled;
};

struct Response {
  long status = 0;  // the HTTP status of the (last, after redirects) response
  std::string body;
};

// Why a request got no complete response (Perform's error); each caller words it itself.
struct Failure {
  enum class Kind {
    kTooLarge,   // the response exceeds Request::max_response_bytes
    kCancelled,  // Request::cancelled said so
    kTimedOut,   // Request::timeout or connect_timeout passed
    kOther,      // cannot connect, resolve, TLS, protocol errors, ...
  };
  Kind kind = Kind::kOther;
  bool connected = false;  // whether a connection was made (a kTimedOut server did accept)
  std::string summary;     // libcurl's one-line name of the error ("Couldn't connect to server")
};

// A connection that stays open between requests to the same server (keep-alive).
class Session {
 public:
  Session();
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Sends `request` and fills `out` (its body is cleared first; its capacity is kept for
  // the next request). Any status is a response. No response is an environment error
  // whose message is libcurl's detailed one ("Failed to connect to localhost port 1 after
  // 0 ms: Connection refused"), or "cannot initialise libcurl"; `failure`, when given,
  // says why. Requests carry `User-Agent: flowctl` and TCP keep-alive.
  Result<bool> Perform(const Request& request, Response* out, Failure* failure = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One request on a Session of its own.
Result<Response> Perform(const Request& request, Failure* failure = nullptr);

}  // namespace flow::http
