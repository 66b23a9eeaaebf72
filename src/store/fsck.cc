#include "store/journal.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "store/codec.h"
#include "store/layout.h"
#include "store/ledger.h"

namespace flow::store {
namespace fs = std::filesystem;

namespace {

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

// Every committed byte must be in a fragment that verifies or in a spool: reports the
// committed bytes of each of `journals` that none of its `ranges` ([begin, end) held) holds.
void ReportGaps(const std::set<std::string>& journals,
                std::map<std::string, std::vector<std::pair<uint64_t, uint64_t>>>* ranges,
                FsckReport* rep) {
  const LedgerScan& L = rep->ledger;
  for (const auto& j : journals) {
    uint64_t head = HeadOf(rep->committed, j);
    if (L.damaged) head = std::max(head, HeadOf(rep->ledger.after, j));
    auto& rs = (*ranges)[j];
    std::sort(rs.begin(), rs.end());
    uint64_t at = GenerationOf(rep->committed, j).begin;  // what a reset left behind is gone
    for (const auto& [b, e] : rs) {
      if (at >= head) break;
      if (b > at) {
        rep->damage.push_back(
            fmt::format("journal {}: committed bytes [{}, {}) are in no intact fragment or spool",
                        j, at, std::min(b, head)));
      }
      at = std::max(at, e);
    }
    if (at < head) {
      rep->damage.push_back(fmt::format(
          "journal {}: committed bytes [{}, {}) are in no intact fragment or spool", j, at, head));
    }
  }
}

}  // namespace

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
  ReportGaps(journals, &ranges, &rep);
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

}  // namespace flow::store
