// Tests of the journal store (src/store/journal.h, codec.h; SPEC 3.2-3.4): transactions across
// journals, abort, crash recovery, the ledger's torn tail and compaction, persisting spools as
// lake fragments (names, cuts, SHA-1, codecs checked with the system's gzip/zstd/sha1sum),
// reading across fragments and spool, and readers running beside a writer.
#include <doctest/doctest.h>

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "scratch.h"
#include "base/io.h"
#include "store/codec.h"
#include "store/journal.h"
#include "store/persist.h"

using namespace flow;
namespace fs = std::filesystem;

namespace {
using testing::Must;

// A fresh directory under /tmp, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/flowctl-journal-test.XXXXXX";
    char* p = ::mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};


// A ledger record holding `json`: its CRC-32, a space, the JSON and a newline.
std::string LedgerRecord(const std::string& json) {
  uLong crc = crc32(0, reinterpret_cast<const Bytef*>(json.data()), static_cast<uInt>(json.size()));
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08lx", crc);
  return std::string(hex) + " " + json + "\n";
}

std::unique_ptr<store::Store> OpenStore(const std::string& dir) { return Must(store::Store::Open(dir)); }

void Append(store::Store* s, const std::string& journal, const store::JournalSpec& spec, std::string_view bytes) {
  Must(s->Append(journal, spec, bytes));
}

// Deterministic JSON lines of varying length (about 20 to 280 bytes), `n` of them.
std::string Lines(int n, uint32_t seed) {
  std::string out;
  uint32_t x = seed * 2654435761u + 1;
  for (int i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    size_t len = 1 + (x >> 16) % 250;
    out += "{\"seed\":" + std::to_string(seed) + ",\"i\":" + std::to_string(i) + ",\"s\":\"";
    out.append(len, static_cast<char>('a' + (x >> 8) % 26));
    out += "\"}\n";
  }
  return out;
}

// Lines totalling at least `bytes`.
std::string BigLines(size_t bytes, uint32_t seed) {
  std::string out;
  while (out.size() < bytes) out += Lines(200, seed++);
  return out;
}

uint64_t FileSize(const std::string& path) {
  struct stat st;
  REQUIRE_MESSAGE(::stat(path.c_str(), &st) == 0, path);
  return static_cast<uint64_t>(st.st_size);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, std::string_view data, bool append = false) {
  std::ofstream out(path, std::ios::binary | (append ? std::ios::app : std::ios::trunc));
  REQUIRE_MESSAGE(out.good(), path);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.close();
  REQUIRE(out.good());
}

// The regular files of the journal's spool directory.
std::vector<std::string> SpoolFiles(const std::string& dir, const std::string& journal) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir + "/spool/" + journal, ec)) {
    if (e.is_regular_file()) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Every regular file under `root`.
std::vector<std::string> FilesUnder(const std::string& root) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(root, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file()) out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Reads [from, head) of a journal with one JournalReader.
std::string ReadRange(const std::string& dir, const std::string& journal, uint64_t from, uint64_t head) {
  store::JournalReader r(dir, journal, from);
  std::string all, chunk;
  for (int i = 0; i < 1000000; ++i) {
    auto ok = r.Read(head, &chunk);
    REQUIRE_MESSAGE(ok.ok(), (ok.ok() ? std::string() : ok.error().message));
    if (chunk.empty()) break;
    all += chunk;
  }
  CHECK(r.offset() == head);
  // Append (a line cursor's read) gives the same bytes after what its buffer holds, and
  // says how many it appended.
  store::JournalReader a(dir, journal, from);
  std::string appended = "held";
  for (int i = 0; i < 1000000; ++i) {
    size_t before = appended.size();
    auto n = a.Append(head, &appended);
    REQUIRE_MESSAGE(n.ok(), (n.ok() ? std::string() : n.error().message));
    CHECK(appended.size() == before + n.value());
    if (n.value() == 0) break;
  }
  CHECK(appended == "held" + all);
  CHECK(a.offset() == head);
  return all;
}

// Reads a journal from 0 up to the head the ledger names now.
std::string ReadCommitted(const std::string& dir, const std::string& journal) {
  auto state = Must(store::ReadLedger(dir));
  auto it = state.heads.find(journal);
  uint64_t head = it == state.heads.end() ? 0 : it->second;
  return ReadRange(dir, journal, 0, head);
}

// Runs a shell command; returns its exit status.
int Sh(const std::string& cmd) { return std::system(cmd.c_str()); }

std::string Sha1Hex(std::string_view data) {
  store::Sha1 s;
  s.Update(data);
  return s.HexDigest();
}

std::string UtcDateHour(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "utc_date=%04d-%02d-%02d/utc_hour=%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour);
  return buf;
}

// Checks that the fragments of `journal` cover [0, head) contiguously, once, in order.
void CheckContiguous(const std::vector<store::Fragment>& frags, uint64_t head) {
  uint64_t at = 0;
  for (const auto& f : frags) {
    CHECK_MESSAGE(f.begin == at, f.path);
    CHECK(f.begin < f.end);
    at = f.end;
  }
  CHECK(at == head);
}

// The decompressed content of a fragment, by the system's tools.
std::string DecompressWithTool(const store::Fragment& f, const std::string& scratch) {
  std::string tool = f.codec == store::Codec::kGzip ? "gzip -dc" : f.codec == store::Codec::kZstd ? "zstd -dcq" : "cat";
  int rc = Sh(tool + " '" + f.path + "' > '" + scratch + "'");
  REQUIRE_MESSAGE(rc == 0, "decompressing " << f.path);
  return ReadFile(scratch);
}

std::string Hex16(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

const char* kJ = "acme/events/region=EU%20West/pivot=00";

}  // namespace

TEST_CASE("journal: SHA-1 matches the standard vectors and sha1sum") {
  CHECK(Sha1Hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(Sha1Hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  // Incremental updates in odd pieces give the digest of the whole.
  TempDir tmp;
  std::string data = BigLines(300000, 7);
  store::Sha1 s;
  for (size_t i = 0; i < data.size(); i += 977) s.Update(std::string_view(data).substr(i, 977));
  WriteFile(tmp / "data", data);
  int rc = -1;
  std::string sum = testing::ShOut("sha1sum '" + (tmp / "data") + "'", &rc);
  REQUIRE(rc == 0);
  CHECK(s.HexDigest() == sum.substr(0, 40));
}

TEST_CASE("journal: a transaction commits to several journals; readers see committed bytes only") {
  TempDir tmp;
  const std::string dir = tmp.path();
  const std::string a = "a/pivot=00", b = "b/x=1/pivot=00", c = "c/pivot=00";
  store::JournalSpec spec;
  CHECK(Must(store::ReadLedger(dir)).heads.empty());  // no data directory yet
  auto s = OpenStore(dir);

  std::string want_a, want_b, want_c;
  // Transaction 1: a and b, in several appends each.
  std::string a1 = Lines(10, 1), a2 = Lines(5, 2), b1 = Lines(7, 3);
  Append(s.get(), a, spec, a1);
  Append(s.get(), b, spec, b1);
  Append(s.get(), a, spec, a2);
  want_a = a1 + a2;
  want_b = b1;
  // Before the commit the ledger names nothing.
  CHECK(Must(store::ReadLedger(dir)).heads.empty());
  auto heads = Must(s->Commit());
  CHECK(heads == std::map<std::string, uint64_t>{{a, want_a.size()}, {b, want_b.size()}});
  CHECK(Must(store::ReadLedger(dir)).heads == heads);
  CHECK(s->committed().heads == heads);

  // Transaction 2: a and c; b is untouched and keeps its head.
  std::string a3 = Lines(3, 4), c1 = Lines(4, 5);
  Append(s.get(), c, spec, c1);
  Append(s.get(), a, spec, a3);
  want_a += a3;
  want_c = c1;
  heads = Must(s->Commit());
  CHECK(heads == std::map<std::string, uint64_t>{{a, want_a.size()}, {c, want_c.size()}});
  auto state = Must(store::ReadLedger(dir));
  CHECK(state.heads == std::map<std::string, uint64_t>{
                           {a, want_a.size()}, {b, want_b.size()}, {c, want_c.size()}});
  CHECK(ReadCommitted(dir, a) == want_a);
  CHECK(ReadCommitted(dir, b) == want_b);
  CHECK(ReadCommitted(dir, c) == want_c);
  // Reading from the middle gives the suffix; an older head stops the reader there.
  CHECK(ReadRange(dir, a, a1.size(), want_a.size()) == want_a.substr(a1.size()));
  CHECK(ReadRange(dir, a, 3, a1.size()) == want_a.substr(3, a1.size() - 3));
  CHECK(ReadRange(dir, a, want_a.size(), want_a.size()).empty());

  // Transaction 3: more than 1 MiB to a, so part of it reaches the spool file, uncommitted.
  std::string big = BigLines(1536 << 10, 9);
  for (size_t i = 0; i < big.size(); i += 100003) Append(s.get(), a, spec, std::string_view(big).substr(i, 100003));
  auto spools = SpoolFiles(dir, a);
  REQUIRE(spools.size() == 1);
  CHECK(FileSize(spools[0]) > want_a.size() + (1 << 20) - 1);  // the uncommitted bytes are on disk
  state = Must(store::ReadLedger(dir));
  CHECK(state.heads.at(a) == want_a.size());  // ... but not committed
  CHECK(ReadCommitted(dir, a) == want_a);
  CHECK(s->committed().heads.at(a) == want_a.size());

  heads = Must(s->Commit());
  want_a += big;
  CHECK(heads == std::map<std::string, uint64_t>{{a, want_a.size()}});
  CHECK(ReadCommitted(dir, a) == want_a);
  CHECK(FileSize(spools[0]) == want_a.size());
  CHECK(ReadCommitted(dir, b) == want_b);
  CHECK(s->stats().commits == 3);

  // A commit with nothing appended changes no head.
  Append(s.get(), b, spec, "");
  heads = Must(s->Commit());
  CHECK(heads.empty());
  CHECK(Must(store::ReadLedger(dir)).heads.at(b) == want_b.size());
}

TEST_CASE("journal: Abort discards the transaction") {
  TempDir tmp;
  const std::string dir = tmp.path();
  const std::string a = "a/pivot=00", n = "n/pivot=00";
  store::JournalSpec spec;
  auto s = OpenStore(dir);
  std::string committed = Lines(20, 1);
  Append(s.get(), a, spec, committed);
  Must(s->Commit());
  auto spools = SpoolFiles(dir, a);
  REQUIRE(spools.size() == 1);
  CHECK(FileSize(spools[0]) == committed.size());

  SUBCASE("small appends, never written to the spool") {
    Append(s.get(), a, spec, Lines(5, 2));
    Append(s.get(), n, spec, Lines(5, 3));
    Must(s->Abort());
  }
  SUBCASE("appends past 1 MiB, written to the spool, and a spool created by the transaction") {
    std::string big = BigLines(1200 << 10, 4);
    Append(s.get(), a, spec, big);
    Append(s.get(), n, spec, big);
    CHECK(FileSize(spools[0]) > committed.size());
    REQUIRE(SpoolFiles(dir, n).size() == 1);
    Must(s->Abort());
    CHECK(FileSize(spools[0]) == committed.size());  // truncated to the committed head
    CHECK(SpoolFiles(dir, n).empty());               // the aborted transaction's spool is gone
  }
  CHECK(s->committed().heads == std::map<std::string, uint64_t>{{a, committed.size()}});
  CHECK(Must(store::ReadLedger(dir)).heads == std::map<std::string, uint64_t>{{a, committed.size()}});
  CHECK(ReadCommitted(dir, a) == committed);

  // The next transaction appends right after the committed bytes.
  std::string more = Lines(3, 5), nn = Lines(2, 6);
  Append(s.get(), a, spec, more);
  Append(s.get(), n, spec, nn);
  auto heads = Must(s->Commit());
  CHECK(heads == std::map<std::string, uint64_t>{{a, committed.size() + more.size()}, {n, nn.size()}});
  CHECK(ReadCommitted(dir, a) == committed + more);
  CHECK(ReadCommitted(dir, n) == nn);
  CHECK(FileSize(SpoolFiles(dir, a).at(0)) == committed.size() + more.size());

  // And survives a reopen unchanged.
  s.reset();
  s = OpenStore(dir);
  CHECK(ReadCommitted(dir, a) == committed + more);
  CHECK(ReadCommitted(dir, n) == nn);
}

TEST_CASE("journal: a crash discards uncommitted bytes; recovery keeps every committed byte") {
  TempDir tmp;
  const std::string dir = tmp.path();
  const std::string a = "a/pivot=00", b = "b/pivot=00";
  store::JournalSpec spec;

  SUBCASE("nothing committed") {
    auto s = OpenStore(dir);
    Append(s.get(), a, spec, BigLines(1536 << 10, 1));
    REQUIRE(SpoolFiles(dir, a).size() == 1);
    CHECK(FileSize(SpoolFiles(dir, a)[0]) >= (1 << 20));
    s.reset();  // crash: no Commit, no Abort

    s = OpenStore(dir);
    CHECK(s->committed().heads.empty());
    CHECK(Must(store::ReadLedger(dir)).heads.empty());
    CHECK(SpoolFiles(dir, a).empty());  // nothing committed in it: removed
    Append(s.get(), a, spec, "x\n");
    CHECK(Must(s->Commit()) == std::map<std::string, uint64_t>{{a, 2}});
    CHECK(ReadCommitted(dir, a) == "x\n");
  }

  SUBCASE("a commit, then uncommitted appends to it and to another journal") {
    std::string committed_a = Lines(40, 2), committed_b = Lines(10, 3);
    auto s = OpenStore(dir);
    Append(s.get(), a, spec, committed_a);
    Append(s.get(), b, spec, committed_b);
    Must(s->Commit());
    std::string big = BigLines(1536 << 10, 4);
    Append(s.get(), a, spec, big);
    Append(s.get(), b, spec, "not committed\n");
    Append(s.get(), "c/pivot=00", spec, big);
    REQUIRE(SpoolFiles(dir, a).size() == 1);
    CHECK(FileSize(SpoolFiles(dir, a)[0]) > committed_a.size());
    s.reset();  // crash

    s = OpenStore(dir);
    std::map<std::string, uint64_t> want{{a, committed_a.size()}, {b, committed_b.size()}};
    CHECK(s->committed().heads == want);
    CHECK(Must(store::ReadLedger(dir)).heads == want);
    REQUIRE(SpoolFiles(dir, a).size() == 1);
    CHECK(FileSize(SpoolFiles(dir, a)[0]) == committed_a.size());
    CHECK(SpoolFiles(dir, "c/pivot=00").empty());
    CHECK(ReadCommitted(dir, a) == committed_a);
    CHECK(ReadCommitted(dir, b) == committed_b);

    // New appends continue at the committed head.
    std::string more = Lines(5, 5);
    Append(s.get(), a, spec, more);
    CHECK(Must(s->Commit()) == std::map<std::string, uint64_t>{{a, committed_a.size() + more.size()}});
    CHECK(ReadCommitted(dir, a) == committed_a + more);
    CHECK(FileSize(SpoolFiles(dir, a)[0]) == committed_a.size() + more.size());

    // A second crash with a big uncommitted tail on the adopted spool, then reopen again.
    Append(s.get(), a, spec, big);
    s.reset();
    s = OpenStore(dir);
    CHECK(ReadCommitted(dir, a) == committed_a + more);
    CHECK(FileSize(SpoolFiles(dir, a)[0]) == committed_a.size() + more.size());
    Must(s->PersistAll());
    CHECK(SpoolFiles(dir, a).empty());
    CheckContiguous(Must(store::ListFragments(dir, a)), committed_a.size() + more.size());
    CHECK(ReadCommitted(dir, a) == committed_a + more);
  }
}

TEST_CASE("journal: a torn or corrupt ledger tail is ignored and truncated") {
  TempDir tmp;
  const std::string dir = tmp.path();
  const std::string a = "a/pivot=00";
  store::JournalSpec spec;
  std::string first = Lines(10, 1), second = Lines(10, 2);
  {
    auto s = OpenStore(dir);
    Append(s.get(), a, spec, first);
    Must(s->Commit({{"task", "cp1"}}));
    Append(s.get(), a, spec, second);
    Must(s->Commit({{"task", "cp2"}}));
  }
  const std::string ledger = tmp / "ledger";
  const std::string good = ReadFile(ledger);
  const uint64_t valid = good.size();
  REQUIRE(good.back() == '\n');
  const uint64_t head = first.size() + second.size();
  // The last record's line, to forge damaged copies of it.
  size_t start = good.rfind('\n', good.size() - 2) + 1;
  std::string last = good.substr(start);  // with its '\n'
  std::string bigger_head = last;
  {
    std::string h = std::to_string(head);
    size_t at = bigger_head.find(":" + h);
    REQUIRE(at != std::string::npos);
    bigger_head.replace(at + 1, h.size(), std::to_string(head + 1000));  // CRC no longer matches
  }
  std::string bad_crc = last;
  bad_crc[0] = bad_crc[0] == '0' ? '1' : '0';

  std::string tail;
  SUBCASE("garbage without a line end") { tail = "\x01\x02garbage"; }
  SUBCASE("a line of garbage") { tail = "hello world\n"; }
  SUBCASE("a partial record") { tail = last.substr(0, last.size() / 2); }
  SUBCASE("a record missing only its line end") { tail = last.substr(0, last.size() - 1); }
  SUBCASE("a record whose JSON was altered") { tail = bigger_head; }
  SUBCASE("a record with a wrong CRC") { tail = bad_crc; }
  SUBCASE("a valid CRC over JSON that is not a record") { tail = std::string(8, '0') + " \n"; }
  WriteFile(ledger, tail, /*append=*/true);
  REQUIRE(FileSize(ledger) == valid + tail.size());

  auto state = Must(store::ReadLedger(dir));
  CHECK(state.heads == std::map<std::string, uint64_t>{{a, head}});
  CHECK(state.checkpoints == std::map<std::string, std::string>{{"task", "cp2"}});

  auto s = OpenStore(dir);
  CHECK(FileSize(ledger) == valid);  // the valid prefix, nothing else
  CHECK(ReadFile(ledger) == good);
  CHECK(s->committed().heads.at(a) == head);
  std::string more = Lines(3, 3);
  Append(s.get(), a, spec, more);
  Must(s->Commit({{"task", "cp3"}}));
  state = Must(store::ReadLedger(dir));
  CHECK(state.heads.at(a) == head + more.size());
  CHECK(state.checkpoints.at("task") == "cp3");
  CHECK(ReadCommitted(dir, a) == first + second + more);
  s.reset();
  s = OpenStore(dir);
  CHECK(s->committed().heads.at(a) == head + more.size());
  CHECK(s->committed().checkpoints.at("task") == "cp3");
}

TEST_CASE("journal: PersistAll writes hive-layout fragments cut after line ends, named by range and SHA-1") {
  struct Case {
    store::Codec codec;
    const char* ext;
  };
  for (Case cs : {Case{store::Codec::kGzip, ".gz"}, Case{store::Codec::kZstd, ".zst"}, Case{store::Codec::kNone, ".raw"}}) {
    std::string ext = cs.ext;
    CAPTURE(ext);
    TempDir tmp;
    const std::string dir = tmp.path();
    store::JournalSpec spec{cs.codec, 1000, 0};
    std::time_t t0 = std::time(nullptr);
    auto s = OpenStore(dir);
    std::string content;
    for (int i = 0; i < 3; ++i) {
      std::string part = Lines(25 + 10 * i, 10 + i);
      Append(s.get(), kJ, spec, part);
      content += part;
      Must(s->Commit());
    }
    REQUIRE(SpoolFiles(dir, kJ).size() == 1);
    Must(s->PersistAll());
    std::time_t t1 = std::time(nullptr);
    CHECK(SpoolFiles(dir, kJ).empty());  // the spool is removed once persisted

    auto frags = Must(store::ListFragments(dir, kJ));
    REQUIRE(frags.size() >= 3);
    CheckContiguous(frags, content.size());
    CHECK(FilesUnder(dir + "/lake").size() == frags.size());  // nothing else in the lake
    CHECK(FilesUnder(dir + "/tmp").empty());
    CHECK(s->stats().fragments == frags.size());
    CHECK(s->stats().fragment_raw_bytes == content.size());

    const std::regex name_re("^([0-9a-f]{16})-([0-9a-f]{16})-([0-9a-f]{40})(\\.[a-z]+)$");
    const std::set<std::string> hours{UtcDateHour(t0), UtcDateHour(t1)};
    uint64_t disk = 0;
    for (size_t i = 0; i < frags.size(); ++i) {
      const auto& f = frags[i];
      CAPTURE(f.path);
      CHECK(f.codec == cs.codec);
      fs::path p(f.path);
      std::string name = p.filename().string();
      std::smatch m;
      REQUIRE(std::regex_match(name, m, name_re));
      CHECK(std::stoull(m[1].str(), nullptr, 16) == f.begin);
      CHECK(std::stoull(m[2].str(), nullptr, 16) == f.end);
      CHECK(m[4].str() == cs.ext);
      // <dir>/lake/<journal>/utc_date=YYYY-MM-DD/utc_hour=HH/<name>
      std::string date_hour = p.parent_path().parent_path().filename().string() + "/" +
                              p.parent_path().filename().string();
      CHECK(hours.count(date_hour) == 1);
      CHECK(p.parent_path().parent_path().parent_path() == fs::path(dir + "/lake/" + kJ));

      std::string got = DecompressWithTool(f, tmp / "decompressed");
      std::string want = content.substr(f.begin, f.end - f.begin);
      CHECK(got == want);
      CHECK(m[3].str() == Sha1Hex(got));
      // Whole lines: a fragment starts after a line end and ends with one.
      CHECK((f.begin == 0 || content[f.begin - 1] == '\n'));
      CHECK(got.back() == '\n');
      if (i + 1 < frags.size()) {
        // At least the fragment size, cut at the first line end from there on.
        CHECK(got.size() >= 1000);
        CHECK(got.find('\n', 999) == got.size() - 1);
      }
      disk += FileSize(f.path);
    }
    CHECK(s->stats().fragment_bytes == disk);
    // The store reads the lake back.
    CHECK(ReadCommitted(dir, kJ) == content);
    s.reset();
    s = OpenStore(dir);
    CHECK(ReadCommitted(dir, kJ) == content);
    CHECK(Must(store::ListFragments(dir, kJ)).size() == frags.size());
  }
}

TEST_CASE("journal: PersistDue persists spools past their fragment size or flush interval only") {
  TempDir tmp;
  const std::string dir = tmp.path();
  const std::string full = "full/pivot=00", small = "small/pivot=00", aging = "aging/pivot=00";
  store::JournalSpec full_spec{store::Codec::kGzip, 1000, 0};
  store::JournalSpec small_spec{store::Codec::kGzip, 1 << 20, 0};
  store::JournalSpec aging_spec{store::Codec::kZstd, 1 << 20, 1};
  auto s = OpenStore(dir);
  std::string f1 = Lines(20, 1), s1 = Lines(3, 2), g1 = Lines(5, 3);
  REQUIRE(f1.size() >= 1000);
  REQUIRE(s1.size() < 1000);
  std::time_t before = std::time(nullptr);
  Append(s.get(), full, full_spec, f1);
  Append(s.get(), small, small_spec, s1);
  Append(s.get(), aging, aging_spec, g1);
  Must(s->Commit());
  std::time_t after = std::time(nullptr);

  Must(s->PersistDue(before));  // `aging` is younger than its interval
  Must(s->WaitPersisting());
  CHECK(SpoolFiles(dir, full).empty());
  CheckContiguous(Must(store::ListFragments(dir, full)), f1.size());
  CHECK(SpoolFiles(dir, small).size() == 1);
  CHECK(Must(store::ListFragments(dir, small)).empty());
  CHECK(SpoolFiles(dir, aging).size() == 1);
  CHECK(Must(store::ListFragments(dir, aging)).empty());

  Must(s->PersistDue(after + 2));  // now `aging` is past its interval
  Must(s->WaitPersisting());
  CHECK(SpoolFiles(dir, aging).empty());
  auto aged = Must(store::ListFragments(dir, aging));
  CheckContiguous(aged, g1.size());
  REQUIRE(aged.size() == 1);
  CHECK(aged[0].codec == store::Codec::kZstd);
  // `small` has no flush interval and is below its size: never due.
  Must(s->PersistDue(after + 1000000));
  Must(s->WaitPersisting());
  CHECK(SpoolFiles(dir, small).size() == 1);
  CHECK(Must(store::ListFragments(dir, small)).empty());

  // Persisting nothing new is a no-op; appends after a persist start a new spool at the head.
  auto before_frags = Must(store::ListFragments(dir, full));
  Must(s->PersistDue(after + 2));
  Must(s->WaitPersisting());
  CHECK(Must(store::ListFragments(dir, full)).size() == before_frags.size());
  std::string f2 = Lines(3, 4);
  Append(s.get(), full, full_spec, f2);
  Must(s->Commit());
  auto sp = SpoolFiles(dir, full);
  REQUIRE(sp.size() == 1);
  CHECK(fs::path(sp[0]).filename().string().substr(0, 16) == Hex16(f1.size()));
  CHECK(FileSize(sp[0]) == f2.size());
  CHECK(ReadCommitted(dir, full) == f1 + f2);
  CHECK(ReadCommitted(dir, small) == s1);
  CHECK(ReadCommitted(dir, aging) == g1);
}

TEST_CASE("journal: readers read across fragments and the spool from any offset") {
  TempDir tmp;
  const std::string dir = tmp.path();
  store::JournalSpec spec{store::Codec::kGzip, 1000, 0};
  auto s = OpenStore(dir);
  std::string content = Lines(60, 1);
  Append(s.get(), kJ, spec, content);
  Must(s->Commit());
  Must(s->PersistAll());
  auto frags = Must(store::ListFragments(dir, kJ));
  REQUIRE(frags.size() >= 3);
  std::string more = Lines(30, 2);
  Append(s.get(), kJ, spec, more);
  Must(s->Commit());
  REQUIRE(SpoolFiles(dir, kJ).size() == 1);
  CHECK(fs::path(SpoolFiles(dir, kJ)[0]).filename().string().substr(0, 16) == Hex16(content.size()));
  const std::string all = content + more;
  const uint64_t head = all.size();
  const uint64_t mid1 = frags[1].begin + (frags[1].end - frags[1].begin) / 2;
  for (uint64_t off : std::vector<uint64_t>{0, 1, frags[0].end - 1, frags[0].end, mid1, content.size() - 1,
                                            content.size(), content.size() + 1, content.size() + more.size() / 2,
                                            head - 1, head}) {
    CAPTURE(off);
    CHECK(ReadRange(dir, kJ, off, head) == all.substr(off));
  }
  // An older head bounds the read, within a fragment and within the spool.
  CHECK(ReadRange(dir, kJ, 5, mid1) == all.substr(5, mid1 - 5));
  CHECK(ReadRange(dir, kJ, 5, content.size() + 10) == all.substr(5, content.size() + 5));

  // A reader inside the spool keeps going after the writer persists that spool.
  store::JournalReader r(dir, kJ, content.size());
  std::string got, chunk;
  Must(r.Read(content.size() + 10, &chunk));
  got += chunk;
  REQUIRE(got == more.substr(0, 10));
  std::string more2 = Lines(20, 3);
  Append(s.get(), kJ, spec, more2);
  Must(s->Commit());
  Must(s->PersistAll());
  CHECK(SpoolFiles(dir, kJ).empty());
  std::string more3 = Lines(4, 4);
  Append(s.get(), kJ, spec, more3);  // and a new spool after the fragments
  Must(s->Commit());
  uint64_t head2 = head + more2.size() + more3.size();
  for (int i = 0; i < 10000; ++i) {
    Must(r.Read(head2, &chunk));
    if (chunk.empty()) break;
    got += chunk;
  }
  CHECK(got == more + more2 + more3);
  CHECK(r.offset() == head2);
  CHECK(ReadRange(dir, kJ, 0, head2) == all + more2 + more3);
}

TEST_CASE("journal: a crash between persisting fragments and removing the spool loses and duplicates nothing") {
  TempDir tmp;
  const std::string dir = tmp.path();
  store::JournalSpec spec{store::Codec::kGzip, 1000, 0};
  std::string content = Lines(60, 1);
  bool partial = false;
  std::string spool_path;
  {
    auto s = OpenStore(dir);
    Append(s.get(), kJ, spec, content);
    Must(s->Commit());
    auto sp = SpoolFiles(dir, kJ);
    REQUIRE(sp.size() == 1);
    spool_path = sp[0];
    std::string saved = ReadFile(spool_path);
    Must(s->PersistAll());
    auto frags = Must(store::ListFragments(dir, kJ));
    REQUIRE(frags.size() >= 3);
    SUBCASE("every fragment was renamed into the lake") {}
    SUBCASE("only the first fragment was renamed into the lake") {
      partial = true;
      for (size_t i = 1; i < frags.size(); ++i) fs::remove(frags[i].path);
    }
    s.reset();
    WriteFile(spool_path, saved);  // the spool was never unlinked
  }
  // Leftovers of a fragment never renamed.
  WriteFile(tmp / "tmp/fragment-99999-0", "half a fragm");
  fs::create_directories(tmp / "tmp/stray/dir");
  WriteFile(tmp / "tmp/stray/dir/file", "x");
  // Readers do not need recovery to read each byte once.
  CHECK(ReadCommitted(dir, kJ) == content);

  auto s = OpenStore(dir);
  CHECK(fs::is_empty(tmp / "tmp"));
  if (partial) {
    REQUIRE(SpoolFiles(dir, kJ).size() == 1);  // it still holds bytes no fragment has
    CHECK(FileSize(SpoolFiles(dir, kJ)[0]) == content.size());
  } else {
    CHECK(SpoolFiles(dir, kJ).empty());  // all of it is in fragments: removed
  }
  CHECK(ReadCommitted(dir, kJ) == content);

  Must(s->PersistAll());
  CHECK(SpoolFiles(dir, kJ).empty());
  CheckContiguous(Must(store::ListFragments(dir, kJ)), content.size());

  std::string more = Lines(20, 2);
  Append(s.get(), kJ, spec, more);
  Must(s->Commit());
  Must(s->PersistAll());
  auto frags = Must(store::ListFragments(dir, kJ));
  CheckContiguous(frags, content.size() + more.size());  // no overlapping or duplicate ranges
  CHECK(FilesUnder(dir + "/lake").size() == frags.size());
  // The lake, read as a query engine would (every file once), holds every byte once.
  std::string lake;
  for (const auto& f : frags) lake += DecompressWithTool(f, tmp / "decompressed");
  CHECK(lake == content + more);
  CHECK(ReadCommitted(dir, kJ) == content + more);
}

namespace {

struct Decoded {
  bool ok = true;
  std::string content, error;
};

Decoded DecodeFile(store::Codec codec, const std::string& path) {
  Decoded d;
  auto dec = store::Decoder::Make(codec, Must(io::File::OpenRead(path)));
  std::string block;
  for (int i = 0; i < 1000000; ++i) {
    auto r = dec->Read(&block);
    if (!r) {
      d.ok = false;
      d.error = r.error().message;
      return d;
    }
    if (block.empty()) return d;
    d.content += block;
  }
  FAIL("the decoder never ended");
  return d;
}

}  // namespace

TEST_CASE("journal: Encoder and Decoder round-trip several MiB per codec; damaged streams are errors") {
  TempDir tmp;
  std::string data = BigLines(3 << 20, 1);
  // Some incompressible bytes too, and every byte value.
  uint32_t x = 12345;
  for (int i = 0; i < 200000; ++i) {
    x = x * 1103515245u + 12345u;
    data.push_back(static_cast<char>(x >> 24));
  }
  for (int i = 0; i < 256; ++i) data.push_back(static_cast<char>(i));
  data += BigLines(500000, 99);
  const size_t pieces[] = {1, 7, 4093, 65537, 1000003, 13, 2 << 20};
  struct Case {
    store::Codec codec;
    const char* ext;
  };
  for (Case cs : {Case{store::Codec::kGzip, ".gz"}, Case{store::Codec::kZstd, ".zst"}, Case{store::Codec::kNone, ".raw"}}) {
    std::string ext = cs.ext;
    CAPTURE(ext);
    std::string path = tmp / (std::string("data") + cs.ext);
    {
      auto out = Must(io::File::OpenAppend(path, true));
      auto enc = store::Encoder::Make(cs.codec, &out);
      size_t at = 0;
      for (int i = 0; at < data.size(); ++i) {
        size_t n = std::min(pieces[i % std::size(pieces)], data.size() - at);
        Must(enc->Write(std::string_view(data).substr(at, n)));
        at += n;
      }
      Must(enc->Finish());
    }
    uint64_t size = FileSize(path);
    if (cs.codec != store::Codec::kNone) CHECK(size < data.size() / 2);
    Decoded d = DecodeFile(cs.codec, path);
    CHECK(d.ok);
    CHECK(d.content.size() == data.size());
    CHECK(d.content == data);
    store::Fragment f{0, data.size(), cs.codec, path, ""};
    CHECK(DecompressWithTool(f, tmp / "decompressed") == data);  // a standard, complete stream
    if (cs.codec == store::Codec::kNone) continue;

    const std::string whole = ReadFile(path);
    std::vector<std::pair<std::string, std::string>> damaged{
        {"truncated to half", whole.substr(0, whole.size() / 2)},
        {"truncated by one byte", whole.substr(0, whole.size() - 1)},
        {"truncated to its first 10 bytes", whole.substr(0, 10)},
        {"truncated to nothing", ""},
    };
    std::string flipped = whole;
    flipped[flipped.size() / 2] ^= 0x5a;
    damaged.emplace_back("a byte flipped in the middle", flipped);
    std::string bad_trailer = whole;
    bad_trailer[bad_trailer.size() - 2] ^= 0x01;  // gzip: ISIZE/CRC; zstd: the content checksum
    damaged.emplace_back("a byte flipped in the trailer", bad_trailer);
    for (const auto& entry : damaged) {
      // Not a structured binding: CAPTURE's lambda cannot capture one in clang 14 (the
      // sanitizer build).
      const std::string& what = entry.first;
      const std::string& bytes = entry.second;
      CAPTURE(what);
      std::string dpath = tmp / (std::string("damaged") + cs.ext);
      WriteFile(dpath, bytes);
      Decoded bad = DecodeFile(cs.codec, dpath);
      // codec.h: "A corrupt or truncated stream is an error naming the file." The encoders
      // never write an empty file (even an empty stream has a header), so an empty one is
      // truncated too.
      CHECK_MESSAGE(!bad.ok, "a damaged stream decoded without error to " << bad.content.size() << " bytes");
      if (!bad.ok) CHECK(bad.error.find(dpath) != std::string::npos);
    }
  }
  // An empty stream is a valid, empty file for each codec.
  for (store::Codec c : {store::Codec::kGzip, store::Codec::kZstd, store::Codec::kNone}) {
    std::string path = tmp / "empty";
    fs::remove(path);
    {
      auto out = Must(io::File::OpenAppend(path, true));
      auto enc = store::Encoder::Make(c, &out);
      Must(enc->Finish());
    }
    Decoded d = DecodeFile(c, path);
    CHECK(d.ok);
    CHECK(d.content.empty());
  }
}

TEST_CASE("journal: CollectionJournals picks a collection's partitions, not longer collection names") {
  store::LedgerState state;
  for (const char* j : {"a/pivot=00", "a/x=1/pivot=00", "a/b/pivot=00", "a/b/x=1/pivot=00", "ab/pivot=00",
                        "a/x=1/y=%2F/pivot=00", "b/pivot=00"}) {
    state.heads[j] = 1;
  }
  CHECK(store::CollectionJournals(state, "a") ==
        std::vector<std::string>{"a/pivot=00", "a/x=1/pivot=00", "a/x=1/y=%2F/pivot=00"});
  CHECK(store::CollectionJournals(state, "a/b") == std::vector<std::string>{"a/b/pivot=00", "a/b/x=1/pivot=00"});
  CHECK(store::CollectionJournals(state, "ab") == std::vector<std::string>{"ab/pivot=00"});
  CHECK(store::CollectionJournals(state, "c").empty());
}

TEST_CASE("journal: checkpoints are merged into the ledger and survive reopen and compaction") {
  TempDir tmp;
  const std::string dir = tmp.path();
  const std::string a = "a/pivot=00", b = "b/pivot=00";
  store::JournalSpec spec;
  const std::string odd = std::string("line1\nline2 \"quoted\" \\ \xc3\xa9 \x01 ") + std::string(1, '\0') + "end";
  std::string want_a;
  {
    auto s = OpenStore(dir);
    want_a = Lines(5, 1);
    Append(s.get(), a, spec, want_a);
    Must(s->Commit({{"task/one", "cp1"}, {"task/odd", odd}}));
    Must(s->Commit({{"task/two", "x"}}));  // a checkpoint alone is a commit too
    auto state = Must(store::ReadLedger(dir));
    CHECK(state.checkpoints ==
          std::map<std::string, std::string>{{"task/one", "cp1"}, {"task/odd", odd}, {"task/two", "x"}});
    Must(s->Commit({{"task/one", "cp2"}}));
    CHECK(s->committed().checkpoints.at("task/one") == "cp2");
  }
  auto s = OpenStore(dir);
  std::map<std::string, std::string> want_cp{{"task/one", "cp2"}, {"task/odd", odd}, {"task/two", "x"}};
  CHECK(s->committed().checkpoints == want_cp);
  CHECK(Must(store::ReadLedger(dir)).checkpoints == want_cp);
  CHECK(s->committed().heads.at(a) == want_a.size());

  // Compaction: ~17 MiB of ledger records.
  const std::string ledger = tmp / "ledger";
  std::string want_b;
  uint64_t largest = 0;
  for (int i = 0; i < 18; ++i) {
    std::string la = Lines(2, 100 + i), lb = Lines(1, 200 + i);
    Append(s.get(), a, spec, la);
    Append(s.get(), b, spec, lb);
    want_a += la;
    want_b += lb;
    std::string big(1 << 20, static_cast<char>('a' + i));
    Must(s->Commit({{"big", big}, {"task/one", "cp" + std::to_string(3 + i)}}));
    largest = std::max(largest, FileSize(ledger));
  }
  CHECK(largest >= (16u << 20) - (1u << 20));  // it did grow to about the threshold
  CHECK(FileSize(ledger) < (4u << 20));          // and then shrank
  CHECK_FALSE(fs::exists(ledger + ".next"));
  std::map<std::string, uint64_t> want_heads{{a, want_a.size()}, {b, want_b.size()}};
  want_cp["big"] = std::string(1 << 20, static_cast<char>('a' + 17));
  want_cp["task/one"] = "cp20";
  auto state = Must(store::ReadLedger(dir));
  CHECK(state.heads == want_heads);
  CHECK(state.checkpoints == want_cp);
  // Commits after a compaction still land in the ledger.
  std::string la = Lines(2, 300);
  Append(s.get(), a, spec, la);
  want_a += la;
  want_heads[a] = want_a.size();
  Must(s->Commit({{"task/two", "y"}}));
  want_cp["task/two"] = "y";
  state = Must(store::ReadLedger(dir));
  CHECK(state.heads == want_heads);
  CHECK(state.checkpoints == want_cp);
  s.reset();
  s = OpenStore(dir);
  CHECK(s->committed().heads == want_heads);
  CHECK(s->committed().checkpoints == want_cp);
  CHECK(ReadCommitted(dir, a) == want_a);
  CHECK(ReadCommitted(dir, b) == want_b);
}

TEST_CASE("journal: readers run beside a writer that commits and persists") {
  TempDir tmp;
  const std::string dir = tmp.path();
  store::JournalSpec spec{store::Codec::kZstd, 3000, 0};
  // The journal's full content, written in commits of a few lines.
  std::vector<std::string> txns;
  std::string all;
  for (int i = 0; i < 60; ++i) {
    txns.push_back(Lines(3 + i % 5, 1000 + i));
    all += txns.back();
  }
  auto s = OpenStore(dir);
  std::atomic<bool> done{false};
  auto reader = [&](std::string* error) {
    store::JournalReader r(dir, kJ, 0);
    std::string got, chunk;
    for (;;) {
      bool finished = done.load();
      auto state = store::ReadLedger(dir);
      if (!state) {
        *error = state.error().message;
        return;
      }
      auto it = state->heads.find(kJ);
      uint64_t head = it == state->heads.end() ? 0 : it->second;
      for (;;) {
        auto ok = r.Read(head, &chunk);
        if (!ok) {
          *error = "at offset " + std::to_string(r.offset()) + ": " + ok.error().message;
          return;
        }
        if (chunk.empty()) break;
        got += chunk;
        if (got.size() > all.size() || all.compare(0, got.size(), got) != 0) {
          *error = "wrong bytes before offset " + std::to_string(got.size());
          return;
        }
      }
      if (finished && got.size() == head) break;
      std::this_thread::yield();
    }
    if (got != all) *error = "read " + std::to_string(got.size()) + " of " + std::to_string(all.size()) + " bytes";
  };
  std::string e1, e2;
  std::thread t1(reader, &e1), t2(reader, &e2);
  std::string werr;
  for (size_t i = 0; i < txns.size(); ++i) {
    auto a = s->Append(kJ, spec, txns[i]);
    auto c = a ? s->Commit() : Result<std::map<std::string, uint64_t>>(a.error());
    auto p = c ? s->PersistDue(std::time(nullptr)) : Result<bool>(c.error());
    // Every tenth commit waits for the persist running, so that the readers cross several
    // whatever the load (a persist due while one runs waits for the next PersistDue, and
    // on a busy machine all of them could otherwise be one at the end).
    if (p && i % 10 == 9) p = s->WaitPersisting();
    if (!p) {
      werr = p.error().message;
      break;
    }
  }
  if (werr.empty()) {
    auto w = s->WaitPersisting();  // persists run in the background: let the readers cross them
    if (!w) werr = w.error().message;
  }
  done = true;
  t1.join();
  t2.join();
  CHECK(werr == "");
  CHECK(e1 == "");
  CHECK(e2 == "");
  CHECK(Must(store::ListFragments(dir, kJ)).size() >= 3);  // the readers crossed persists
  CHECK(ReadCommitted(dir, kJ) == all);
}

TEST_CASE("journal: fragments of a spool larger than the read block are cut at line ends too") {
  TempDir tmp;
  const std::string dir = tmp.path();
  // A fragment size of exactly the store's 1 MiB read block: the line end that ends a fragment
  // is often in the next block.
  store::JournalSpec spec{store::Codec::kZstd, 1 << 20, 0};
  auto s = OpenStore(dir);
  std::string content = BigLines(3500000, 5);
  for (size_t i = 0; i < content.size(); i += 333333) Append(s.get(), kJ, spec, std::string_view(content).substr(i, 333333));
  Must(s->Commit());
  Must(s->PersistDue(std::time(nullptr)));  // past its fragment size
  Must(s->WaitPersisting());
  CHECK(SpoolFiles(dir, kJ).empty());
  auto frags = Must(store::ListFragments(dir, kJ));
  REQUIRE(frags.size() >= 3);
  CheckContiguous(frags, content.size());
  for (size_t i = 0; i < frags.size(); ++i) {
    CAPTURE(i);
    Decoded d = DecodeFile(frags[i].codec, frags[i].path);
    REQUIRE(d.ok);
    CHECK(d.content == content.substr(frags[i].begin, frags[i].end - frags[i].begin));
    CHECK(frags[i].path.find(Sha1Hex(d.content)) != std::string::npos);
    CHECK(d.content.back() == '\n');
    if (i + 1 < frags.size()) {
      CHECK(d.content.size() >= (1u << 20));
      CHECK(d.content.find('\n', (1u << 20) - 1) == d.content.size() - 1);
    }
  }
  CHECK(ReadCommitted(dir, kJ) == content);
  CHECK(ReadRange(dir, kJ, frags[1].begin + 12345, content.size()) == content.substr(frags[1].begin + 12345));
}

// Reads journal kJ of `dir` up to `limit` into `*got`: false at the first error (its
// message in `*error`).
static bool ReadJournal(const std::string& dir, uint64_t limit, std::string* got, std::string* error) {
  store::JournalReader r(dir, kJ, 0);
  std::string chunk;
  for (int i = 0; i < 10000; ++i) {
    auto ok = r.Read(limit, &chunk);
    if (!ok) {
      *error = ok.error().message;
      return false;
    }
    if (chunk.empty()) return true;
    *got += chunk;
  }
  FAIL("the reader never ended");
  return true;
}

TEST_CASE("journal: a damaged fragment is a read error, not a silently short journal") {
  struct Case {
    store::Codec codec;
    bool empty;  // truncate to nothing rather than to half
  };
  for (Case cs : {Case{store::Codec::kGzip, false}, Case{store::Codec::kZstd, false}, Case{store::Codec::kGzip, true},
                  Case{store::Codec::kZstd, true}}) {
    TempDir tmp;
    const std::string dir = tmp.path();
    store::JournalSpec spec{cs.codec, 1000, 0};
    auto s = OpenStore(dir);
    std::string content = Lines(40, 1);
    Append(s.get(), kJ, spec, content);
    Must(s->Commit());
    Must(s->PersistAll());
    auto frags = Must(store::ListFragments(dir, kJ));
    REQUIRE(frags.size() >= 2);
    std::string whole = ReadFile(frags[1].path);
    WriteFile(frags[1].path, cs.empty ? std::string() : whole.substr(0, whole.size() / 2));
    std::string got, error;
    CHECK_FALSE(ReadJournal(dir, content.size(), &got, &error));
    CHECK(got.size() < frags[1].end);
    CHECK(content.compare(0, got.size(), got) == 0);  // what was returned is right
  }
}

TEST_CASE("journal: a gzip fragment cut between two of its members is a read error") {
  // A gzip fragment is a series of 1 MiB members: one cut cleanly after a member is a valid,
  // shorter gzip stream, which only the fragment's range and SHA-1 tell from the real one.
  TempDir tmp;
  const std::string dir = tmp.path();
  store::JournalSpec spec{store::Codec::kGzip, 64 << 20, 0};
  auto s = OpenStore(dir);
  std::string content = BigLines(3 << 20, 3);
  Append(s.get(), kJ, spec, content);
  Must(s->Commit());
  Must(s->PersistAll());
  auto frags = Must(store::ListFragments(dir, kJ));
  REQUIRE(frags.size() == 1);
  std::string whole = ReadFile(frags[0].path);
  // The end of the first member: its ISIZE (1 MiB, little-endian), then the next header.
  size_t cut = whole.find(std::string("\x00\x00\x10\x00\x1f\x8b\x08", 7));
  REQUIRE(cut != std::string::npos);
  cut += 4;
  WriteFile(frags[0].path, whole.substr(0, cut));
  CHECK(DecompressWithTool(frags[0], tmp / "cut") == content.substr(0, 1 << 20));  // valid gzip
  std::string got, error;
  CHECK_FALSE(ReadJournal(dir, content.size(), &got, &error));
  CHECK(error.find(frags[0].path) != std::string::npos);
  CHECK(got.size() <= (1u << 20));
  CHECK(content.compare(0, got.size(), got) == 0);
}

TEST_CASE("journal: a spool recovered after a crash is persisted with its own codec") {
  TempDir t;
  const std::string journal = "c/pivot=00";
  const std::string content = Lines(200, 5);
  {
    auto s = OpenStore(t.path());
    Append(s.get(), journal, {store::Codec::kZstd, 1000, 0}, content);
    Must(s->Commit());
  }  // a crash before the spool was persisted
  auto s = OpenStore(t.path());
  Must(s->PersistAll());
  auto frags = Must(store::ListFragments(t.path(), journal));
  REQUIRE_FALSE(frags.empty());
  for (const auto& f : frags) CHECK(f.codec == store::Codec::kZstd);
  CHECK(ReadCommitted(t.path(), journal) == content);
}

namespace {

// The byte offsets at which the ledger's records start.
std::vector<size_t> RecordStarts(const std::string& ledger) {
  std::vector<size_t> out;
  for (size_t at = 0; at < ledger.size(); at = ledger.find('\n', at) + 1) out.push_back(at);
  return out;
}

// A directory with four commits to kJ, of 10 lines each (persisted when `persist`).
std::string FourCommits(const std::string& dir, bool persist,
                        store::Codec codec = store::Codec::kGzip) {
  auto s = OpenStore(dir);
  store::JournalSpec spec{codec, 64ull << 20, 0};
  std::string all;
  for (uint32_t i = 1; i <= 4; ++i) {
    std::string lines = Lines(10, i);
    Append(s.get(), kJ, spec, lines);
    Must(s->Commit({{"task", "cp" + std::to_string(i)}}));
    all += lines;
  }
  if (persist) Must(s->PersistAll());
  return all;
}

std::string ErrorOf(const Result<store::LedgerState>& r) {
  return r.ok() ? std::string() : r.error().message;
}

}  // namespace

TEST_CASE("journal: a new ledger starts with a record naming no heads, with the directory's identity") {
  TempDir tmp;
  { auto s = OpenStore(tmp.path()); }
  std::string ledger = ReadFile(tmp / "ledger");
  auto state = Must(store::ReadLedger(tmp.path()));
  REQUIRE(state.id.size() == 32);
  CHECK(ledger.substr(8) == " {\"id\":\"" + state.id + "\",\"heads\":{}}\n");
  CHECK(state.heads.empty());
  { auto s = OpenStore(tmp.path()); }  // reopening adds nothing
  CHECK(ReadFile(tmp / "ledger") == ledger);
  // Another directory gets another identity.
  TempDir other;
  { auto s = OpenStore(other.path()); }
  CHECK(Must(store::ReadLedger(other.path())).id != state.id);
}

TEST_CASE("journal: a ledger of an earlier flowctl, without an identity, gets one when opened for writing") {
  TempDir tmp;
  { auto s = OpenStore(tmp.path()); }
  WriteFile(tmp / "ledger", LedgerRecord("{\"heads\":{}}"));  // the header an earlier version wrote
  CHECK(Must(store::ReadLedger(tmp.path())).id.empty());
  { auto s = OpenStore(tmp.path()); }
  std::string id = Must(store::ReadLedger(tmp.path())).id;
  CHECK(id.size() == 32);
  { auto s = OpenStore(tmp.path()); }  // kept
  CHECK(Must(store::ReadLedger(tmp.path())).id == id);
}

TEST_CASE("journal: a reset starts a journal's next generation at its head, and removes what it held") {
  TempDir tmp;
  const std::string j = "c/pivot=00";
  {
    auto s = OpenStore(tmp.path());
    Must(s->Append(j, {}, "one\ntwo\n"));
    Must(s->Commit({{"task", "cp"}}));
    Must(s->PersistAll());
    Must(s->Append(j, {}, "three\n"));
    Must(s->Commit());  // in the spool only
    Must(s->Reset({j}, {"task"}));
    CHECK(store::GenerationOf(s->committed(), j).number == 2);
    CHECK(store::GenerationOf(s->committed(), j).begin == 14);
    CHECK(s->committed().checkpoints.count("task") == 0);
    CHECK(Must(store::ListFragments(tmp.path(), j)).empty());
    Must(s->Append(j, {}, "four\n"));  // offsets go on from the head
    auto heads = Must(s->Commit());
    CHECK(heads[j] == 19);
  }
  auto s = OpenStore(tmp.path());  // recovery keeps the generation and the new content
  CHECK(store::GenerationOf(s->committed(), j).number == 2);
  CHECK(s->committed().heads.at(j) == 19);
  store::JournalReader reader(tmp.path(), j, store::GenerationOf(s->committed(), j).begin);
  std::string all, block;
  while (Must(reader.Read(19, &block)) && !block.empty()) all += block;
  CHECK(all == "four\n");
  CHECK(store::GenerationOf(s->committed(), "other/pivot=00").number == 1);
}

TEST_CASE("journal: a reset committed before its files were removed is finished by recovery") {
  TempDir tmp;
  const std::string j = "c/pivot=00";
  std::string persisted_before;
  {
    auto s = OpenStore(tmp.path());
    Must(s->Append(j, {}, "one\n"));
    Must(s->Commit());
    Must(s->PersistAll());
  }
  auto frags = Must(store::ListFragments(tmp.path(), j));
  REQUIRE(frags.size() == 1);
  // The reset's record, as if the process died right after writing it.
  WriteFile(tmp / "ledger", LedgerRecord("{\"generations\":{\"" + j + "\":[2,4]},\"heads\":{}}"), true);
  auto s = OpenStore(tmp.path());
  CHECK(Must(store::ListFragments(tmp.path(), j)).empty());
  CHECK(store::GenerationOf(s->committed(), j).begin == 4);
}

TEST_CASE("journal: a reset record that the store could not have written deletes nothing") {
  TempDir tmp;
  const std::string j = "c/pivot=00";
  {
    auto s = OpenStore(tmp.path());
    Must(s->Append(j, {}, "one\n"));
    Must(s->Commit());
  }
  // Its begin lies beyond the journal's head (4): not a reset, and not applied.
  WriteFile(tmp / "ledger", LedgerRecord("{\"generations\":{\"" + j + "\":[2,99]},\"heads\":{}}"), true);
  auto s = OpenStore(tmp.path());  // a torn tail: discarded
  CHECK(store::GenerationOf(s->committed(), j).number == 1);
  store::JournalReader reader(tmp.path(), j, 0);
  std::string block;
  CHECK(Must(reader.Read(4, &block)));
  CHECK(block == "one\n");
}

TEST_CASE("journal: Wipe empties a data directory, which then opens with a new identity") {
  TempDir tmp;
  std::string id;
  {
    auto s = OpenStore(tmp.path());
    id = s->committed().id;
    Must(s->Append("c/pivot=00", {}, "one\n"));
    Must(s->Commit());
    Must(s->PersistAll());
    Must(s->Append("c/pivot=00", {}, "two\n"));
    Must(s->Commit());
  }
  Must(store::Store::Wipe(tmp.path()));
  auto s = OpenStore(tmp.path());
  CHECK(s->committed().heads.empty());
  CHECK(s->committed().id != id);
  CHECK(Must(store::ListFragments(tmp.path(), "c/pivot=00")).empty());
}

TEST_CASE(
    "journal: a damaged ledger record with intact records after it is refused, never truncated") {
  for (bool persist : {false, true}) {
    TempDir tmp;
    const std::string dir = tmp.path();
    const std::string all = FourCommits(dir, persist);
    const std::string ledger = tmp / "ledger";
    const std::string good = ReadFile(ledger);
    auto starts = RecordStarts(good);
    REQUIRE(starts.size() == 5);  // the header and four commits
    std::string bad = good;
    size_t damaged_at = starts[2];
    SUBCASE("a byte of the second commit's JSON") { bad[starts[2] + 20] ^= 0x01; }
    SUBCASE("a digit of the second commit's CRC") {
      bad[starts[2]] = bad[starts[2]] == '0' ? '1' : '0';
    }
    SUBCASE("the line end after the second commit") { bad[starts[3] - 1] = 'x'; }
    SUBCASE("the line end between the last two commits") {
      bad[starts[4] - 1] = 'x';
      damaged_at = starts[3];
    }
    SUBCASE("the second commit zeroed") {
      std::fill(bad.begin() + static_cast<long>(starts[2]),
                bad.begin() + static_cast<long>(starts[3]), '\0');
    }
    WriteFile(ledger, bad);
    std::vector<std::string> before = FilesUnder(dir);

    auto read = store::ReadLedger(dir);
    REQUIRE_FALSE(read.ok());
    CHECK(read.error().ExitCode() == 3);
    std::string msg = read.error().message;
    INFO(msg);
    CHECK(msg.find("ledger " + ledger + " is damaged at byte offset " +
                   std::to_string(damaged_at)) != std::string::npos);
    CHECK(msg.find("flowctl fsck --data-dir " + dir) != std::string::npos);
    auto open = store::Store::Open(dir);
    REQUIRE_FALSE(open.ok());
    CHECK(open.error().message == msg);
    CHECK(ReadFile(ledger) == bad);  // nothing truncated
    CHECK(FilesUnder(dir) == before);

    auto report = Must(store::Verify(dir));
    CHECK_FALSE(report.clean());
    CHECK(report.ledger.damaged);
    CHECK(report.ledger.damaged_at == damaged_at);
    CHECK(report.ledger.records == (damaged_at == starts[2] ? 2u : 3u));
    CHECK(report.ledger.after.heads.at(kJ) == all.size());  // the last commit's head is still known
    REQUIRE_FALSE(report.damage.empty());
    CHECK(report.damage[0].find("byte offset " + std::to_string(damaged_at)) != std::string::npos);
    CHECK(ReadFile(ledger) == bad);
  }
}

TEST_CASE(
    "journal: a missing or empty ledger beside fragments or spools is damage, not an empty "
    "directory") {
  for (bool persist : {false, true}) {
    for (bool remove : {false, true}) {
      TempDir tmp;
      const std::string dir = tmp.path();
      FourCommits(dir, persist);
      if (remove)
        fs::remove(tmp / "ledger");
      else
        WriteFile(tmp / "ledger", "");
      std::vector<std::string> before = FilesUnder(dir);
      auto read = store::ReadLedger(dir);
      REQUIRE_FALSE(read.ok());
      std::string msg = read.error().message;
      INFO(msg);
      CHECK(msg.find(remove ? "is missing" : "is empty") != std::string::npos);
      CHECK(msg.find(persist ? "holds 1 fragment(s) and 0 spool(s)"
                             : "holds 0 fragment(s) and 1 spool(s)") != std::string::npos);
      auto open = store::Store::Open(dir);
      REQUIRE_FALSE(open.ok());
      CHECK(open.error().ExitCode() == 3);
      CHECK(FilesUnder(dir) == before);
      auto report = Must(store::Verify(dir));
      CHECK_FALSE(report.clean());
    }
  }
}

TEST_CASE("journal: a final record lost after its commit reached the lake is damage") {
  TempDir tmp;
  const std::string dir = tmp.path();
  FourCommits(dir, /*persist=*/true);
  const std::string ledger = tmp / "ledger";
  std::string good = ReadFile(ledger);
  auto starts = RecordStarts(good);
  WriteFile(ledger, good.substr(0, starts[4] + 10));  // the last commit's record cut short
  auto read = store::ReadLedger(dir);
  CHECK(read.ok());  // cheap readers see a torn tail...
  auto checked = store::ReadLedger(dir, /*check_files=*/true);
  REQUIRE_FALSE(checked.ok());  // ...but not when they look at the lake
  CHECK(ErrorOf(checked).find("the ledger lost committed records") != std::string::npos);
  auto open = store::Store::Open(dir);
  REQUIRE_FALSE(open.ok());
  CHECK(open.error().message.find("holds committed bytes up to offset") != std::string::npos);
  CHECK(ReadFile(ledger).size() == starts[4] + 10);
  CHECK_FALSE(Must(store::Verify(dir)).clean());
}

TEST_CASE(
    "journal: fsck finds a clean directory clean, and a torn tail and uncommitted bytes harmless") {
  TempDir tmp;
  const std::string dir = tmp.path();
  std::string all = FourCommits(dir, /*persist=*/true);
  {
    auto s = OpenStore(dir);
    store::JournalSpec spec;
    Append(s.get(), kJ, spec, Lines(5, 9));
    Must(s->Commit());
    Append(s.get(), kJ, spec, Lines(5, 10));  // flushed by hand below, never committed
  }
  auto report = Must(store::Verify(dir));
  CHECK(report.clean());
  CHECK(report.fragments == 1);
  CHECK(report.fragments_ok == 1);
  CHECK(report.spools == 1);
  WriteFile(tmp / "ledger", "0badc0de {\"heads\":{", /*append=*/true);
  report = Must(store::Verify(dir));
  INFO(report.notes.size());
  CHECK(report.clean());
  REQUIRE(report.notes.size() == 1);
  CHECK(report.notes[0].find("torn final write") != std::string::npos);
  auto s = OpenStore(dir);  // and recovery discards it
  CHECK(s->committed().heads.at(kJ) == all.size() + Lines(5, 9).size());
}

TEST_CASE(
    "journal: a fragment whose content does not match the SHA-1 in its name is an error naming "
    "it") {
  for (store::Codec codec : {store::Codec::kGzip, store::Codec::kZstd, store::Codec::kNone}) {
    TempDir tmp;
    const std::string dir = tmp.path();
    std::string all = FourCommits(dir, /*persist=*/true, codec);
    auto frags = Must(store::ListFragments(dir, kJ));
    REQUIRE(frags.size() == 1);
    // The same length, one byte changed, as a valid stream of the codec: only the SHA-1 tells.
    std::string altered = all;
    altered[all.size() / 2] = altered[all.size() / 2] == 'a' ? 'b' : 'a';
    {
      auto out = Must(io::File::OpenAppend(frags[0].path, false));
      Must(out.Truncate(0));
      auto enc = store::Encoder::Make(codec, &out);
      Must(enc->Write(altered));
      Must(enc->Finish());
    }
    store::JournalReader r(dir, kJ, 0);
    std::string got, chunk;
    Result<bool> ok = true;
    for (int i = 0; i < 1000 && ok; ++i) {
      ok = r.Read(all.size(), &chunk);
      if (!ok || chunk.empty()) break;
      got += chunk;
    }
    REQUIRE_FALSE(ok.ok());
    INFO(ok.error().message);
    CHECK(ok.error().message.find("fragment " + frags[0].path +
                                  " is damaged: the SHA-1 of its content") != std::string::npos);
    CHECK(got.empty());  // a fragment of one block is verified before any of it is returned
    auto report = Must(store::Verify(dir));
    CHECK_FALSE(report.clean());
    CHECK(report.fragments_ok == 0);
    bool named = false;
    for (const auto& d : report.damage) named = named || d.find(frags[0].path) != std::string::npos;
    CHECK(named);
  }
}

namespace flow {
namespace {

TEST_CASE("journal: a background persist leaves what is committed meanwhile in the spool, readable") {
  TempDir tmp;
  const std::string dir = tmp.path();
  store::JournalSpec spec{store::Codec::kGzip, 1 << 20, 0};
  auto s = OpenStore(dir);
  std::string first = BigLines(3000000, 7), second = BigLines(200000, 8);
  Append(s.get(), kJ, spec, first);
  Must(s->Commit());
  Must(s->PersistDue(std::time(nullptr)));  // starts compressing `first` in the background
  Append(s.get(), kJ, spec, second);        // and the store goes on committing
  Must(s->Commit());
  CHECK(ReadCommitted(dir, kJ) == first + second);
  Must(s->WaitPersisting());
  // The spool still holds `second`, which no fragment does yet.
  CHECK(SpoolFiles(dir, kJ).size() == 1);
  CheckContiguous(Must(store::ListFragments(dir, kJ)), first.size());
  CHECK(ReadCommitted(dir, kJ) == first + second);
  Must(s->PersistAll());
  CHECK(SpoolFiles(dir, kJ).empty());
  CheckContiguous(Must(store::ListFragments(dir, kJ)), first.size() + second.size());
  CHECK(ReadCommitted(dir, kJ) == first + second);
  // Reopened, nothing is lost or doubled.
  s.reset();
  s = OpenStore(dir);
  CHECK(ReadCommitted(dir, kJ) == first + second);
}

TEST_CASE("journal: fragments are the same bytes and names however many are compressed at once") {
  TempDir tmp;
  std::string content = BigLines(5000000, 9);
  std::map<int, std::vector<std::string>> names;
  for (int threads : {1, 2, 5}) {
    const std::string dir = tmp.path() + "/t" + std::to_string(threads);
    fs::create_directories(dir + "/tmp");
    std::string spool = dir + "/spool";
    {
      std::ofstream f(spool, std::ios::binary);
      f << content;
    }
    store::PersistRange r;
    r.dir = dir;
    r.journal = kJ;
    r.spool_path = spool;
    r.spool_created = 1700000000;
    r.codec = store::Codec::kZstd;
    r.fragment_size = 1 << 20;
    r.from = 0;
    r.to = content.size();
    r.tmp_prefix = dir + "/tmp/fragment";
    auto written = Must(store::WriteFragments(r, threads));
    REQUIRE(written.size() >= 4);
    auto frags = Must(store::ListFragments(dir, kJ));
    CheckContiguous(frags, content.size());
    for (const auto& f : frags) names[threads].push_back(fs::path(f.path).filename().string());
    CHECK(fs::is_empty(dir + "/tmp"));
  }
  CHECK(names[1] == names[2]);
  CHECK(names[1] == names[5]);
}

}  // namespace
}  // namespace flow
