#include "lambda/node/cache.h"

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "lambda/node.h"

namespace flow::lambda {
namespace node {

// FNV-1a, and a multiply-rotate hash over 8-byte words.
std::string HashKey(std::string_view s) {
  uint64_t a = 0xcbf29ce484222325ull;
  for (unsigned char c : s) a = (a ^ c) * 0x100000001b3ull;
  uint64_t b = 0x9e3779b97f4a7c15ull ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    b = ((b ^ (w * 0xff51afd7ed558ccdull)) << 27 | (b ^ (w * 0xff51afd7ed558ccdull)) >> 37) *
        0xc4ceb9fe1a85ec53ull;
  }
  for (; i < s.size(); ++i) b = (b ^ static_cast<unsigned char>(s[i])) * 0xc4ceb9fe1a85ec53ull;
  b ^= b >> 33;
  return fmt::format("{:016x}{:016x}", a, b);
}

Result<bool> CreateDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Error::Env(fmt::format("cannot create {}: {}", dir, ec.message()));
  return true;
}

std::string TempSuffix() {
  static std::atomic<uint64_t> counter{0};
  return fmt::format(".tmp-{}-{}", getpid(), counter.fetch_add(1));
}

}  // namespace node

std::string DefaultNodeCacheDir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && xdg[0] == '/') {
    return std::string(xdg) + "/flowctl";
  }
  if (const char* home = std::getenv("HOME"); home && home[0])
    return std::string(home) + "/.cache/flowctl";
  return fmt::format("/tmp/flowctl-cache-{}", getuid());
}

}  // namespace flow::lambda
