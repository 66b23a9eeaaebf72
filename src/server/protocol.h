// The rules of the ingestion API (SPEC section 7) that need no socket: error bodies, content
// types, the choice of a WebSocket stream's protocol and what a close frame may carry. Pure
// functions without Beast (like guard.h), so they are tested alone; safe on any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/server.h"

namespace flow::server {

// The body of an error response: `{"error": "<message>"}`.
std::string JsonError(std::string_view message);

// `s` without its leading and trailing spaces and tabs.
std::string_view Trim(std::string_view s);

// "application/json", with any parameters (`; charset=utf-8`), in any case.
bool IsJsonType(std::string_view content_type);

// The WebSocket protocols of SPEC section 7: json/v1, csv/v1 and tsv/v1.
std::optional<IngestFormat> FormatOfProtocol(std::string_view p);

// The protocol of a stream, from the values of its Sec-WebSocket-Protocol headers (each a
// comma-separated list): the first offered protocol we speak. `offered` without `format`:
// only unknown ones were offered; nothing offered means JSON lines.
struct ProtocolChoice {
  bool offered = false;
  std::optional<IngestFormat> format;
  std::string protocol;  // as offered, to echo back
};
ProtocolChoice ChooseProtocol(const std::vector<std::string_view>& headers);

// Close codes an endpoint may send (RFC 6455 7.4); anything else becomes 1011.
uint16_t SendableCloseCode(uint16_t code);

// The protocol's limit on a close frame's reason (RFC 6455 5.5: 125-byte control payloads).
constexpr size_t kMaxCloseReason = 123;
// At most kMaxCloseReason bytes, not cutting a UTF-8 sequence (the reason must be UTF-8).
std::string TruncateReason(std::string reason);

}  // namespace flow::server
