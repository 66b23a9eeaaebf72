#include "store/journal.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "base/log.h"
#include "store/codec.h"

namespace flow::store {
namespace fs = std::filesystem;

namespace {

constexpr size_t kWriteBuffer = 1 << 20;   // uncommitted bytes buffered before a write(2)
constexpr uint64_t kLedgerCompactAt = 16ull << 20;
constexpr size_t kReadBlock = 1 << 20;

std::string LedgerPath(const std::string& dir) { return dir + "/ledger"; }
std::string SpoolDir(const std::string& dir, std::string_view journal) {
  return fmt::format("{}/spool/{}", dir, journal);
}
// `<begin>-<created>.<codec>.spool`: the codec is in the name so that a spool recovered after
// a crash is persisted with its journal's codec before anything is appended to it again.
std::string SpoolName(uint64_t begin, std::time_t created, Codec codec) {
  return fmt::format("{:016x}-{}{}.spool", begin, static_cast<int64_t>(created), CodecExtension(codec));
}

bool ParseHex16(std::string_view s, uint64_t* out) {
  if (s.size() != 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    v = v << 4 | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

bool ParseSpoolName(std::string_view name, uint64_t* begin, std::time_t* created, Codec* codec) {
  constexpr std::string_view kExt = ".spool";
  if (name.size() < 18 + kExt.size() || name.substr(name.size() - kExt.size()) != kExt) return false;
  if (name[16] != '-' || !ParseHex16(name.substr(0, 16), begin)) return false;
  name.remove_suffix(kExt.size());
  size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot < 17) return false;
  std::string_view ext = name.substr(dot);
  if (ext == ".gz") *codec = Codec::kGzip;
  else if (ext == ".zst") *codec = Codec::kZstd;
  else if (ext == ".raw") *codec = Codec::kNone;
  else return false;
  std::string_view secs = name.substr(17, dot - 17);
  if (secs.empty()) return false;
  int64_t v = 0;
  for (char c : secs) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *created = static_cast<std::time_t>(v);
  return true;
}

// `<begin>-<end>-<sha1><ext>`
bool ParseFragmentName(std::string_view name, Fragment* f) {
  if (name.size() < 16 + 1 + 16 + 1 + 40 + 3) return false;
  if (name[16] != '-' || name[33] != '-') return false;
  if (!ParseHex16(name.substr(0, 16), &f->begin) || !ParseHex16(name.substr(17, 16), &f->end)) return false;
  std::string_view ext = name.substr(74);
  if (ext == ".gz") f->codec = Codec::kGzip;
  else if (ext == ".zst") f->codec = Codec::kZstd;
  else if (ext == ".raw") f->codec = Codec::kNone;
  else return false;
  std::string_view sha = name.substr(34, 40);
  for (char c : sha) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  f->sha1 = std::string(sha);
  return f->begin < f->end;
}

// Ledger records are lines: 8 hex digits of the CRC-32 of the JSON, a space, the JSON.
std::string EncodeRecord(const std::map<std::string, uint64_t>& heads,
                         const std::map<std::string, std::string>& checkpoints) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
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
  uint32_t crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(json.data()),
                                             static_cast<uInt>(json.size())));
  return fmt::format("{:08x} {}\n", crc, json);
}

// Applies one record to `state`; false when the line is not an intact record.
bool ApplyRecord(std::string_view line, LedgerState* state) {
  if (line.size() < 10 || line[8] != ' ') return false;
  uint32_t want = 0;
  for (int i = 0; i < 8; ++i) {
    char c = line[i];
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    want = want << 4 | static_cast<uint32_t>(d);
  }
  std::string_view json = line.substr(9);
  uint32_t got = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(json.data()),
                                            static_cast<uInt>(json.size())));
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
  auto cps = d.FindMember("checkpoints");
  if (cps != d.MemberEnd() && cps->value.IsObject()) {
    for (const auto& m : cps->value.GetObject()) {
      if (!m.value.IsString()) return false;
      state->checkpoints[std::string(m.name.GetString(), m.name.GetStringLength())] =
          std::string(m.value.GetString(), m.value.GetStringLength());
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
    if (ApplyRecord(content.substr(p, nl - p), &scratch)) return p;
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
    if (ApplyRecord(content.substr(at, nl - at), &scan->after)) {
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

// Reads and scans the ledger; a missing ledger scans as empty (`scan->exists` false).
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

std::string WhatToDo(const std::string& dir) {
  return fmt::format(
      "Nothing was changed. Stop every flowctl process using the directory, copy it aside, run "
      "`flowctl fsck --data-dir {}` to see what is damaged and what can be salvaged, then restore "
      "the "
      "directory from a backup (see \"Damage and flowctl fsck\" in docs/storage.md)",
      dir);
}

Error LedgerDamage(const std::string& dir, const LedgerScan& scan) {
  return Error::Env(fmt::format(
      "ledger {} is damaged at byte offset {}: the record there (after {} intact record(s)) fails "
      "its "
      "checksum, yet intact records follow it (from offset {}), so it is not a torn final write; "
      "opening the directory would lose committed transactions. {}",
      LedgerPath(dir), scan.damaged_at, scan.records, scan.resumes_at, WhatToDo(dir)));
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

// A ledger without an intact record, beside fragments or spools: what committed is lost.
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

}  // namespace

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

Result<std::vector<Fragment>> ListFragments(const std::string& dir, const std::string& journal) {
  std::vector<Fragment> out;
  std::error_code ec;
  fs::path root = fs::path(dir) / "lake" / journal;
  if (!fs::exists(root, ec)) return out;
  for (const auto& date : fs::directory_iterator(root, ec)) {
    if (!date.is_directory() || date.path().filename().string().rfind("utc_date=", 0) != 0) continue;
    for (const auto& hour : fs::directory_iterator(date.path(), ec)) {
      if (!hour.is_directory() || hour.path().filename().string().rfind("utc_hour=", 0) != 0) continue;
      for (const auto& file : fs::directory_iterator(hour.path(), ec)) {
        Fragment f;
        if (ParseFragmentName(file.path().filename().string(), &f)) {
          f.path = file.path().string();
          out.push_back(std::move(f));
        }
      }
    }
  }
  if (ec) return Error::Env(fmt::format("cannot list {}: {}", root.string(), ec.message()));
  std::sort(out.begin(), out.end(), [](const Fragment& a, const Fragment& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end > b.end;
  });
  return out;
}

namespace {

struct LakeFragment {
  std::string journal;
  Fragment fragment;
};
struct SpoolFile {
  std::string journal, path;
  uint64_t begin = 0, size = 0;
};

// Every fragment in the lake, by name; other regular files go to `unknown`.
Result<bool> WalkLake(const std::string& dir, std::vector<LakeFragment>* out,
                      std::vector<std::string>* unknown) {
  std::error_code ec;
  fs::path root = fs::path(dir) / "lake";
  if (!fs::exists(root, ec)) return true;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    fs::path hour = it->path().parent_path(), date = hour.parent_path();
    LakeFragment lf;
    if (ParseFragmentName(it->path().filename().string(), &lf.fragment) &&
        hour.filename().string().rfind("utc_hour=", 0) == 0 &&
        date.filename().string().rfind("utc_date=", 0) == 0) {
      lf.journal = fs::relative(date.parent_path(), root).string();
      lf.fragment.path = it->path().string();
      out->push_back(std::move(lf));
    } else if (unknown) {
      unknown->push_back(it->path().string());
    }
  }
  if (ec) return Error::Env(fmt::format("cannot list {}: {}", root.string(), ec.message()));
  return true;
}

// Every spool, by name; other regular files go to `unknown`.
Result<bool> WalkSpools(const std::string& dir, std::vector<SpoolFile>* out,
                        std::vector<std::string>* unknown) {
  std::error_code ec;
  fs::path root = fs::path(dir) / "spool";
  if (!fs::exists(root, ec)) return true;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    SpoolFile sf;
    std::time_t created = 0;
    Codec codec = Codec::kGzip;
    if (ParseSpoolName(it->path().filename().string(), &sf.begin, &created, &codec)) {
      sf.journal = fs::relative(it->path().parent_path(), root).string();
      sf.path = it->path().string();
      sf.size = static_cast<uint64_t>(it->file_size(ec));
      out->push_back(std::move(sf));
    } else if (unknown) {
      unknown->push_back(it->path().string());
    }
  }
  if (ec) return Error::Env(fmt::format("cannot list {}: {}", root.string(), ec.message()));
  return true;
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

// Decodes a whole fragment, checking its length and SHA-1 against its name.
Result<bool> VerifyFragment(const Fragment& f) {
  bool missing = false;
  auto file = io::File::OpenRead(f.path, &missing);
  if (!file) return file.error();
  auto dec = Decoder::Make(f.codec, std::move(file.value()));
  Sha1 sha;
  uint64_t n = 0;
  std::string block;
  for (;;) {
    auto r = dec->Read(&block);
    if (!r) return r;
    if (block.empty()) break;
    n += block.size();
    sha.Update(block);
  }
  if (n != f.end - f.begin) {
    return Error::Env(fmt::format("fragment {} holds {} bytes, but its name says {}", f.path, n,
                                  f.end - f.begin));
  }
  std::string got = sha.HexDigest();
  if (got != f.sha1) {
    return Error::Env(
        fmt::format("fragment {} is damaged: the SHA-1 of its content is {}, its name says {}",
                    f.path, got, f.sha1));
  }
  return true;
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

}  // namespace

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

Result<FsckReport> Verify(const std::string& dir) {
  FsckReport rep;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Error::Env(fmt::format("{} is not a directory", dir));
  auto state = LoadLedger(dir, &rep.ledger);
  if (!state) return state.error();
  rep.committed = std::move(state.value());
  const LedgerScan& L = rep.ledger;
  const std::string ledger = LedgerPath(dir);

  std::vector<LakeFragment> frags;
  std::vector<SpoolFile> spools;
  std::vector<std::string> unknown;
  auto w = WalkLake(dir, &frags, &unknown);
  if (!w) return w.error();
  w = WalkSpools(dir, &spools, &unknown);
  if (!w) return w.error();
  rep.fragments = frags.size();
  rep.spools = spools.size();

  // The ledger.
  if (L.damaged) {
    rep.damage.push_back(
        fmt::format("ledger {}: the record at byte offset {} fails its checksum, and {} intact "
                    "record(s) follow it "
                    "from offset {}: committed transactions after offset {} cannot be read",
                    ledger, L.damaged_at, L.records_after, L.resumes_at, L.damaged_at));
  } else if (L.valid < L.size) {
    rep.notes.push_back(fmt::format(
        "ledger {}: {} byte(s) after the last intact record (offset {}) are a torn final write, a "
        "transaction that never committed; opening the directory discards them",
        ledger, L.size - L.valid, L.valid));
  }
  if (L.records == 0 && (!frags.empty() || !spools.empty())) {
    rep.damage.push_back(
        fmt::format("ledger {} {}, but the directory holds {} fragment(s) and {} spool(s): the "
                    "record of what was committed is lost",
                    ledger,
                    !L.exists     ? "is missing"
                    : L.size == 0 ? "is empty"
                                  : "holds no intact record",
                    frags.size(), spools.size()));
  }

  // Every fragment, decoded and checked against its name.
  std::map<std::string, std::vector<std::pair<uint64_t, uint64_t>>>
      ranges;  // journal: [begin, end) held
  std::set<std::string> journals;
  for (const auto& [j, _] : rep.committed.heads) journals.insert(j);
  for (const auto& lf : frags) {
    journals.insert(lf.journal);
    auto v = VerifyFragment(lf.fragment);
    if (v) {
      ++rep.fragments_ok;
      rep.fragment_bytes_ok += lf.fragment.end - lf.fragment.begin;
      ranges[lf.journal].emplace_back(lf.fragment.begin, lf.fragment.end);
    } else {
      rep.damage.push_back(v.error().message);
    }
    if (!L.damaged && L.records > 0 && lf.fragment.end > HeadOf(rep.committed, lf.journal)) {
      rep.damage.push_back(fmt::format(
          "journal {}: fragment {} holds committed bytes up to offset {}, but the "
          "ledger {}: the ledger lost committed records",
          lf.journal, lf.fragment.path, lf.fragment.end, HeadText(rep.committed, lf.journal)));
    }
  }
  for (const auto& sf : spools) {
    journals.insert(sf.journal);
    uint64_t head = HeadOf(rep.committed, sf.journal);
    if (!L.damaged && L.records > 0 && sf.begin > head) {
      rep.damage.push_back(
          fmt::format("journal {}: spool {} begins at offset {}, which was committed, but the "
                      "ledger {}: the ledger lost committed records",
                      sf.journal, sf.path, sf.begin, HeadText(rep.committed, sf.journal)));
    }
    ranges[sf.journal].emplace_back(sf.begin, sf.begin + sf.size);
    if (!L.damaged && sf.begin <= head && sf.begin + sf.size > head) {
      rep.notes.push_back(
          fmt::format("spool {} holds {} byte(s) after its journal's committed head {}: an "
                      "uncommitted transaction; opening the directory discards them",
                      sf.path, sf.begin + sf.size - head, head));
    }
  }
  // Every committed byte must be in a fragment that verifies or in a spool.
  for (const auto& j : journals) {
    uint64_t head = HeadOf(rep.committed, j);
    if (L.damaged) head = std::max(head, HeadOf(rep.ledger.after, j));
    auto& rs = ranges[j];
    std::sort(rs.begin(), rs.end());
    uint64_t at = 0;
    for (const auto& [b, e] : rs) {
      if (at >= head) break;
      if (b > at) {
        rep.damage.push_back(
            fmt::format("journal {}: committed bytes [{}, {}) are in no intact fragment or spool",
                        j, at, std::min(b, head)));
      }
      at = std::max(at, e);
    }
    if (at < head) {
      rep.damage.push_back(fmt::format(
          "journal {}: committed bytes [{}, {}) are in no intact fragment or spool", j, at, head));
    }
  }
  for (const auto& u : unknown)
    rep.notes.push_back(fmt::format("{} is not a file flowctl writes; ignored", u));

  // What can be salvaged.
  if (L.damaged) {
    rep.salvage.push_back(
        fmt::format("the ledger's first {} record(s) (bytes [0, {})) are intact; {} intact "
                    "record(s) after the damage "
                    "name the heads of {} journal(s)",
                    L.records, L.damaged_at, L.records_after, L.after.heads.size()));
  }
  if (rep.fragments > 0) {
    rep.salvage.push_back(
        fmt::format("{} of {} fragment(s) verify, {} bytes of committed documents: each is a "
                    "complete file of JSON "
                    "lines (read it with gzip -dc, zstd -dc or cat) that can be ingested into a "
                    "fresh data directory",
                    rep.fragments_ok, rep.fragments, rep.fragment_bytes_ok));
  }
  return rep;
}

// ------------------------------------------------------------------------------------------
// Store

struct Store::Journal {
  std::string name;
  JournalSpec spec;
  uint64_t head = 0;     // committed
  uint64_t written = 0;  // head plus this transaction's appends (buffered or in the spool)
  std::string buffer;    // appended, not yet written to the spool file
  bool touched = false;
  // The spool: the journal's bytes [spool_begin, written) not yet all in fragments.
  io::File spool;
  std::string spool_path;
  uint64_t spool_begin = 0;
  std::time_t spool_created = 0;
  bool spool_new = false;       // its directory entry has not been synced yet
  uint64_t persisted_end = 0;   // fragments hold [.., persisted_end), at least spool_begin
};

Store::Store(std::string dir) : dir_(std::move(dir)) {}
Store::~Store() = default;

Error Store::Poisoned() const {
  return Error::Env(fmt::format(
      "data directory {} had an I/O error earlier in this process; restart flowctl to recover it", dir_));
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& dir) {
  std::unique_ptr<Store> s(new Store(dir));
  auto r = s->Recover();
  if (!r) return r.error();
  return s;
}

Result<bool> Store::Recover() {
  for (const char* sub : {"/lake", "/spool", "/tmp"}) {
    auto made = io::CreateDirs(dir_ + sub);
    if (!made) return made;
  }
  // Damage is refused before anything is changed.
  LedgerScan scan;
  auto state = LoadLedger(dir_, &scan);
  if (!state) return state.error();
  if (scan.damaged) return LedgerDamage(dir_, scan);
  auto orphaned = CheckNotOrphaned(dir_, scan);
  if (!orphaned) return orphaned;
  std::vector<LakeFragment> lake_files;
  std::vector<SpoolFile> spool_files;
  auto walked = WalkLake(dir_, &lake_files, nullptr);
  if (walked) walked = WalkSpools(dir_, &spool_files, nullptr);
  if (!walked) return walked;
  auto within = CheckFilesWithinHeads(dir_, state.value(), lake_files, spool_files);
  if (!within) return within;
  committed_ = std::move(state.value());

  std::error_code ec;
  // Temporary files are fragments that were never renamed into the lake.
  for (const auto& e : fs::directory_iterator(dir_ + "/tmp", ec)) fs::remove_all(e.path(), ec);

  auto ledger = io::File::OpenAppend(LedgerPath(dir_), true);
  if (!ledger) return ledger.error();
  ledger_ = std::move(ledger.value());
  Log(LogLevel::kInfo, "opened data directory", {{"data_dir", dir_}, {"journals", static_cast<uint64_t>(committed_.heads.size())}});
  uint64_t valid = scan.valid;
  if (valid < scan.size) {  // a torn or corrupt tail: the transaction it described never committed
    Log(LogLevel::kWarn, "discarded the ledger's torn tail",
        {{"data_dir", dir_}, {"offset", valid}, {"bytes", scan.size - valid}});
    auto t = ledger_.Truncate(valid);
    if (!t) return t;
    auto s = ledger_.Sync();
    if (!s) return s;
  }
  if (scan.records == 0) {
    // A new ledger (no data files exist, checked above) starts with a record naming no
    // heads: from then on an empty or missing ledger beside data is recognisable as damage.
    std::string header = EncodeRecord({}, {});
    auto w = ledger_.Append(header);
    if (w) w = ledger_.Sync();
    if (w) w = io::SyncDir(dir_);
    if (!w) return w;
    valid = header.size();
  }
  ledger_size_ = valid;
  for (const auto& [name, head] : committed_.heads) {
    Journal* j = Get(name);
    j->head = j->written = head;
  }

  std::vector<std::pair<fs::path, std::string>> spools;  // path, journal
  fs::path spool_root = dir_ + "/spool";
  for (auto it = fs::recursive_directory_iterator(spool_root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file()) {
      spools.emplace_back(it->path(), fs::relative(it->path().parent_path(), spool_root).string());
    }
  }
  if (ec) return Error::Env(fmt::format("cannot list {}: {}", spool_root.string(), ec.message()));
  std::sort(spools.begin(), spools.end());
  for (const auto& [path, journal] : spools) {
    uint64_t begin = 0;
    std::time_t created = 0;
    Codec codec = Codec::kGzip;
    if (!ParseSpoolName(path.filename().string(), &begin, &created, &codec)) continue;  // not ours
    auto r = RecoverSpool(journal, path.string(), begin, created, codec);
    if (!r) return r;
  }
  return true;
}

Result<bool> Store::RecoverSpool(const std::string& journal, const std::string& path, uint64_t begin,
                                 std::time_t created, Codec codec) {
  uint64_t head = 0;
  auto h = committed_.heads.find(journal);
  if (h != committed_.heads.end()) head = h->second;
  auto frags = ListFragments(dir_, journal);
  if (!frags) return frags.error();
  uint64_t persisted = begin;
  for (const auto& f : *frags) {
    if (f.begin <= persisted && f.end > persisted) persisted = f.end;
  }
  std::error_code ec;
  if (head <= begin || persisted >= head) {
    // Nothing committed in it, or all of it is in fragments already.
    fs::remove(path, ec);
    if (ec) return Error::Env(fmt::format("cannot remove {}: {}", path, ec.message()));
    return true;
  }
  Journal* j = Get(journal);
  if (j->spool.is_open()) {
    return Error::Env(fmt::format("journal {} has two spools with committed content ({} and {}); "
                                  "the data directory was modified by hand?",
                                  journal, j->spool_path, path));
  }
  auto f = io::File::OpenAppend(path, false);
  if (!f) return f.error();
  auto size = f->Size();
  if (!size) return size.error();
  if (*size < head - begin) {
    return Error::Env(fmt::format(
        "journal {}: spool {} holds bytes up to offset {} but offset {} was committed; committed data "
        "is missing (was the data directory copied or edited while in use?)",
        journal, path, begin + *size, head));
  }
  if (*size > head - begin) {  // the tail of a transaction that never committed
    auto t = f->Truncate(head - begin);
    if (!t) return t;
    auto s = f->Sync();
    if (!s) return s;
  }
  j->spool = std::move(f.value());
  j->spool_path = path;
  j->spool_begin = begin;
  j->spool_created = created;
  j->persisted_end = persisted;
  j->spec.codec = codec;
  return true;
}

Store::Journal* Store::Get(const std::string& journal) {
  auto it = journals_.find(journal);
  if (it != journals_.end()) return it->second.get();
  auto j = std::make_unique<Journal>();
  j->name = journal;
  Journal* raw = j.get();
  journals_.emplace(journal, std::move(j));
  return raw;
}

Result<bool> Store::OpenSpool(Journal* j) {
  std::string sdir = SpoolDir(dir_, j->name);
  auto made = io::CreateDirs(sdir);
  if (!made) return made;
  j->spool_created = std::time(nullptr);
  j->spool_begin = j->head;
  j->persisted_end = j->head;
  j->spool_path = sdir + "/" + SpoolName(j->head, j->spool_created, j->spec.codec);
  auto f = io::File::OpenAppend(j->spool_path, true);
  if (!f) return f.error();
  // A leftover file of this name holds nothing committed (recovery removed or adopted it).
  auto t = f->Truncate(0);
  if (!t) return t;
  j->spool = std::move(f.value());
  j->spool_new = true;
  return true;
}

Result<bool> Store::FlushBuffer(Journal* j) {
  if (j->buffer.empty()) return true;
  if (!j->spool.is_open()) {
    auto o = OpenSpool(j);
    if (!o) return o;
  }
  auto w = j->spool.Append(j->buffer);
  j->buffer.clear();
  if (w) j->spool.StartWriteback();  // so that Commit's fdatasync has little left to wait for
  return w;
}

Result<bool> Store::Append(const std::string& journal, const JournalSpec& spec, std::string_view bytes) {
  if (failed_) return Poisoned();
  Journal* j = Get(journal);
  Codec spool_codec = j->spec.codec;
  j->spec = spec;
  if (j->spool.is_open()) j->spec.codec = spool_codec;  // a spool keeps the codec it was started with
  if (!j->touched) {
    j->touched = true;
    touched_.push_back(j);
  }
  j->buffer.append(bytes);
  j->written += bytes.size();
  if (j->buffer.size() >= kWriteBuffer) {
    auto f = FlushBuffer(j);
    if (!f) {
      failed_ = true;
      return f;
    }
  }
  return true;
}

Result<std::map<std::string, uint64_t>> Store::Commit(const std::map<std::string, std::string>& checkpoints) {
  if (failed_) return Poisoned();
  std::map<std::string, uint64_t> heads;
  auto fail = [&](const Error& e) -> Error {
    failed_ = true;
    return e;
  };
  for (Journal* j : touched_) {
    if (j->written == j->head) continue;
    auto f = FlushBuffer(j);
    if (!f) return fail(f.error());
    auto s = j->spool.Sync();
    if (!s) return fail(s.error());
    if (j->spool_new) {
      auto d = io::SyncDir(SpoolDir(dir_, j->name));
      if (!d) return fail(d.error());
      j->spool_new = false;
    }
    heads[j->name] = j->written;
  }
  if (!heads.empty() || !checkpoints.empty()) {
    auto a = AppendLedger(EncodeRecord(heads, checkpoints));
    if (!a) return fail(a.error());
  }
  // Committed.
  for (Journal* j : touched_) {
    j->head = j->written;
    j->touched = false;
  }
  touched_.clear();
  for (const auto& [name, head] : heads) committed_.heads[name] = head;
  for (const auto& [k, v] : checkpoints) committed_.checkpoints[k] = v;
  ++stats_.commits;
  if (LogEnabled(LogLevel::kDebug)) {
    for (const auto& [name, head] : heads) Log(LogLevel::kDebug, "journal committed", {{"journal", name}, {"offset", head}});
    for (const auto& [key, _] : checkpoints) Log(LogLevel::kDebug, "checkpoint committed", {{"task", key}});
  }
  if (ledger_size_ >= kLedgerCompactAt) {
    auto c = CompactLedger();
    if (!c) return fail(c.error());
  }
  return heads;
}

Result<bool> Store::Abort() {
  if (failed_) return Poisoned();
  for (Journal* j : touched_) {
    j->buffer.clear();
    if (j->spool.is_open() && j->head == j->spool_begin) {
      // A spool this transaction created holds nothing committed: remove it.
      j->spool.Close();
      std::error_code ec;
      fs::remove(j->spool_path, ec);
    } else if (j->spool.is_open()) {
      auto t = j->spool.Truncate(j->head - j->spool_begin);
      if (!t) {
        failed_ = true;
        return t;
      }
    }
    j->written = j->head;
    j->touched = false;
  }
  touched_.clear();
  return true;
}

Result<bool> Store::AppendLedger(const std::string& record) {
  auto w = ledger_.Append(record);
  auto s = w ? ledger_.Sync() : Result<bool>(w.error());
  if (!s) {
    // The record may be (partly) in the file although the transaction failed: cut it off,
    // or the next process would take the transaction as committed, and a retry would
    // store it twice.
    auto t = ledger_.Truncate(ledger_size_);
    if (t) t = ledger_.Sync();
    if (!t) {
      return Error::Env(fmt::format("{}; then cannot remove the record of the failed transaction from {} ({}): "
                                    "whether that transaction committed is unknown until `flowctl read` shows it",
                                    s.error().message, ledger_.path(), t.error().message));
    }
    return s;
  }
  ledger_size_ += record.size();
  return true;
}

Result<bool> Store::CompactLedger() {
  std::string next = LedgerPath(dir_) + ".next";
  auto f = io::File::OpenAppend(next, true);
  if (!f) return f.error();
  std::string record = EncodeRecord(committed_.heads, committed_.checkpoints);
  auto t = f->Truncate(0);
  if (!t) return t;
  auto w = f->Append(record);
  if (!w) return w;
  auto s = f->Sync();
  if (!s) return s;
  auto r = io::RenameDurably(next, LedgerPath(dir_));
  if (!r) return r;
  ledger_ = std::move(f.value());
  ledger_size_ = record.size();
  return true;
}

Result<bool> Store::PersistDue(std::time_t now) {
  if (failed_) return Poisoned();
  for (auto& [name, j] : journals_) {
    if (!j->spool.is_open() || j->head <= j->persisted_end || j->written != j->head) continue;
    bool full = j->head - j->persisted_end >= j->spec.fragment_size;
    bool old = j->spec.flush_interval > 0 && now - j->spool_created >= j->spec.flush_interval;
    if (full || old) {
      auto p = Persist(j.get());
      if (!p) return p;
    }
  }
  return true;
}

Result<bool> Store::PersistAll() {
  if (failed_) return Poisoned();
  for (auto& [name, j] : journals_) {
    if (!j->spool.is_open() || j->written != j->head) continue;
    auto p = Persist(j.get());
    if (!p) return p;
  }
  return true;
}

// Copies the spool's committed bytes [persisted_end, head) into fragments of about the
// fragment size, each cut after a '\n', written to tmp/ and renamed into the lake; then
// removes the spool. A crash in between leaves fragments and the spool overlapping, which
// recovery and readers resolve by preferring fragments.
Result<bool> Store::Persist(Journal* j) {
  auto fail = [&](const Error& e) -> Result<bool> {
    failed_ = true;
    return e;
  };
  std::string block;
  uint64_t pos = j->persisted_end;
  auto in = io::File::OpenRead(j->spool_path);
  if (!in) return fail(in.error());
  while (pos < j->head) {
    std::string tmp = fmt::format("{}/tmp/fragment-{}-{}", dir_, ::getpid(), tmp_counter_++);
    auto out = io::File::OpenAppend(tmp, true);
    if (!out) return fail(out.error());
    auto t = out->Truncate(0);
    if (!t) return fail(t.error());
    auto enc = Encoder::Make(j->spec.codec, &out.value());
    Sha1 sha;
    uint64_t begin = pos;
    bool cut = false;
    while (pos < j->head && !cut) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(kReadBlock, j->head - pos));
      auto r = in->ReadAt(pos - j->spool_begin, want, &block);
      if (!r) return fail(r.error());
      if (block.empty()) {
        return fail(Error::Env(fmt::format("spool {} ends before offset {}", j->spool_path, pos)));
      }
      std::string_view chunk(block);
      uint64_t size_so_far = pos - begin;
      if (size_so_far + chunk.size() >= j->spec.fragment_size) {
        // Cut after the first line end at or beyond the fragment size.
        size_t from = j->spec.fragment_size > size_so_far ? j->spec.fragment_size - size_so_far - 1 : 0;
        size_t nl = chunk.find('\n', from);
        if (nl != std::string_view::npos) {
          chunk = chunk.substr(0, nl + 1);
          cut = true;
        }
      }
      sha.Update(chunk);
      auto w = enc->Write(chunk);
      if (!w) return fail(w.error());
      out->StartWriteback();
      pos += chunk.size();
    }
    auto fin = enc->Finish();
    if (!fin) return fail(fin.error());
    auto s = out->Sync();
    if (!s) return fail(s.error());
    auto disk = out->Size();
    out->Close();
    std::string rel = FragmentPath(j->name, j->spool_created, begin, pos, sha.HexDigest(), j->spec.codec);
    std::string dest = dir_ + "/lake/" + rel;
    auto made = io::CreateDirs(dest.substr(0, dest.find_last_of('/')));
    if (!made) return fail(made.error());
    auto mv = io::RenameDurably(tmp, dest);
    if (!mv) return fail(mv.error());
    j->persisted_end = pos;
    ++stats_.fragments;
    stats_.fragment_raw_bytes += pos - begin;
    if (disk) stats_.fragment_bytes += *disk;
  }
  if (j->persisted_end == j->head && j->written == j->head) {
    j->spool.Close();
    std::error_code ec;
    fs::remove(j->spool_path, ec);
    if (ec) return fail(Error::Env(fmt::format("cannot remove {}: {}", j->spool_path, ec.message())));
  }
  return true;
}

// ------------------------------------------------------------------------------------------
// JournalReader

struct JournalReader::Source {
  uint64_t begin = 0;  // journal offset of the source's first byte
  uint64_t end = 0;    // offset where the source ends (UINT64_MAX for a spool)
  std::unique_ptr<Decoder> decoder;  // a fragment
  io::File spool;                    // or the spool
  std::string pending;               // decoded bytes not yet returned
  uint64_t pending_at = 0;           // offset of pending[0]
  // A fragment's content is checked against its name as it is decoded.
  std::string path, sha1;
  std::unique_ptr<Sha1> sha;
  uint64_t decoded = 0;

  // Accounts for a newly decoded block (`pending`); an error once the fragment's content is
  // complete and its length or SHA-1 differs from its name.
  Result<bool> Check(const std::string& journal) {
    decoded += pending.size();
    if (decoded > end - begin) {
      return Error::Env(
          fmt::format("journal {}: fragment {} holds more than the {} bytes its name says; it is "
                      "damaged (run `flowctl fsck`)",
                      journal, path, end - begin));
    }
    sha->Update(pending);
    if (decoded < end - begin) return true;
    std::string got = sha->HexDigest();
    if (got != sha1) {
      return Error::Env(fmt::format(
          "journal {}: fragment {} is damaged: the SHA-1 of its content is {}, its name "
          "says {}; its documents cannot be trusted (run `flowctl fsck`, restore the "
          "file from a backup)",
          journal, path, got, sha1));
    }
    return true;
  }
};

JournalReader::JournalReader(std::string dir, std::string journal, uint64_t offset)
    : dir_(std::move(dir)), journal_(std::move(journal)), offset_(offset) {}
JournalReader::~JournalReader() = default;
JournalReader::JournalReader(JournalReader&&) noexcept = default;

Result<bool> JournalReader::OpenSource() {
  source_.reset();
  auto frags = ListFragments(dir_, journal_);
  if (!frags) return frags.error();
  uint64_t next_fragment = UINT64_MAX;
  for (const auto& f : *frags) {
    if (f.begin <= offset_ && offset_ < f.end) {
      bool missing = false;
      auto file = io::File::OpenRead(f.path, &missing);
      if (!file) return file.error();
      auto s = std::make_unique<Source>();
      s->begin = f.begin;
      s->end = f.end;
      s->decoder = Decoder::Make(f.codec, std::move(file.value()));
      s->pending_at = f.begin;
      s->path = f.path;
      s->sha1 = f.sha1;
      s->sha = std::make_unique<Sha1>();
      source_ = std::move(s);
      return true;
    }
    if (f.begin > offset_) next_fragment = std::min(next_fragment, f.begin);
  }
  // The spool: the newest file in spool/<journal>/ beginning at or before the offset.
  std::error_code ec;
  std::string sdir = SpoolDir(dir_, journal_);
  std::string best;
  uint64_t best_begin = 0;
  for (const auto& e : fs::directory_iterator(sdir, ec)) {
    uint64_t begin = 0;
    std::time_t created = 0;
    Codec codec = Codec::kGzip;
    if (ParseSpoolName(e.path().filename().string(), &begin, &created, &codec) && begin <= offset_ &&
        (best.empty() || begin > best_begin)) {
      best = e.path().string();
      best_begin = begin;
    }
  }
  if (best.empty()) return false;
  bool missing = false;
  auto file = io::File::OpenRead(best, &missing);
  if (!file) {
    if (missing) return false;  // persisted meanwhile
    return file.error();
  }
  auto s = std::make_unique<Source>();
  s->begin = best_begin;
  s->end = next_fragment;
  s->spool = std::move(file.value());
  source_ = std::move(s);
  return true;
}

Result<bool> JournalReader::Read(uint64_t head, std::string* out) {
  out->clear();
  for (int attempt = 0; offset_ < head; ++attempt) {
    if (!source_ || offset_ >= source_->end) {
      auto o = OpenSource();
      if (!o) return o;
      if (!o.value()) {
        // A writer may have just moved the spool into a fragment; look once more.
        if (attempt < 3) {
          ::usleep(1000);
          continue;
        }
        return Error::Env(fmt::format("journal {}: no fragment or spool in {} holds offset {}", journal_, dir_,
                                      offset_));
      }
    }
    Source& s = *source_;
    uint64_t limit = std::min(head, s.end);
    if (s.decoder) {
      while (s.pending_at + s.pending.size() <= offset_) {
        s.pending_at += s.pending.size();
        auto r = s.decoder->Read(&s.pending);
        if (!r) return r;
        if (s.pending.empty()) {
          return Error::Env(
              fmt::format("journal {}: fragment {} ends at offset {}, before its name says ({})",
                          journal_, s.path, s.pending_at, s.end));
        }
        auto c = s.Check(journal_);
        if (!c) return c;
      }
      size_t from = static_cast<size_t>(offset_ - s.pending_at);
      size_t n = static_cast<size_t>(std::min<uint64_t>(s.pending.size() - from, limit - offset_));
      out->assign(s.pending, from, n);
    } else {
      size_t want = static_cast<size_t>(std::min<uint64_t>(kReadBlock, limit - offset_));
      auto r = s.spool.ReadAt(offset_ - s.begin, want, out);
      if (!r) return r;
      if (out->empty()) {
        // The spool was truncated or replaced under us: find the source again.
        source_.reset();
        if (attempt < 3) continue;
        return Error::Env(fmt::format("journal {}: the spool ends before committed offset {}", journal_, offset_));
      }
    }
    offset_ += out->size();
    return true;
  }
  return true;
}

}  // namespace flow::store
