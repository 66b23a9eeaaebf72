#include "server/guard.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace flow::server {
namespace {

constexpr const char* kSeeDocs = "see docs/security.md";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// "80" → 80; nullopt unless 1 to 5 digits of at most 65535.
std::optional<uint16_t> ParsePort(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  uint32_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  if (n > 65535) return std::nullopt;
  return static_cast<uint16_t>(n);
}

// An authority's host and port: "name", "name:80", "[v6]", "[v6]:80". The host is returned
// lower-cased, an IPv6 literal without its brackets (`*ipv6` tells). An empty port (RFC 3986
// allows "name:") is the default.
bool SplitAuthority(std::string_view authority, uint16_t default_port, std::string* host,
                    uint16_t* port, bool* ipv6) {
  std::string_view rest;
  *ipv6 = false;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    *host = Lower(authority.substr(1, close - 1));
    *ipv6 = true;
    in6_addr a;
    if (::inet_pton(AF_INET6, host->c_str(), &a) != 1) return false;
    rest = authority.substr(close + 1);
  } else {
    size_t colon = authority.find(':');
    *host = Lower(authority.substr(0, colon));
    rest = colon == std::string_view::npos ? std::string_view() : authority.substr(colon);
  }
  if (host->empty()) return false;
  for (char c : *host) {
    // Nothing a name or an address literal does not hold (no spaces, '@', '/', ...).
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_' || (*ipv6 && c == ':');
    if (!ok) return false;
  }
  if (rest.empty() || rest == ":") {
    *port = default_port;
    return true;
  }
  if (rest.front() != ':') return false;
  auto p = ParsePort(rest.substr(1));
  if (!p) return false;
  *port = *p;
  return true;
}

struct Address {
  int family = 0;  // AF_INET, AF_INET6, or 0 for a name
  unsigned char bytes[16] = {};
  bool operator==(const Address& o) const {
    return family == o.family && std::memcmp(bytes, o.bytes, sizeof bytes) == 0;
  }
};

// The address a literal host denotes (family 0 for a name). IPv4 is strict dotted quad.
Address AddressOf(const std::string& host) {
  Address a;
  if (::inet_pton(AF_INET, host.c_str(), a.bytes) == 1) {
    a.family = AF_INET;
  } else if (::inet_pton(AF_INET6, host.c_str(), a.bytes) == 1) {
    a.family = AF_INET6;
  }
  return a;
}

bool IsLoopback(const std::string& host) {
  if (host == "localhost") return true;
  Address a = AddressOf(host);
  if (a.family == AF_INET) return a.bytes[0] == 127;
  if (a.family == AF_INET6) {
    static const unsigned char kLoopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a.bytes, kLoopback, 16) == 0) return true;
    return std::memcmp(a.bytes, kMapped, 12) == 0 && a.bytes[12] == 127;  // ::ffff:127.x.y.z
  }
  return false;
}

bool IsAny(const std::string& host) {
  Address a = AddressOf(host);
  if (a.family == 0) return false;
  return std::all_of(std::begin(a.bytes), std::end(a.bytes),
                     [](unsigned char b) { return b == 0; });
}

// The host as it appears in a URL: an IPv6 literal in brackets.
std::string UrlHost(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

}  // namespace

std::string Origin::ToString() const {
  bool default_port = (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
  return scheme + "://" + host + (default_port ? "" : ":" + std::to_string(port));
}

std::optional<Origin> ParseOrigin(std::string_view text) {
  size_t sep = text.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  std::string scheme = Lower(text.substr(0, sep));
  if (scheme == "ws") scheme = "http";
  if (scheme == "wss") scheme = "https";
  if (scheme != "http" && scheme != "https") return std::nullopt;
  std::string_view authority = text.substr(sep + 3);
  if (!authority.empty() && authority.back() == '/') authority.remove_suffix(1);
  if (authority.find_first_of("/?#@ ") != std::string_view::npos) return std::nullopt;
  Origin o;
  o.scheme = scheme;
  bool ipv6 = false;
  if (!SplitAuthority(authority, scheme == "http" ? 80 : 443, &o.host, &o.port, &ipv6))
    return std::nullopt;
  if (ipv6) o.host = "[" + o.host + "]";
  return o;
}

RequestGuard::RequestGuard(std::string bind_host, uint16_t port, std::vector<Origin> allowed)
    : port_(port), allowed_(std::move(allowed)) {
  bind_host_ = Lower(bind_host);
  if (bind_host_.size() >= 2 && bind_host_.front() == '[' && bind_host_.back() == ']') {
    bind_host_ = bind_host_.substr(1, bind_host_.size() - 2);
  }
  bind_any_ = IsAny(bind_host_);
  for (const char* h : {"127.0.0.1", "localhost", "[::1]"}) own_.push_back({"http", h, port_});
  Origin bound{"http", UrlHost(bind_host_), port_};
  if (!bind_host_.empty() && std::find(own_.begin(), own_.end(), bound) == own_.end())
    own_.push_back(bound);
}

std::optional<Refusal> RequestGuard::CheckHost(std::string_view header, size_t count,
                                               unsigned http_version) const {
  if (count == 0) {
    // HTTP/1.0 clients may send none (and no browser is one of them).
    if (http_version < 11) return std::nullopt;
    return Refusal{400, "the request has no Host header, which HTTP/1.1 requires"};
  }
  if (count > 1) return Refusal{400, "the request has more than one Host header"};
  std::string host;
  uint16_t port = 0;
  bool ipv6 = false;
  bool parsed = SplitAuthority(header, 80, &host, &port, &ipv6);
  bool ok = parsed && port == port_;
  if (ok) {
    Address a = AddressOf(host);
    bool bound = host == bind_host_ || (a.family != 0 && a == AddressOf(bind_host_));
    ok = IsLoopback(host) || bound || (bind_any_ && a.family != 0);
  }
  if (ok) return std::nullopt;
  std::string names = "localhost, 127.0.0.1, [::1]";
  if (bind_any_) {
    names += " or any IP address";
  } else if (!IsLoopback(bind_host_)) {
    names += " or " + UrlHost(bind_host_);
  } else {
    names = "localhost, 127.0.0.1 or [::1]";
  }
  return Refusal{
      403,
      "refused a request addressed to `" + std::string(header) +
          "` (its Host header): flowctl develop answers only requests addressed to " + names +
          " on port " + std::to_string(port_) +
          ", so that a web page cannot reach it through a name of its own (DNS rebinding); use "
          "one of those in the URL, or make develop listen on that name with --host; " +
          kSeeDocs};
}

std::optional<Refusal> RequestGuard::CheckOrigin(std::string_view header, size_t count) const {
  if (count == 0) return std::nullopt;
  if (count > 1)
    return Refusal{403, "the request has more than one Origin header; " + std::string(kSeeDocs)};
  auto origin = ParseOrigin(header);
  if (origin && (std::find(own_.begin(), own_.end(), *origin) != own_.end() ||
                 std::find(allowed_.begin(), allowed_.end(), *origin) != allowed_.end())) {
    return std::nullopt;
  }
  std::string own = own_.front().ToString();
  if (!origin) {
    return Refusal{
        403,
        "refused a request from a web page whose origin is `" + std::string(header) +
            "` (its Origin header): flowctl develop accepts requests from browsers only from its "
            "own "
            "origin (" +
            own +
            ") and from origins listed with --allow-origin, and this one (a sandboxed or local "
            "page's) cannot be listed; " +
            kSeeDocs};
  }
  std::string name = origin->ToString();
  return Refusal{
      403,
      "refused a request from the web page at `" + name +
          "` (its Origin header): flowctl develop accepts requests from browsers only from its own "
          "origin (" +
          own + ") and from origins listed with --allow-origin; to let pages of " + name +
          " use the API, restart develop with `--allow-origin " + name + "`; " + kSeeDocs};
}

}  // namespace flow::server
