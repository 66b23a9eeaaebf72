#include "runtime/cursor.h"

#include <rapidjson/document.h>

#include "runtime/ingest.h"

namespace flow::runtime {

JournalCursor::JournalCursor(const std::string& dir, const std::string& journal, uint64_t offset)
    : reader_(dir, journal, offset), offset_(offset) {}

Result<bool> JournalCursor::Peek(uint64_t head, std::string_view* line) {
  for (;;) {
    size_t nl = buf_.find('\n', pos_);
    if (nl != std::string::npos) {
      *line = std::string_view(buf_).substr(pos_, nl - pos_);
      peeked_ = nl + 1 - pos_;
      return true;
    }
    buf_.erase(0, pos_);
    pos_ = 0;
    auto r = reader_.Append(head, &buf_);
    if (!r) return r.error();
    if (r.value() == 0) return false;
  }
}

void JournalCursor::Pop() {
  pos_ += peeked_;
  offset_ += peeked_;
  peeked_ = 0;
}

Result<bool> JournalCursor::Next(uint64_t head, std::string* line) {
  std::string_view view;
  auto r = Peek(head, &view);
  if (!r || !r.value()) return r;
  line->assign(view);
  Pop();
  return true;
}

doc::Clock ClockOfLine(std::string_view line) {
  if (auto text = StampedUuid(line)) {
    if (auto u = doc::ParseUuid(*text)) return u->clock;
  }
  rapidjson::Document d;
  d.Parse(line.data(), line.size());
  if (d.HasParseError() || !d.IsObject()) return 0;
  auto meta = d.FindMember("_meta");
  if (meta == d.MemberEnd() || !meta->value.IsObject()) return 0;
  auto uuid = meta->value.FindMember("uuid");
  if (uuid == meta->value.MemberEnd() || !uuid->value.IsString()) return 0;
  auto u = doc::ParseUuid(std::string_view(uuid->value.GetString(), uuid->value.GetStringLength()));
  return u ? u->clock : 0;
}

}  // namespace flow::runtime
