#include "store/journal.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "base/log.h"
#include "store/codec.h"
#include "store/layout.h"
#include "store/ledger.h"

namespace flow::store {
namespace fs = std::filesystem;

namespace {

constexpr size_t kWriteBuffer = 1 << 20;   // uncommitted bytes buffered before a write(2)
constexpr uint64_t kLedgerCompactAt = 16ull << 20;

}  // namespace

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

Store::Store(std::string dir)
    : dir_(std::move(dir)), threads_(std::max(1, static_cast<int>(std::thread::hardware_concurrency()))) {}

Store::~Store() {
  // What persists in the background finishes (its fragments are whole or not in the lake);
  // the spools stay, and the next opening finds what the fragments hold.
  for (auto& job : jobs_) job.done.wait();
}

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
  if (scan.records == 0 || committed_.id.empty()) {
    // A new ledger (no data files exist, checked above) starts with a record naming no
    // heads: from then on an empty or missing ledger beside data is recognisable as damage.
    // It carries the directory's identity, which a ledger of an earlier flowctl gets now.
    committed_.id = NewIdentity();
    std::string header = EncodeRecord({}, {}, committed_.id);
    auto w = ledger_.Append(header);
    if (w) w = ledger_.Sync();
    if (w && scan.records == 0) w = io::SyncDir(dir_);
    if (!w) return w;
    valid += header.size();
  }
  ledger_size_ = valid;
  // What resets left behind when the process died before removing it.
  for (const auto& [journal, generation] : committed_.generations) {
    auto r = RemoveObsolete(journal);
    if (!r) return r;
  }
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
  if (head <= begin || persisted >= head || begin < GenerationOf(committed_, journal).begin) {
    // Nothing committed in it, all of it is in fragments already, or it was reset.
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
  for (const auto& [k, v] : checkpoints) {
    if (v.empty()) {
      committed_.checkpoints.erase(k);
    } else {
      committed_.checkpoints[k] = v;
    }
  }
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

Result<bool> Store::Wipe(const std::string& dir) {
  // The journals go first, out of the lake at once (a rename); the ledger last, so that an
  // interruption leaves a ledger naming missing fragments (refused when read), never
  // fragments without their ledger being read as empty.
  std::error_code ec;
  std::string trash = dir + "/tmp/wiped-" + NewIdentity();
  if (auto made = io::CreateDirs(trash); !made) return made;
  for (const char* sub : {"lake", "spool"}) {
    if (!fs::exists(dir + "/" + sub, ec)) continue;
    fs::rename(dir + "/" + sub, trash + "/" + sub, ec);
    if (ec) return Error::Env(fmt::format("cannot move {}/{} aside: {}", dir, sub, ec.message()));
  }
  if (auto synced = io::SyncDir(dir); !synced) return synced;
  fs::remove(LedgerPath(dir), ec);
  if (ec) return Error::Env(fmt::format("cannot remove {}: {}", LedgerPath(dir), ec.message()));
  if (auto synced = io::SyncDir(dir); !synced) return synced;
  fs::remove_all(dir + "/tmp", ec);
  if (ec) return Error::Env(fmt::format("cannot remove {}/tmp: {}", dir, ec.message()));
  return true;
}

Result<bool> Store::Reset(const std::vector<std::string>& journals, const std::vector<std::string>& cleared,
                          const std::map<std::string, std::string>& set) {
  if (failed_) return Poisoned();
  if (!touched_.empty()) return Error::Internal("Store::Reset within a transaction");
  if (auto r = Reap(true); !r) return r;  // nothing may write fragments of a journal it deletes
  std::map<std::string, Generation> next;
  for (const auto& journal : journals) {
    Generation g = GenerationOf(committed_, journal);
    next[journal] = Generation{g.number + 1, HeadOf(committed_, journal)};
  }
  std::map<std::string, std::string> changed = set;  // "" removes a key
  for (const auto& key : cleared) {
    if (committed_.checkpoints.count(key)) changed.emplace(key, "");
  }
  if (next.empty() && changed.empty()) return true;
  auto a = AppendLedger(EncodeRecord({}, changed, "", next));
  if (!a) {
    failed_ = true;
    return a;
  }
  // Committed.
  for (const auto& [journal, g] : next) committed_.generations[journal] = g;
  for (const auto& [key, value] : changed) {
    if (value.empty()) {
      committed_.checkpoints.erase(key);
    } else {
      committed_.checkpoints[key] = value;
    }
  }
  for (const auto& [journal, g] : next) {
    Log(LogLevel::kInfo, "journal reset", {{"journal", journal}, {"generation", g.number}, {"offset", g.begin}});
    auto it = journals_.find(journal);
    if (it != journals_.end() && it->second->spool.is_open()) {
      Journal* j = it->second.get();
      j->spool.Close();
      j->spool_begin = j->persisted_end = j->head;
    }
    auto r = RemoveObsolete(journal);
    if (!r) {
      failed_ = true;
      return r;
    }
  }
  return true;
}

Result<bool> Store::RemoveObsolete(const std::string& journal) {
  uint64_t begin = GenerationOf(committed_, journal).begin;
  if (begin == 0) return true;
  auto frags = ListFragments(dir_, journal);
  if (!frags) return frags.error();
  std::error_code ec;
  for (const auto& f : *frags) {
    if (f.end > begin) continue;
    fs::remove(f.path, ec);
    if (ec) return Error::Env(fmt::format("cannot remove {}: {}", f.path, ec.message()));
  }
  std::string sdir = SpoolDir(dir_, journal);
  for (const auto& e : fs::directory_iterator(sdir, ec)) {
    uint64_t sb = 0;
    std::time_t created = 0;
    Codec codec = Codec::kGzip;
    if (!ParseSpoolName(e.path().filename().string(), &sb, &created, &codec) || sb >= begin) continue;
    auto it = journals_.find(journal);
    if (it != journals_.end() && it->second->spool.is_open() && it->second->spool_path == e.path().string()) continue;
    fs::remove(e.path(), ec);
    if (ec) return Error::Env(fmt::format("cannot remove {}: {}", e.path().string(), ec.message()));
  }
  return true;
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
  std::string record = EncodeRecord(committed_.heads, committed_.checkpoints, committed_.id, committed_.generations);
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
  if (auto r = Reap(false); !r) return r;
  for (auto& entry : journals_) {
    const std::string& name = entry.first;
    Journal* j = entry.second.get();
    if (!j->spool.is_open() || j->head <= j->persisted_end || j->written != j->head) continue;
    bool full = j->head - j->persisted_end >= j->spec.fragment_size;
    bool old = j->spec.flush_interval > 0 && now - j->spool_created >= j->spec.flush_interval;
    bool running = std::any_of(jobs_.begin(), jobs_.end(), [&](const PersistJob& p) { return p.journal == name; });
    if ((full || old) && !running) {
      // In the background: compressing a fragment takes seconds, and the caller goes on
      // committing meanwhile (appends go after the range, which nothing changes).
      PersistJob job{name, {}};
      job.done = std::async(std::launch::async, WriteFragments, RangeOf(j), 1);
      jobs_.push_back(std::move(job));
    }
  }
  return true;
}

Result<bool> Store::PersistAll() {
  if (failed_) return Poisoned();
  if (auto r = Reap(true); !r) return r;
  std::vector<Journal*> todo;  // in name order
  for (auto& [name, j] : journals_) {
    if (!j->spool.is_open() || j->written != j->head) continue;
    if (j->head > j->persisted_end) {
      todo.push_back(j.get());
    } else if (auto p = Persisted(j.get(), {}); !p) {
      return p;
    }
  }
  if (todo.size() <= 1 || threads_ <= 1) {
    for (Journal* j : todo) {
      if (auto p = Persist(j); !p) return p;
    }
    return true;
  }
  // Several journals (one per partition, as an ingest writes them): up to threads_ of them
  // are written at once, one fragment at a time each; their fragments and names are the
  // same as one by one.
  std::vector<PersistRange> ranges;
  for (Journal* j : todo) ranges.push_back(RangeOf(j));
  std::vector<std::optional<Result<std::vector<WrittenFragment>>>> written(todo.size());
  std::atomic<size_t> next{0};
  {
    std::vector<std::jthread> workers;
    for (int t = 0; t < threads_ && static_cast<size_t>(t) < todo.size(); ++t) {
      workers.emplace_back([&] {
        for (size_t i; (i = next.fetch_add(1)) < todo.size();) written[i] = WriteFragments(ranges[i], 1);
      });
    }
  }
  std::optional<Error> first;
  for (size_t i = 0; i < todo.size(); ++i) {
    if (!*written[i]) {
      if (!first) first = written[i]->error();
      continue;
    }
    if (auto p = Persisted(todo[i], written[i]->value()); !p && !first) first = p.error();
  }
  if (first) {
    failed_ = true;
    return *first;
  }
  return true;
}

PersistRange Store::RangeOf(Journal* j) {
  PersistRange r;
  r.dir = dir_;
  r.journal = j->name;
  r.spool_path = j->spool_path;
  r.spool_begin = j->spool_begin;
  r.spool_created = j->spool_created;
  r.codec = j->spec.codec;
  r.fragment_size = j->spec.fragment_size;
  r.from = j->persisted_end;
  r.to = j->head;
  r.tmp_prefix = fmt::format("{}/tmp/fragment-{}-{}", dir_, ::getpid(), tmp_counter_++);
  return r;
}

Result<bool> Store::Persist(Journal* j) {
  if (j->head <= j->persisted_end) return Persisted(j, {});
  auto written = WriteFragments(RangeOf(j), threads_);
  if (!written) {
    failed_ = true;
    return written.error();
  }
  return Persisted(j, *written);
}

Result<bool> Store::Persisted(Journal* j, const std::vector<WrittenFragment>& fragments) {
  for (const auto& f : fragments) {
    j->persisted_end = std::max(j->persisted_end, f.end);
    ++stats_.fragments;
    stats_.fragment_raw_bytes += f.end - f.begin;
    stats_.fragment_bytes += f.disk_bytes;
  }
  if (j->spool.is_open() && j->persisted_end == j->head && j->written == j->head) {
    j->spool.Close();
    std::error_code ec;
    fs::remove(j->spool_path, ec);
    if (ec) {
      failed_ = true;
      return Error::Env(fmt::format("cannot remove {}: {}", j->spool_path, ec.message()));
    }
  }
  return true;
}

Result<bool> Store::Reap(bool wait) {
  std::optional<Error> first;
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    if (!wait && it->done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      ++it;
      continue;
    }
    auto written = it->done.get();
    Journal* j = Get(it->journal);
    it = jobs_.erase(it);
    if (!written) {
      failed_ = true;
      if (!first) first = written.error();
      continue;
    }
    if (auto p = Persisted(j, *written); !p && !first) first = p.error();
  }
  if (first) return *first;
  return true;
}

}  // namespace flow::store
