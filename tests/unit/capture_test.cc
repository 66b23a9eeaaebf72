// File-drop captures (runtime/capture.h) over real temporary directories and a real store:
// name order, formats and gzip, moves to .done/.failed with collision suffixes, failed files
// that commit nothing, exactly once across a crash between the commit and the move, ignored
// names, and captures compiled into the plan from a catalog.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "catalog_scratch.h"
#include "scratch.h"
#include "base/io.h"
#include "base/url.h"
#include "catalog/check.h"
#include "catalog/loader.h"
#include "runtime/capture.h"
#include "runtime/plan.h"
#include "store/codec.h"
#include "store/journal.h"

namespace flow {
namespace {
using testing::Must;
using testing::TempDir;
namespace fs = std::filesystem;
using runtime::FileDropCapture;
using runtime::FileDropTask;
using runtime::IngestFormat;



// Keyed by /id, with projections id (integer), f (string) for CSV/TSV.
std::shared_ptr<const runtime::Collection> Orders(const std::string& name = "t/orders") {
  catalog::CollectionRecord r;
  r.name = name;
  r.bundle = R"({"$ref":"#/$defs/s0","$defs":{"s0":{"type":"object","required":["id"],
    "properties":{"id":{"type":"integer"},"f":{"type":"string"}}}}})";
  r.key = {"/id"};
  r.projections = {{"id", "/id", false, 4, true}, {"f", "/f", false, 16, false}};
  return Must(runtime::Collection::Compile(r));
}

std::shared_ptr<const FileDropCapture> Capture(const std::string& path, IngestFormat format,
                                               std::vector<std::shared_ptr<const runtime::Collection>> targets) {
  auto c = std::make_shared<FileDropCapture>();
  c->name = "t/drop";
  c->path = path;
  c->format = format;
  c->targets = std::move(targets);
  return c;
}

void Write(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  REQUIRE(out.good());
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Gzip members written one after the other into one file (as pigz or `cat` make them).
void WriteGzip(const std::string& path, const std::vector<std::string>& members) {
  fs::remove(path);
  auto file = Must(io::File::OpenAppend(path, true));
  for (const auto& m : members) {
    auto enc = store::Encoder::Make(store::Codec::kGzip, &file);
    REQUIRE(enc->Write(m).ok());
    REQUIRE(enc->Finish().ok());
  }
}

// The committed documents of an unpartitioned collection, in commit order, without `_meta`.
std::vector<std::string> Docs(store::Store* store, const std::string& collection = "t/orders") {
  std::string journal = collection + "/pivot=00";
  auto head = store->committed().heads.find(journal);
  if (head == store->committed().heads.end()) return {};
  store::JournalReader r(store->dir(), journal);
  std::string all, block;
  for (;;) {
    REQUIRE(r.Read(head->second, &block).ok());
    if (block.empty()) break;
    all += block;
  }
  std::vector<std::string> out;
  std::istringstream lines(all);
  for (std::string line; std::getline(lines, line);) {
    size_t meta = line.find(",\"_meta\"");
    REQUIRE(meta != std::string::npos);
    out.push_back(line.substr(0, meta) + "}");
  }
  return out;
}

// Names in `dir` (dotfiles included), sorted.
std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// A data directory and a capture directory (`drop`, not created yet), a store and a task.
struct Fixture {
  explicit Fixture(IngestFormat format = IngestFormat::kJson) {
    drop = in.path + "/drop";
    store = Must(store::Store::Open(data.path));
    capture = Capture(drop, format, {Orders()});
    task = std::make_unique<FileDropTask>(capture, store.get(), &stamper);
  }
  // A restart: the store reopened (recovered) and a new task over it.
  void Restart() {
    task.reset();
    store.reset();
    store = Must(store::Store::Open(data.path));
    task = std::make_unique<FileDropTask>(capture, store.get(), &stamper);
  }
  uint64_t Step() { return Must(task->Step()); }
  std::string At(const std::string& name) const { return drop + "/" + name; }

  TempDir data, in;
  std::string drop;
  std::unique_ptr<store::Store> store;
  runtime::Stamper stamper;
  std::shared_ptr<const FileDropCapture> capture;
  std::unique_ptr<FileDropTask> task;
};

TEST_CASE("capture: files are ingested in byte-wise name order, one transaction each, then moved to .done") {
  Fixture f;
  REQUIRE(f.task->Open().ok());
  CHECK(fs::is_directory(f.drop));  // created
  CHECK(f.Step() == 0);
  Write(f.At("b.json"), "{\"id\":1,\"f\":\"b\"}\n");
  Write(f.At("a.json"), "{\"id\":2,\"f\":\"a\"}\n{\"id\":5,\"f\":\"a\"}\n");
  Write(f.At("10.json"), "{\"id\":3,\"f\":\"10\"}\n");  // before 9.json: bytes, not numbers
  Write(f.At("9.json"), "{\"id\":4,\"f\":\"9\"}\n");
  uint64_t commits = f.store->stats().commits;
  for (int i = 0; i < 4; ++i) CHECK(f.Step() == 1);
  CHECK(f.Step() == 0);
  CHECK(f.store->stats().commits == commits + 4);
  CHECK(Docs(f.store.get()) == std::vector<std::string>{R"({"id":3,"f":"10"})", R"({"id":4,"f":"9"})",
                                                        R"({"id":2,"f":"a"})", R"({"id":5,"f":"a"})",
                                                        R"({"id":1,"f":"b"})"});
  CHECK(Entries(f.drop) == std::vector<std::string>{".done"});
  CHECK(Entries(f.drop + "/.done") == std::vector<std::string>{"10.json", "9.json", "a.json", "b.json"});
  CHECK(f.task->stats().files == 4);
  CHECK(f.task->stats().documents == 5);
  CHECK(f.task->stats().failed == 0);

  // The checkpoint identifies the last file committed.
  auto cp = runtime::DroppedFile::Decode(f.store->committed().checkpoints.at("capture/t/drop"));
  REQUIRE(cp);
  struct stat st;
  REQUIRE(::stat((f.drop + "/.done/b.json").c_str(), &st) == 0);
  CHECK(cp->name == "b.json");
  CHECK(cp->size == 17);
  CHECK(cp->inode == st.st_ino);
  CHECK(cp->mtime_ns == static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec);
  CHECK(runtime::DroppedFile::Decode(cp->Encode()) == cp);
}

TEST_CASE("capture: JSON lines, CSV and TSV, plain or gzipped (several members)") {
  Fixture f;
  auto csv = Capture(f.in.path + "/csv", IngestFormat::kCsv, {Orders()});
  auto tsv = Capture(f.in.path + "/tsv", IngestFormat::kTsv, {Orders()});
  FileDropTask csv_task(csv, f.store.get(), &f.stamper), tsv_task(tsv, f.store.get(), &f.stamper);
  REQUIRE(f.task->Open().ok());
  REQUIRE(csv_task.Open().ok());
  REQUIRE(tsv_task.Open().ok());

  Write(f.At("a.json"), "{\"id\":1}\r\n\n{\"id\":2}");  // CRLF, a blank line, no final newline
  WriteGzip(f.At("b.json.gz"), {"{\"id\":3}\n{\"id\":", "4}\n"});  // a line split across members
  Write(csv->path + "/a.csv", "id,f\n5,\"x, y\"\n");
  WriteGzip(csv->path + "/b.csv.gz", {"id,f\n6,z\n", "7,w\n"});
  Write(tsv->path + "/a.tsv", "f\tid\nq\t8\n");
  WriteGzip(tsv->path + "/b.txt.gz", {"id\n9\n"});  // the capture's format, whatever the name
  CHECK(f.Step() == 1);
  CHECK(f.Step() == 1);
  CHECK(Must(csv_task.Step()) == 1);
  CHECK(Must(csv_task.Step()) == 1);
  CHECK(Must(tsv_task.Step()) == 1);
  CHECK(Must(tsv_task.Step()) == 1);
  CHECK(f.Step() + Must(csv_task.Step()) + Must(tsv_task.Step()) == 0);
  CHECK(Docs(f.store.get()) == std::vector<std::string>{R"({"id":1})", R"({"id":2})", R"({"id":3})", R"({"id":4})",
                                                        R"({"f":"x, y","id":5})", R"({"f":"z","id":6})",
                                                        R"({"f":"w","id":7})", R"({"f":"q","id":8})",
                                                        R"({"id":9})"});
  CHECK(f.task->stats().bytes == 19 + 18);  // as parsed: after gunzip
  CHECK(Entries(tsv->path + "/.done") == std::vector<std::string>{"a.tsv", "b.txt.gz"});
}

TEST_CASE("capture: an invalid line fails the whole file: nothing is written, .failed holds it and its .error") {
  Fixture f;
  REQUIRE(f.task->Open().ok());
  Write(f.At("a.json"), "{\"id\":1}\n");
  Write(f.At("b.json"), "{\"id\":2}\n{\"id\":3}\n{\"id\":\"x\"}\n{\"id\":4}\n");  // line 3: not an integer
  Write(f.At("c.json"), "{\"id\":5}\n{\"id\":6,}\n");                         // line 2: malformed
  CHECK(f.Step() == 1);
  auto heads = f.store->committed().heads;
  auto checkpoints = f.store->committed().checkpoints;
  CHECK(f.Step() == 1);
  std::string error = Slurp(f.drop + "/.failed/b.json.error");
  INFO(error);
  CHECK(error.rfind("b.json:3: ", 0) == 0);
  CHECK(error.find("/id") != std::string::npos);
  CHECK(f.task->last_failure().find("capture `t/drop`: b.json:3: ") == 0);
  CHECK(f.task->last_failure().find(f.drop + "/.failed/b.json") != std::string::npos);
  CHECK(f.Step() == 1);
  std::string malformed = Slurp(f.drop + "/.failed/c.json.error");
  INFO(malformed);
  CHECK(malformed.rfind("c.json:2:9: ", 0) == 0);  // line:column of the `}`
  CHECK(f.Step() == 0);

  // Nothing of b.json or c.json was committed, not even their checkpoints.
  CHECK(f.store->committed().heads == heads);
  CHECK(f.store->committed().checkpoints == checkpoints);
  CHECK(Docs(f.store.get()) == std::vector<std::string>{R"({"id":1})"});
  CHECK(Entries(f.drop + "/.failed") == std::vector<std::string>{"b.json", "b.json.error", "c.json", "c.json.error"});
  CHECK(Slurp(f.drop + "/.failed/b.json").size() == 38);  // moved intact
  CHECK(f.task->stats().files == 1);
  CHECK(f.task->stats().failed == 2);

  // The store is still usable: a later good file commits.
  Write(f.At("d.json"), "{\"id\":7}\n");
  CHECK(f.Step() == 1);
  CHECK(Docs(f.store.get()).size() == 2);
}

TEST_CASE("capture: an invalid CSV row fails the file with its row and line") {
  Fixture f(IngestFormat::kCsv);
  REQUIRE(f.task->Open().ok());
  Write(f.At("a.csv"), "id,f\n1,a\n2,b\nthree,c\n");
  CHECK(f.Step() == 1);
  std::string error = Slurp(f.drop + "/.failed/a.csv.error");
  INFO(error);
  CHECK(error.rfind("a.csv: row 3 (line 4)", 0) == 0);
  CHECK(Docs(f.store.get()).empty());
}

TEST_CASE("capture: a corrupt, truncated or non-gzip .gz file fails") {
  Fixture f;
  REQUIRE(f.task->Open().ok());
  std::string big;
  for (int i = 0; i < 20000; ++i) big += "{\"id\":" + std::to_string(i) + "}\n";
  WriteGzip(f.At("a.json.gz"), {big});
  std::string gz = Slurp(f.At("a.json.gz"));
  Write(f.At("a.json.gz"), gz.substr(0, gz.size() / 2));  // truncated
  std::string corrupt = gz;
  for (size_t i = 20; i < 60; ++i) corrupt[i] = static_cast<char>(corrupt[i] ^ 0x5a);
  Write(f.At("b.json.gz"), corrupt);
  Write(f.At("c.json.gz"), "{\"id\":1}\n");  // not compressed
  for (int i = 0; i < 3; ++i) CHECK(f.Step() == 1);
  CHECK(f.Step() == 0);
  CHECK(Docs(f.store.get()).empty());
  CHECK(f.task->stats().failed == 3);
  for (const char* name : {"a.json.gz", "b.json.gz", "c.json.gz"}) {
    std::string error = Slurp(f.drop + "/.failed/" + name + ".error");
    INFO(error);
    CHECK(error.rfind(std::string(name) + ": ", 0) == 0);
  }
  CHECK(Slurp(f.drop + "/.failed/a.json.gz.error").find("corrupt gzip data (unexpected end of file)") !=
        std::string::npos);
  CHECK(Slurp(f.drop + "/.failed/b.json.gz.error").find("corrupt gzip data") != std::string::npos);
  CHECK(Slurp(f.drop + "/.failed/c.json.gz.error").find("not gzip data") != std::string::npos);
}

TEST_CASE("capture: a file committed but not moved (a crash, a failed move) is moved without being ingested again") {
  Fixture f;
  REQUIRE(f.task->Open().ok());
  Write(f.At("a.json"), "{\"id\":1}\n");
  Write(f.drop + "/.done", "");  // a file where .done should be: the move after the commit fails
  auto stepped = f.task->Step();
  REQUIRE_FALSE(stepped.ok());
  INFO(stepped.error().message);
  CHECK(stepped.error().code == Error::Code::kEnvironment);
  CHECK(stepped.error().message.find("capture `t/drop`") != std::string::npos);
  CHECK(stepped.error().message.find(f.drop + "/.done") != std::string::npos);
  CHECK(Docs(f.store.get()) == std::vector<std::string>{R"({"id":1})"});  // committed
  CHECK(fs::exists(f.At("a.json")));                                    // not moved
  REQUIRE(fs::remove(f.drop + "/.done"));
  Write(f.At("b.json"), "{\"id\":2}\n");

  SUBCASE("the same task retries the move") {
    CHECK(f.Step() == 1);
    CHECK(f.task->stats().recovered == 1);
  }
  SUBCASE("a restarted task moves it when it opens") {
    f.Restart();
    REQUIRE(f.task->Open().ok());
    CHECK(f.task->stats().recovered == 1);
    CHECK(Entries(f.drop + "/.done") == std::vector<std::string>{"a.json"});
  }
  CHECK(f.Step() == 1);  // b.json
  CHECK(f.Step() == 0);
  CHECK(Docs(f.store.get()) == std::vector<std::string>{R"({"id":1})", R"({"id":2})"});
  CHECK(Entries(f.drop + "/.done") == std::vector<std::string>{"a.json", "b.json"});
}

TEST_CASE("capture: a file changed after its commit, or dropped again under the same name, is ingested again") {
  Fixture f;
  REQUIRE(f.task->Open().ok());
  Write(f.At("a.json"), "{\"id\":1}\n");
  CHECK(f.Step() == 1);
  Write(f.At("a.json"), "{\"id\":2}\n");  // a new file: another inode (the first is in .done)
  CHECK(f.Step() == 1);
  CHECK(f.task->stats().files == 2);
  CHECK(f.task->stats().recovered == 0);
  CHECK(Docs(f.store.get()) == std::vector<std::string>{R"({"id":1})", R"({"id":2})"});
  // Neither older file is lost: collisions get suffixes.
  CHECK(Entries(f.drop + "/.done") == std::vector<std::string>{"a.json", "a.json.1"});
  CHECK(Slurp(f.drop + "/.done/a.json.1") == "{\"id\":2}\n");

  // A restart with the checkpoint naming a file whose content differs: ingested again.
  Write(f.At("a.json"), "{\"id\":3}\n");
  f.Restart();
  REQUIRE(f.task->Open().ok());
  CHECK(f.Step() == 1);
  CHECK(Docs(f.store.get()).size() == 3);
  CHECK(fs::exists(f.drop + "/.done/a.json.2"));
}

TEST_CASE("capture: collision suffixes in .done and .failed keep every older file") {
  Fixture f;
  REQUIRE(f.task->Open().ok());
  fs::create_directories(f.drop + "/.done");
  Write(f.drop + "/.done/c.json", "0");
  for (int i = 1; i <= 6; ++i) Write(f.drop + "/.done/c.json." + std::to_string(i), std::to_string(i));
  Write(f.At("c.json"), "{\"id\":1}\n");
  CHECK(f.Step() == 1);
  CHECK(Slurp(f.drop + "/.done/c.json.7") == "{\"id\":1}\n");
  CHECK(Slurp(f.drop + "/.done/c.json.6") == "6");

  for (int i = 0; i < 3; ++i) {
    Write(f.At("bad.json"), "nope " + std::to_string(i) + "\n");
    CHECK(f.Step() == 1);
  }
  // An orphan .error (a crash between writing it and moving its file) also reserves its name.
  Write(f.drop + "/.failed/bad.json.3.error", "orphan\n");
  Write(f.At("bad.json"), "nope 3\n");
  CHECK(f.Step() == 1);
  CHECK(Entries(f.drop + "/.failed") ==
        std::vector<std::string>{"bad.json", "bad.json.1", "bad.json.1.error", "bad.json.2", "bad.json.2.error",
                                 "bad.json.3.error", "bad.json.4", "bad.json.4.error", "bad.json.error"});
  CHECK(Slurp(f.drop + "/.failed/bad.json.4") == "nope 3\n");
  CHECK(Slurp(f.drop + "/.failed/bad.json.4.error").rfind("bad.json:1:", 0) == 0);
}

TEST_CASE("capture: dotfiles, .tmp and .part files, directories, symbolic links and FIFOs are left alone") {
  Fixture f;
  REQUIRE(f.task->Open().ok());
  TempDir elsewhere;
  Write(elsewhere.path + "/x.json", "{\"id\":9}\n");
  Write(f.At(".hidden.json"), "{\"id\":1}\n");
  Write(f.At("a.json.tmp"), "{\"id\":2}\n");
  Write(f.At("b.json.part"), "{\"id\":3}\n");
  fs::create_directories(f.At("sub.json"));
  Write(f.At("sub.json/c.json"), "{\"id\":4}\n");
  fs::create_symlink(elsewhere.path + "/x.json", f.At("link.json"));
  REQUIRE(::mkfifo(f.At("fifo.json").c_str(), 0644) == 0);
  CHECK(f.Step() == 0);
  CHECK(Docs(f.store.get()).empty());
  CHECK(Entries(f.drop) ==
        std::vector<std::string>{".hidden.json", "a.json.tmp", "b.json.part", "fifo.json", "link.json", "sub.json"});
  CHECK_FALSE(runtime::IsCapturedName(".done"));
  CHECK(runtime::IsCapturedName("a.json.tmp.gz"));

  // A writer's rename makes a file ready.
  fs::rename(f.At("a.json.tmp"), f.At("a.json"));
  CHECK(f.Step() == 1);
  CHECK(Docs(f.store.get()) == std::vector<std::string>{R"({"id":2})"});
}

TEST_CASE("capture: empty files commit zero documents and are moved to .done") {
  Fixture f(IngestFormat::kCsv);
  REQUIRE(f.task->Open().ok());
  Write(f.At("a.csv"), "");
  WriteGzip(f.At("b.csv.gz"), {""});
  Write(f.At("c.csv"), "id,f\n");  // a header alone
  for (int i = 0; i < 3; ++i) CHECK(f.Step() == 1);
  CHECK(f.Step() == 0);
  CHECK(f.task->stats().files == 3);
  CHECK(f.task->stats().documents == 0);
  CHECK(Entries(f.drop + "/.done") == std::vector<std::string>{"a.csv", "b.csv.gz", "c.csv"});
  CHECK(runtime::DroppedFile::Decode(f.store->committed().checkpoints.at("capture/t/drop"))->name == "c.csv");
}

TEST_CASE("capture: a file larger than a block and than the memory budget is streamed") {
  TempDir data, in;
  auto store = Must(store::Store::Open(data.path));
  runtime::Stamper stamper;
  auto capture = Capture(in.path, IngestFormat::kJson, {Orders()});
  reduce::CombinerOptions options;
  options.memory_budget = 1 << 20;
  FileDropTask task(capture, store.get(), &stamper, options);
  REQUIRE(task.Open().ok());
  std::string big;
  const int n = 60000;
  for (int i = 0; i < n; ++i) big += fmt::format("{{\"id\":{},\"f\":\"{:040}\"}}\n", i, i);
  REQUIRE(big.size() > (3u << 20));
  Write(in.path + "/a.json", big);
  WriteGzip(in.path + "/b.json.gz", {big});
  CHECK(Must(task.Step()) == 1);
  CHECK(Must(task.Step()) == 1);
  CHECK(task.stats().documents == 2 * n);
  CHECK(task.stats().bytes == 2 * big.size());
  CHECK(Docs(store.get()).size() == static_cast<size_t>(2 * n));
}

TEST_CASE("capture: a directory that cannot be used is an environment error naming the capture and path") {
  Fixture f;
  Write(f.drop, "not a directory");
  auto opened = f.task->Open();
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.error().code == Error::Code::kEnvironment);
  CHECK(opened.error().message.find("capture `t/drop`") != std::string::npos);
  CHECK(opened.error().message.find(f.drop) != std::string::npos);
  auto stepped = f.task->Step();
  CHECK_FALSE(stepped.ok());  // not opened
}

TEST_CASE("capture: a malformed checkpoint is an environment error") {
  Fixture f;
  REQUIRE(f.store->Commit({{"capture/t/drop", "{\"file\":1}"}}).ok());
  auto opened = f.task->Open();
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.error().code == Error::Code::kEnvironment);
  CHECK(opened.error().message.find("checkpoint of capture `t/drop`") != std::string::npos);
}

TEST_CASE("capture: the plan compiles catalog captures; several bindings each receive every document") {
  TempDir dir, data;
  Write(dir.path + "/flow.yaml", R"(
collections:
  - name: t/a
    schema: {type: object, properties: {id: {type: integer}}, required: [id]}
    key: [/id]
  - name: t/b
    schema: {type: object, properties: {id: {type: integer}}, required: [id]}
    key: [/id]
captures:
  t/drop:
    endpoint:
      fileDrop: {path: incoming/t, format: csv}
    bindings:
      - target: t/a
      - target: t/b
)");
  auto checked = testing::LoadAndCheckCatalog(dir.path + "/flow.yaml");
  REQUIRE_MESSAGE(checked->diags.empty(), checked->Text());
  auto plan = Must(runtime::CompilePlan(checked->cat(), checked->built, {}));
  REQUIRE(plan.captures.size() == 1);
  const auto& capture = plan.captures[0];
  CHECK(capture->name == "t/drop");
  CHECK(capture->path == dir.path + "/incoming/t");
  CHECK(capture->format == IngestFormat::kCsv);
  REQUIRE(capture->targets.size() == 2);
  CHECK(capture->targets[1]->name == "t/b");

  auto store = Must(store::Store::Open(data.path));
  runtime::Stamper stamper;
  FileDropTask task(capture, store.get(), &stamper);
  REQUIRE(task.Open().ok());
  Write(capture->path + "/a.csv", "id\n1\n2\n");
  CHECK(Must(task.Step()) == 1);
  CHECK(Docs(store.get(), "t/a") == std::vector<std::string>{R"({"id":1})", R"({"id":2})"});
  CHECK(Docs(store.get(), "t/b") == std::vector<std::string>{R"({"id":1})", R"({"id":2})"});
  CHECK(store->stats().commits == 1);
}

}  // namespace
}  // namespace flow
