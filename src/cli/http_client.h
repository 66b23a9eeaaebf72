// A small HTTP client (on http/client.h) for commands that talk to a running `develop`: `flowctl
// ingest --url` and `flowctl materialize` into a develop's data directory.
#pragma once

#include <string>

#include "base/result.h"

namespace flow::cli {

struct HttpResponse {
  long status = 0;
  std::string body;
};

// Sends one request. Connection failures are environment errors naming the URL.
Result<HttpResponse> HttpRequest(const std::string& method, const std::string& url, const std::string& body,
                                 const std::string& content_type);

// The message of a JSON error body (`{"error": "..."}`), else the body itself.
std::string ErrorOfBody(const std::string& body);

}  // namespace flow::cli
