#include "store/ledger.h"

#include <zlib.h>

#include <filesystem>
#include <random>

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace flow::store {
namespace fs = std::filesystem;

namespace {

// Applies one record to `state`; false when the line is not an intact record. With
// `structure_only`, a record is intact when its checksum and JSON are (what finds intact
// records after damage); otherwise a reset must also follow from `state`.
bool ApplyRecord(std::string_view line, LedgerState* state, bool structure_only = false) {
  if (line.size() < 10 || line[8] != ' ') return false;
  uint32_t want = 0;
  for (int i = 0; i < 8; ++i) {
    char c = line[i];
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    want = want << 4 | static_cast<uint32_t>(d);
  }
  std::string_view json = line.substr(9);
  uint32_t got = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(json.data()), static_cast<uInt>(json.size())));
  if (got != want) return false;
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) return false;
  auto heads = d.FindMember("heads");
  if (heads == d.MemberEnd() || !heads->value.IsObject()) return false;
  for (const auto& m : heads->value.GetObject()) {
    if (!m.value.IsUint64()) return false;
    state->heads[std::string(m.name.GetString(), m.name.GetStringLength())] = m.value.GetUint64();
  }
  auto id = d.FindMember("id");
  if (id != d.MemberEnd()) {
    if (!id->value.IsString()) return false;
    state->id = id->value.GetString();
  }
  auto gens = d.FindMember("generations");
  if (gens != d.MemberEnd()) {
    if (!gens->value.IsObject()) return false;
    for (const auto& m : gens->value.GetObject()) {
      if (!m.value.IsArray() || m.value.Size() != 2 || !m.value[0].IsUint64() || !m.value[1].IsUint64()) return false;
      std::string journal(m.name.GetString(), m.name.GetStringLength());
      Generation next{m.value[0].GetUint64(), m.value[1].GetUint64()};
      // A reset starts a later generation at the journal's head: anything else is not a
      // record the store wrote, and must not make recovery delete what it holds.
      Generation now = GenerationOf(*state, journal);
      if (!structure_only &&
          (next.number <= now.number || next.begin < now.begin || next.begin > HeadOf(*state, journal))) {
        return false;
      }
      state->generations[journal] = next;
    }
  }
  auto cps = d.FindMember("checkpoints");
  if (cps != d.MemberEnd() && cps->value.IsObject()) {
    for (const auto& m : cps->value.GetObject()) {
      if (!m.value.IsString()) return false;
      std::string key(m.name.GetString(), m.name.GetStringLength());
      if (m.value.GetStringLength() == 0) {
        state->checkpoints.erase(key);
      } else {
        state->checkpoints[key] = std::string(m.value.GetString(), m.value.GetStringLength());
      }
    }
  }
  return true;
}

// A quick look before the CRC: 8 lowercase hex digits, a space and '{'.
bool LooksLikeRecord(std::string_view content, size_t p) {
  if (p + 10 > content.size() || content[p + 8] != ' ' || content[p + 9] != '{') return false;
  for (size_t i = p; i < p + 8; ++i) {
    char c = content[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The first intact record starting at or after `from` (at any byte, not only after a line
// end: a damaged line end merges two records); npos when there is none.
size_t FindIntactRecord(std::string_view content, size_t from) {
  for (size_t p = from; p + 10 <= content.size(); ++p) {
    if (!LooksLikeRecord(content, p)) continue;
    size_t nl = content.find('\n', p);
    if (nl == std::string_view::npos) return std::string_view::npos;  // no complete line left
    LedgerState scratch;
    if (ApplyRecord(content.substr(p, nl - p), &scratch, true)) return p;
  }
  return std::string_view::npos;
}

// Scans ledger content: the state its intact prefix names, and whether what follows the
// prefix is a tail (nothing intact after it) or damage (intact records after it).
LedgerState ScanLedgerContent(std::string_view content, LedgerScan* scan) {
  LedgerState state;
  size_t pos = 0;
  while (pos < content.size()) {
    size_t nl = content.find('\n', pos);
    if (nl == std::string::npos) break;  // torn: the final record never finished
    LedgerState next = state;
    if (!ApplyRecord(content.substr(pos, nl - pos), &next)) break;
    state = std::move(next);
    ++scan->records;
    pos = nl + 1;
  }
  scan->valid = pos;
  if (pos == content.size()) return state;
  size_t resume = FindIntactRecord(content, pos + 1);
  if (resume == std::string_view::npos) return state;  // an invalid tail
  scan->damaged = true;
  scan->damaged_at = pos;
  scan->resumes_at = resume;
  // What the intact records after the damage name (for fsck's salvage report).
  size_t at = resume;
  while (at < content.size()) {
    size_t nl = content.find('\n', at);
    if (nl == std::string::npos) break;
    if (ApplyRecord(content.substr(at, nl - at), &scan->after, true)) {
      ++scan->records_after;
      at = nl + 1;
      continue;
    }
    size_t next = FindIntactRecord(content, at + 1);
    if (next == std::string_view::npos) break;
    at = next;
  }
  return state;
}

std::string WhatToDo(const std::string& dir) {
  return fmt::format(
      "Nothing was changed. Stop every flowctl process using the directory, copy it aside, run "
      "`flowctl fsck --data-dir {}` to see what is damaged and what can be salvaged, then restore "
      "the "
      "directory from a backup (see \"Damage and flowctl fsck\" in docs/storage.md)",
      dir);
}

// Counts the fragment and spool files under the data directory (by name).
void CountDataFiles(const std::string& dir, uint64_t* fragments, uint64_t* spools) {
  *fragments = *spools = 0;
  std::error_code ec;
  for (const char* sub : {"/lake", "/spool"}) {
    fs::path root = dir + sub;
    if (!fs::exists(root, ec)) continue;
    for (auto it = fs::recursive_directory_iterator(root, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      std::string name = it->path().filename().string();
      Fragment f;
      uint64_t begin = 0;
      std::time_t created = 0;
      Codec codec = Codec::kGzip;
      if (ParseFragmentName(name, &f))
        ++*fragments;
      else if (ParseSpoolName(name, &begin, &created, &codec))
        ++*spools;
    }
  }
}

}  // namespace

std::string EncodeRecord(const std::map<std::string, uint64_t>& heads,
                         const std::map<std::string, std::string>& checkpoints, const std::string& id,
                         const std::map<std::string, Generation>& generations) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  if (!id.empty()) {
    w.Key("id");
    w.String(id.data(), static_cast<rapidjson::SizeType>(id.size()));
  }
  if (!generations.empty()) {
    w.Key("generations");
    w.StartObject();
    for (const auto& [j, g] : generations) {
      w.Key(j.data(), static_cast<rapidjson::SizeType>(j.size()));
      w.StartArray();
      w.Uint64(g.number);
      w.Uint64(g.begin);
      w.EndArray();
    }
    w.EndObject();
  }
  w.Key("heads");
  w.StartObject();
  for (const auto& [j, h] : heads) {
    w.Key(j.data(), static_cast<rapidjson::SizeType>(j.size()));
    w.Uint64(h);
  }
  w.EndObject();
  if (!checkpoints.empty()) {
    w.Key("checkpoints");
    w.StartObject();
    for (const auto& [k, v] : checkpoints) {
      w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
      w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
    }
    w.EndObject();
  }
  w.EndObject();
  std::string_view json(sb.GetString(), sb.GetSize());
  uint32_t crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(json.data()), static_cast<uInt>(json.size())));
  return fmt::format("{:08x} {}\n", crc, json);
}

std::string NewIdentity() {
  std::random_device rd;  // the kernel's random source
  std::string out;
  for (int i = 0; i < 4; ++i) out += fmt::format("{:08x}", static_cast<uint32_t>(rd()));
  return out;
}

Result<LedgerState> LoadLedger(const std::string& dir, LedgerScan* scan) {
  *scan = LedgerScan{};
  bool missing = false;
  auto f = io::File::OpenRead(LedgerPath(dir), &missing);
  if (!f) {
    if (missing) return LedgerState{};
    return f.error();
  }
  scan->exists = true;
  auto size = f->Size();
  if (!size) return size.error();
  scan->size = *size;
  std::string content;
  auto r = f->ReadAt(0, *size, &content);
  if (!r) return r.error();
  return ScanLedgerContent(content, scan);
}

Error LedgerDamage(const std::string& dir, const LedgerScan& scan) {
  return Error::Env(fmt::format(
      "ledger {} is damaged at byte offset {}: the record there (after {} intact record(s)) fails "
      "its "
      "checksum, yet intact records follow it (from offset {}), so it is not a torn final write; "
      "opening the directory would lose committed transactions. {}",
      LedgerPath(dir), scan.damaged_at, scan.records, scan.resumes_at, WhatToDo(dir)));
}

Result<bool> CheckNotOrphaned(const std::string& dir, const LedgerScan& scan) {
  if (scan.records > 0) return true;
  uint64_t fragments = 0, spools = 0;
  CountDataFiles(dir, &fragments, &spools);
  if (fragments == 0 && spools == 0) return true;
  std::string what = !scan.exists     ? "is missing"
                     : scan.size == 0 ? "is empty"
                                      : "holds no intact record";
  return Error::Env(fmt::format(
      "data directory {} holds {} fragment(s) and {} spool(s), but its ledger {} {}: the record of "
      "what was committed is lost, so the directory is damaged, not empty. {}",
      dir, fragments, spools, LedgerPath(dir), what, WhatToDo(dir)));
}

Generation GenerationOf(const LedgerState& state, const std::string& journal) {
  auto it = state.generations.find(journal);
  return it == state.generations.end() ? Generation{} : it->second;
}

uint64_t HeadOf(const LedgerState& state, const std::string& journal) {
  auto it = state.heads.find(journal);
  return it == state.heads.end() ? 0 : it->second;
}

std::string HeadText(const LedgerState& state, const std::string& journal) {
  auto it = state.heads.find(journal);
  return it == state.heads.end() ? std::string("names no commit of it")
                                 : fmt::format("names committed head {}", it->second);
}

Result<bool> CheckFilesWithinHeads(const std::string& dir, const LedgerState& state,
                                   const std::vector<LakeFragment>& frags,
                                   const std::vector<SpoolFile>& spools) {
  for (const auto& lf : frags) {
    if (lf.fragment.end > HeadOf(state, lf.journal)) {
      return Error::Env(
          fmt::format("journal {}: fragment {} holds committed bytes up to offset {}, but the "
                      "ledger {} {}: the "
                      "ledger lost committed records. {}",
                      lf.journal, lf.fragment.path, lf.fragment.end, LedgerPath(dir),
                      HeadText(state, lf.journal), WhatToDo(dir)));
    }
  }
  for (const auto& sf : spools) {
    if (sf.begin > HeadOf(state, sf.journal)) {
      return Error::Env(
          fmt::format("journal {}: spool {} begins at offset {}, which was committed, but the "
                      "ledger {} {}: the "
                      "ledger lost committed records. {}",
                      sf.journal, sf.path, sf.begin, LedgerPath(dir), HeadText(state, sf.journal),
                      WhatToDo(dir)));
    }
  }
  return true;
}

Result<LedgerState> ReadLedger(const std::string& dir, bool check_files) {
  std::vector<LakeFragment> frags;
  std::vector<SpoolFile> spools;
  if (check_files) {
    // Listed before the ledger is read: a writer only persists or starts what the ledger
    // already names, so whatever is listed is within the heads read next.
    auto w = WalkLake(dir, &frags, nullptr);
    if (w) w = WalkSpools(dir, &spools, nullptr);
    if (!w) return w.error();
  }
  LedgerScan scan;
  auto state = LoadLedger(dir, &scan);
  if (!state) return state;
  if (scan.damaged) return LedgerDamage(dir, scan);
  auto o = CheckNotOrphaned(dir, scan);
  if (!o) {
    // A writer opening a new directory may have written the ledger's first record, then
    // data files, since the ledger was read: the files counted now were made after that
    // record, so a second read of the ledger must show it.
    state = LoadLedger(dir, &scan);
    if (!state) return state;
    if (scan.damaged) return LedgerDamage(dir, scan);
    o = CheckNotOrphaned(dir, scan);
    if (!o) return o.error();
  }
  if (check_files) {
    auto c = CheckFilesWithinHeads(dir, state.value(), frags, spools);
    if (!c) return c.error();
  }
  return state;
}

std::vector<std::string> CollectionJournals(const LedgerState& state, std::string_view collection) {
  std::vector<std::string> out;
  std::string prefix = std::string(collection) + "/";
  for (auto it = state.heads.lower_bound(prefix); it != state.heads.end(); ++it) {
    std::string_view name = it->first;
    if (name.substr(0, prefix.size()) != prefix) break;
    // The rest must be `f=v/` segments then `pivot=00`; anything else is another
    // collection whose name extends this one (`a/b` under `a`).
    std::string_view rest = name.substr(prefix.size());
    bool ours = true;
    while (ours) {
      size_t slash = rest.find('/');
      std::string_view seg = rest.substr(0, slash);
      if (seg.find('=') == std::string_view::npos) ours = false;
      if (slash == std::string_view::npos) {
        ours = ours && seg == "pivot=00";
        break;
      }
      rest = rest.substr(slash + 1);
    }
    if (ours) out.push_back(it->first);
  }
  return out;
}

}  // namespace flow::store
