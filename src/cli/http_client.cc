#include "cli/http_client.h"

#include <chrono>

#include <fmt/format.h>
#include <rapidjson/document.h>

#include "http/client.h"

namespace flow::cli {

Result<HttpResponse> HttpRequest(const std::string& method, const std::string& url, const std::string& body,
                                 const std::string& content_type) {
  http::Request request;
  request.method = method;
  request.url = url;
  request.body = body;
  request.headers = {"Content-Type: " + content_type};
  request.connect_timeout = std::chrono::milliseconds(5000);
  http::Failure failure;
  auto response = http::Perform(request, &failure);
  if (!response) return Error::Env(fmt::format("{} {}: {}", method, url, failure.summary));
  return HttpResponse{response->status, std::move(response->body)};
}

std::string ErrorOfBody(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  if (!d.HasParseError() && d.IsObject() && d.HasMember("error") && d["error"].IsString()) {
    return d["error"].GetString();
  }
  size_t end = body.find_last_not_of(" \t\r\n");
  return end == std::string::npos ? std::string() : body.substr(0, end + 1);
}

}  // namespace flow::cli
