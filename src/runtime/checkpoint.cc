#include "runtime/checkpoint.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace flow::runtime {
namespace {

std::string JournalOfKey(const std::string& key) {
  size_t tab = key.find('\t');
  return tab == std::string::npos ? key : key.substr(tab + 1);
}

std::string Short(const std::string& id) { return id.size() > 12 ? id.substr(0, 12) : id; }

}  // namespace

Checkpoint CheckpointOf(std::map<std::string, uint64_t> offsets, const store::LedgerState& ledger,
                        std::string logic) {
  Checkpoint cp;
  cp.data_dir = ledger.id;
  for (const auto& [key, _] : offsets) {
    std::string journal = JournalOfKey(key);
    cp.generations[journal] = store::GenerationOf(ledger, journal).number;
  }
  cp.offsets = std::move(offsets);
  cp.logic = std::move(logic);
  return cp;
}

std::string EncodeCheckpoint(const Checkpoint& cp) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  auto key = [&](const std::string& k) { w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); };
  w.StartObject();
  w.Key("offsets");
  w.StartObject();
  for (const auto& [k, offset] : cp.offsets) {
    key(k);
    w.Uint64(offset);
  }
  w.EndObject();
  if (!cp.data_dir.empty()) {
    w.Key("dataDir");
    w.String(cp.data_dir.data(), static_cast<rapidjson::SizeType>(cp.data_dir.size()));
    w.Key("generations");
    w.StartObject();
    for (const auto& [journal, g] : cp.generations) {
      key(journal);
      w.Uint64(g);
    }
    w.EndObject();
  }
  if (!cp.logic.empty()) {
    w.Key("logic");
    w.String(cp.logic.data(), static_cast<rapidjson::SizeType>(cp.logic.size()));
  }
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

bool DecodeCheckpoint(const std::string& text, Checkpoint* out) {
  *out = Checkpoint{};
  rapidjson::Document j;
  j.Parse(text.c_str());
  if (j.HasParseError() || !j.IsObject() || !j.HasMember("offsets") || !j["offsets"].IsObject()) return false;
  for (const auto& o : j["offsets"].GetObject()) {
    if (!o.value.IsUint64()) return false;
    out->offsets[std::string(o.name.GetString(), o.name.GetStringLength())] = o.value.GetUint64();
  }
  if (j.HasMember("dataDir")) {
    if (!j["dataDir"].IsString() || !j.HasMember("generations") || !j["generations"].IsObject()) return false;
    out->data_dir = j["dataDir"].GetString();
    for (const auto& g : j["generations"].GetObject()) {
      if (!g.value.IsUint64()) return false;
      out->generations[std::string(g.name.GetString(), g.name.GetStringLength())] = g.value.GetUint64();
    }
  }
  if (j.HasMember("logic")) {
    if (!j["logic"].IsString()) return false;
    out->logic = j["logic"].GetString();
  }
  return true;
}

std::string CheckpointMismatch(const Checkpoint& cp, const store::LedgerState& ledger, bool unrecorded_ok) {
  if (cp.data_dir.empty() && !unrecorded_ok) {
    return "its checkpoint was written by an earlier flowctl, which did not record the data directory it read";
  }
  if (!cp.data_dir.empty() && cp.data_dir != ledger.id) {
    return fmt::format(
        "its checkpoint was taken over another data directory (identity {}…; this one is {}…): was the data "
        "directory wiped, or another one given?",
        Short(cp.data_dir), Short(ledger.id));
  }
  for (const auto& [key, offset] : cp.offsets) {
    std::string journal = JournalOfKey(key);
    uint64_t now = store::GenerationOf(ledger, journal).number;
    auto g = cp.generations.find(journal);
    uint64_t then = g == cp.generations.end() ? 1 : g->second;
    if (then != now) {
      return fmt::format("journal {} was reset since its checkpoint (generation {} then, {} now)", journal, then, now);
    }
    auto head = ledger.heads.find(journal);
    uint64_t end = head == ledger.heads.end() ? 0 : head->second;
    if (offset > end) {
      return fmt::format("its checkpoint is at offset {} of journal {}, beyond the {} bytes committed to it", offset,
                         journal, end);
    }
  }
  return "";
}

}  // namespace flow::runtime
