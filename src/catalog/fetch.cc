#include "catalog/fetch.h"

#include <algorithm>
#include <chrono>
#include <fmt/format.h>

#include "base/files.h"
#include "base/url.h"
#include "http/client.h"

namespace flow::catalog {

Fetcher::Fetcher(std::vector<std::pair<std::string, std::string>> resource_map)
    : map_(std::move(resource_map)) {
  std::sort(map_.begin(), map_.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

bool Fetcher::ParseMapping(const std::string& arg, std::pair<std::string, std::string>* out) {
  auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  *out = {arg.substr(0, eq), arg.substr(eq + 1)};
  return true;
}

namespace {

const char kWhat[] = "catalog source or schema";

Result<std::string> HttpGet(const std::string& url) {
  http::Request request;
  request.url = url;
  request.max_redirects = 5;
  request.connect_timeout = std::chrono::seconds(10);
  request.timeout = std::chrono::seconds(60);
  request.max_response_bytes = kMaxResourceBytes;
  http::Failure failure;
  auto response = http::Perform(request, &failure);
  if (!response && failure.kind == http::Failure::Kind::kTooLarge) {
    return Error::User(
        fmt::format("cannot fetch {}: the response is larger than the limit of {} MiB "
                    "for a {}",
                    url, kMaxResourceBytes >> 20, kWhat));
  }
  if (!response)
    return Error::User(fmt::format("cannot fetch {}: {}", url, response.error().message));
  if (response->status >= 400) {
    return Error::User(fmt::format("cannot fetch {}: HTTP status {}", url, response->status));
  }
  return std::move(response->body);
}

}  // namespace

Result<std::string> Fetcher::Fetch(const std::string& url) {
  if (auto it = preloaded_.find(url); it != preloaded_.end()) return it->second;
  for (const auto& [prefix, dir] : map_) {
    if (url.rfind(prefix, 0) == 0) {
      std::string rest = PercentDecode(url.substr(prefix.size()));
      std::string path = dir;
      if (!path.empty() && path.back() != '/' && !rest.empty() && rest.front() != '/') path += '/';
      path += rest;
      auto r = ReadRegularFile(path, kMaxResourceBytes, kWhat);
      if (!r) {
        return Error::User(fmt::format("{} (via --resource-map {}={})", r.error().message, prefix, dir));
      }
      return r;
    }
  }
  if (IsFileUrl(url)) return ReadRegularFile(FilePathOfUrl(url), kMaxResourceBytes, kWhat);
  if (IsHttpUrl(url)) return HttpGet(url);
  return Error::User(fmt::format("cannot read {}: unsupported URL scheme", url));
}

}  // namespace flow::catalog
