#include "catalog/fetch.h"

#include <algorithm>
#include <curl/curl.h>
#include <fmt/format.h>

#include "base/files.h"
#include "base/url.h"

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

struct Body {
  std::string text;
  bool too_big = false;
};

size_t Append(char* data, size_t size, size_t n, void* user) {
  auto* out = static_cast<Body*>(user);
  if (out->text.size() + size * n > kMaxResourceBytes) {
    out->too_big = true;
    return 0;  // ends the transfer
  }
  out->text.append(data, size * n);
  return size * n;
}

Result<std::string> HttpGet(const std::string& url) {
  static bool initialised = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  (void)initialised;
  CURL* curl = curl_easy_init();
  if (!curl) return Error::Env("cannot initialise libcurl");
  Body body;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);  // seconds
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);         // seconds
  // Refused up front when the server announces the size; Append stops the others.
  curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxResourceBytes));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "flowctl");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  if (body.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
    return Error::User(
        fmt::format("cannot fetch {}: the response is larger than the limit of {} MiB "
                    "for a {}",
                    url, kMaxResourceBytes >> 20, kWhat));
  }
  if (rc != CURLE_OK) {
    return Error::User(fmt::format("cannot fetch {}: {}", url,
                                   errbuf[0] ? errbuf : curl_easy_strerror(rc)));
  }
  if (status >= 400) return Error::User(fmt::format("cannot fetch {}: HTTP status {}", url, status));
  return std::move(body.text);
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
