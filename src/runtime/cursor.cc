#include "runtime/cursor.h"

#include <algorithm>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

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
    auto r = reader_.Read(head, &block_);
    if (!r) return r;
    if (block_.empty()) return false;
    buf_.append(block_);
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

void CommitOrderReader::Add(const std::string& journal) { cursors_.emplace_back(dir_, journal); }

Result<bool> CommitOrderReader::Drain(const std::map<std::string, uint64_t>& heads, const Emit& emit) {
  struct Pending {
    size_t cursor;
    doc::Clock clock;
    uint64_t offset;
    std::string line;
  };
  std::vector<Pending> heap;
  auto later = [](const Pending& a, const Pending& b) {
    return a.clock != b.clock ? a.clock > b.clock : a.cursor > b.cursor;
  };
  auto pull = [&](size_t i) -> Result<bool> {
    auto head = heads.find(cursors_[i].journal());
    if (head == heads.end()) return true;
    Pending p{i, 0, cursors_[i].offset(), {}};
    auto n = cursors_[i].Next(head->second, &p.line);
    if (!n || !n.value()) return n;
    p.clock = ClockOfLine(p.line);
    heap.push_back(std::move(p));
    std::push_heap(heap.begin(), heap.end(), later);
    return true;
  };
  for (size_t i = 0; i < cursors_.size(); ++i) {
    auto r = pull(i);
    if (!r) return r;
  }
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    Pending p = std::move(heap.back());
    heap.pop_back();
    auto e = emit(cursors_[p.cursor].journal(), p.offset, p.line);
    if (!e) return e;
    auto r = pull(p.cursor);
    if (!r) return r;
  }
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

std::string EncodeOffsets(const std::map<std::string, uint64_t>& offsets) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("offsets");
  w.StartObject();
  for (const auto& [key, offset] : offsets) {
    w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
    w.Uint64(offset);
  }
  w.EndObject();
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

bool DecodeOffsets(const std::string& text, std::map<std::string, uint64_t>* offsets) {
  rapidjson::Document j;
  j.Parse(text.c_str());
  if (j.HasParseError() || !j.IsObject() || !j.HasMember("offsets") || !j["offsets"].IsObject()) return false;
  for (const auto& o : j["offsets"].GetObject()) {
    if (!o.value.IsUint64()) return false;
    (*offsets)[std::string(o.name.GetString(), o.name.GetStringLength())] = o.value.GetUint64();
  }
  return true;
}

}  // namespace flow::runtime
