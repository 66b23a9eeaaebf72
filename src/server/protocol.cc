#include "server/protocol.h"

#include "base/strings.h"

namespace flow::server {

std::string JsonError(std::string_view message) {
  return "{\"error\": " + JsonQuote(message) + "}";
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsJsonType(std::string_view content_type) {
  std::string_view type = Trim(content_type.substr(0, content_type.find(';')));
  return AsciiLower(type) == "application/json";
}

std::optional<IngestFormat> FormatOfProtocol(std::string_view p) {
  if (p == "json/v1") return IngestFormat::kJson;
  if (p == "csv/v1") return IngestFormat::kCsv;
  if (p == "tsv/v1") return IngestFormat::kTsv;
  return std::nullopt;
}

ProtocolChoice ChooseProtocol(const std::vector<std::string_view>& headers) {
  ProtocolChoice choice;
  for (std::string_view values : headers) {
    while (!values.empty()) {
      size_t comma = values.find(',');
      std::string_view value = Trim(values.substr(0, comma));
      values = comma == std::string_view::npos ? std::string_view() : values.substr(comma + 1);
      if (value.empty()) continue;
      choice.offered = true;
      if (!choice.format && (choice.format = FormatOfProtocol(value))) choice.protocol = value;
    }
  }
  return choice;
}

uint16_t SendableCloseCode(uint16_t code) {
  bool ok = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
            (code >= 3000 && code <= 4999);
  return ok ? code : uint16_t{1011};  // internal error
}

std::string TruncateReason(std::string reason) {
  if (reason.size() <= kMaxCloseReason) return reason;
  size_t n = kMaxCloseReason;
  while (n > 0 && (static_cast<unsigned char>(reason[n]) & 0xC0) == 0x80) --n;
  reason.resize(n);
  return reason;
}

}  // namespace flow::server
