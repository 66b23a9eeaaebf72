// Fetching catalog resources by URL: `file://` from disk, `http(s)://` over the network
// (http/client.h) unless a `--resource-map PREFIX=DIR` rewrites the URL to a file under
// DIR. Not thread-safe.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"

namespace flow::catalog {

// Catalog sources and schemas are configuration, not data: each file or HTTP response may
// hold at most this many bytes. Files must be regular files (not FIFOs or devices).
constexpr size_t kMaxResourceBytes = 64u << 20;

class Fetcher {
 public:
  // `resource_map`: (URL prefix, directory) pairs; the longest matching prefix wins.
  explicit Fetcher(std::vector<std::pair<std::string, std::string>> resource_map = {});

  // Returns the content at `url` (no fragment), at most kMaxResourceBytes. Errors say what
  // could not be read and why.
  Result<std::string> Fetch(const std::string& url);

  // Serves these URLs from memory (e.g. the resources of a built catalog), before anything
  // else; other URLs are fetched as usual.
  void Preload(std::map<std::string, std::string> contents) { preloaded_ = std::move(contents); }

  // Parses "PREFIX=DIR"; returns false when there is no '='.
  static bool ParseMapping(const std::string& arg, std::pair<std::string, std::string>* out);

 private:
  std::vector<std::pair<std::string, std::string>> map_;
  std::map<std::string, std::string> preloaded_;
};

}  // namespace flow::catalog
