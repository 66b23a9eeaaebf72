// Browser safety of the ingestion API (SPEC section 7; the threat model is docs/security.md):
// which `Host` and `Origin` headers a request may carry. Pure functions of the headers and
// the server's address, without Beast, so they are tested alone. Immutable after
// construction: safe to share between threads.
//
// - Host: a loopback name or address (localhost, 127.0.0.0/8, [::1]) or the --host the
//   server listens on, with the server's port. A name that is not one of those may resolve
//   anywhere an attacker likes (DNS rebinding); when the server listens on every address
//   (0.0.0.0 or ::), any IP address literal is accepted too, as a literal cannot be rebound.
// - Origin: absent (curl, scripts, flowctl itself: no browser is involved), the server's own
//   (http://127.0.0.1:PORT, http://localhost:PORT, http://[::1]:PORT, http://HOST:PORT), or
//   one listed with --allow-origin. Anything else is a web page of another site.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flow::server {

// A web origin: scheme, host and port (RFC 6454), lower-cased; an IPv6 host is kept in
// brackets ("[::1]"); the port is the scheme's default when the text has none.
struct Origin {
  std::string scheme, host;
  uint16_t port = 0;
  bool operator==(const Origin&) const = default;
  std::string ToString() const;  // "http://localhost:3000"
};

// Parses "scheme://host[:port]" (an optional trailing '/' allowed; no path, user, query or
// fragment). Schemes: http, https (ws and wss are treated as http and https). Returns
// nullopt for anything else, including "null", the origin of sandboxed and file:// pages.
std::optional<Origin> ParseOrigin(std::string_view text);

// Why a request is refused: an HTTP status and a message for the JSON error body.
struct Refusal {
  int status = 403;
  std::string message;
};

class RequestGuard {
 public:
  // `bind_host`: the --host the server listens on; `port`: its port (the chosen one when
  // it asked for any); `allowed`: the --allow-origin list.
  RequestGuard(std::string bind_host, uint16_t port, std::vector<Origin> allowed);

  // The request's Host header (`count`: how many it has; HTTP/1.0 may send none).
  std::optional<Refusal> CheckHost(std::string_view host, size_t count,
                                   unsigned http_version) const;
  // The request's Origin header (`count`: how many it has; none is allowed).
  std::optional<Refusal> CheckOrigin(std::string_view origin, size_t count) const;

  // The server's own origins, for messages and tests.
  const std::vector<Origin>& own() const { return own_; }

 private:
  std::string bind_host_;  // lower-cased, IPv6 without brackets
  bool bind_any_ = false;  // 0.0.0.0 or ::
  uint16_t port_;
  std::vector<Origin> own_, allowed_;
};

}  // namespace flow::server
