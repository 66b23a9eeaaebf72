#include "runtime/testing.h"

#include <fmt/format.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "doc/pack.h"
#include "doc/parse.h"
#include "reduce/combiner.h"
#include "runtime/cursor.h"
#include "runtime/ingest.h"
#include "runtime/source_reader.h"
#include "runtime/supervisor.h"

namespace flow::runtime {
namespace {

std::string Json(const doc::Value& v) {
  std::string s;
  doc::AppendJson(v, &s);
  if (s.size() > 200) s = s.substr(0, 200) + "…";
  return s;
}

bool NumbersEqual(const doc::Value& a, const doc::Value& b) {
  if (doc::IsInteger(a) && doc::IsInteger(b)) return doc::Compare(a, b) == 0;
  double x = a.GetDouble(), y = b.GetDouble();
  if (x == y) return true;
  return std::fabs(x - y) <= 1e-9 * std::max(std::fabs(x), std::fabs(y));
}

int64_t RealNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A test's world: its data directory, store, derivations and simulated clock.
struct World {
  const Plan* plan;
  std::string dir;
  std::unique_ptr<store::Store> store;
  Stamper stamper;
  int64_t skew = 0;  // simulated time = real time + skew
  std::unique_ptr<Supervisor> tasks;

  int64_t Now() const { return RealNanos() + skew; }
  // Ingested documents carry the simulated time.
  void SyncClock() { stamper.clock().AdvanceTo(doc::ClockFromUnixNanos(Now())); }

  ~World() {
    tasks.reset();
    store.reset();
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
  }

  // Opens the plan's derivations (only those: tests have no captures or targets).
  Result<bool> Start() {
    Supervisor::Options o;
    // Each derivation until it has nothing ready, then the next: what one publishes is
    // read by those downstream of it in the same round.
    o.drain_each = true;
    o.clock = Clock([this] { return Now(); });
    o.log = [](const std::string&) {};  // a failure is the test's: see first_failure
    tasks = std::make_unique<Supervisor>(store.get(), &stamper, std::move(o));
    auto derivations = std::make_shared<Plan>();
    derivations->collections = plan->collections;
    derivations->derivations = plan->derivations;
    return tasks->Apply(derivations, {});
  }

  // Runs every derivation until none has anything ready at the current simulated time.
  // The clock is not advanced (documents waiting for a read delay stay where they are).
  Result<bool> RunReady() {
    for (;;) {
      auto round = tasks->Step();
      if (!round) return round.error();
      if (tasks->first_failure()) return *tasks->first_failure();
      if (!round->progress) return true;
    }
  }

  // Runs every derivation until none has anything left, jumping the clock to the next
  // read delay's end whenever that is all that remains.
  Result<bool> RunUntilIdle() {
    for (;;) {
      auto ready = RunReady();
      if (!ready) return ready;
      int64_t next = tasks->NextReady();
      if (!next) return true;
      int64_t now = Now();
      if (next > now) skew += next - now;
    }
  }
};

// A step's outcome: an error of the environment, false with `*failure` set when the
// catalog failed the step, or true.
using StepResult = Result<bool>;

// A derivation failing is the catalog's fault (a failed test); the environment failing
// is not.
bool DeriveFailed(const Error& e) { return e.code == Error::Code::kUser; }

// Ingests the step's documents in one transaction, then derives what that made ready.
StepResult Ingest(World& w, const std::shared_ptr<const Collection>& collection,
                  const catalog::TestStepSpec& s, std::string* failure) {
  IngestTransaction txn(w.store.get(), &w.stamper);
  if (s.documents && s.documents->is_array()) {
    for (size_t k = 0; k < s.documents->items().size(); ++k) {
      rapidjson::Document d(&txn.allocator(collection));
      s.documents->items()[k].ToJson(&d, d.GetAllocator());
      auto added = txn.Add(collection, d);
      if (!added) {
        if (added.error().code != Error::Code::kUser) return added.error();
        *failure = fmt::format("document {}: {}", k, added.error().message);
        auto aborted = txn.Abort();
        (void)aborted;
        return false;
      }
    }
  }
  w.SyncClock();
  auto heads = txn.Commit();
  if (!heads) {
    if (heads.error().code != Error::Code::kUser) return heads.error();
    *failure = heads.error().message;
    return false;
  }
  // What this step made ready is derived before the next step runs (SPEC 6), so that
  // documents derived from it are ordered before those of a later ingest.
  auto ready = w.RunReady();
  if (!ready) {
    if (!DeriveFailed(ready.error())) return ready.error();
    *failure = ready.error().message;
    return false;
  }
  return true;
}

// The collection's documents (those of the step's partitions), fully reduced per key, in
// key order: appended to `*docs` (an array) and their packed keys to `*keys`.
StepResult ReduceCollection(const World& w, const Collection& collection,
                            const catalog::TestStepSpec& s, rapidjson::Document* docs,
                            std::vector<std::string>* keys, std::string* failure) {
  auto filter = CompilePartitionFilter(s.partitions);
  if (!filter) return filter.error();
  reduce::Combiner combiner(collection.reducer, collection.key);
  SourceReader reader(w.dir, {{collection.name, filter.value(), 0, ""}});
  reader.Discover(w.store->committed());
  rapidjson::Document d(&combiner.scratch());
  auto read = reader.Drain(
      [&](const std::string& journal, uint64_t offset, const std::string& line) -> Result<bool> {
        doc::ParseError perr;
        if (!doc::ParseStoredDocument(line, &d, &perr))
          return Error::Env("a stored document is malformed: " + perr.message);
        auto a = combiner.AddScratch(d);
        if (!a) {
          return Error{a.error().code,
                       fmt::format("collection `{}`: the document at offset {} of journal {}: {}",
                                   collection.name, offset, journal, a.error().message)};
        }
        return a;
      });
  if (!read) {
    if (read.error().code != Error::Code::kUser) return read.error();
    *failure = fmt::format("cannot reduce the stored documents: {}", read.error().message);
    return false;
  }
  auto drained = combiner.Drain(true, [&](std::string_view key, doc::Value& d) -> Result<bool> {
    keys->emplace_back(key);
    docs->PushBack(doc::Copy(d, docs->GetAllocator()), docs->GetAllocator());
    return true;
  });
  if (!drained) {
    *failure = drained.error().message;
    return false;
  }
  return true;
}

// The differences of the actual documents (with their packed keys, in key order) from the
// expected ones, aligned by key.
std::vector<std::string> DiffByKey(const Collection& collection,
                                   const rapidjson::Document& expected,
                                   const rapidjson::Document& actual_docs,
                                   const std::vector<std::string>& actual_keys) {
  struct Expect {
    std::string key;
    size_t index;
  };
  std::vector<Expect> want;
  for (rapidjson::SizeType k = 0; k < expected.Size(); ++k) {
    std::string key;
    doc::PackKey(expected[k], collection.key, &key);
    want.push_back({key, k});
  }
  std::vector<std::string> diffs;
  auto key_text = [&](const std::string& packed) { return doc::KeyToJson(packed); };
  std::stable_sort(want.begin(), want.end(),
                   [](const Expect& a, const Expect& b) { return a.key < b.key; });
  size_t a = 0, e = 0;
  while (a < actual_keys.size() || e < want.size()) {
    if (e < want.size() && (a >= actual_keys.size() || want[e].key < actual_keys[a])) {
      diffs.push_back(fmt::format("key {}: missing document (expected {})", key_text(want[e].key),
                                  Json(expected[static_cast<rapidjson::SizeType>(want[e].index)])));
      ++e;
    } else if (e >= want.size() || actual_keys[a] < want[e].key) {
      diffs.push_back(fmt::format("key {}: unexpected document {}", key_text(actual_keys[a]),
                                  Json(actual_docs[static_cast<rapidjson::SizeType>(a)])));
      ++a;
    } else {
      std::vector<std::string> d;
      DiffDocuments(expected[static_cast<rapidjson::SizeType>(want[e].index)],
                    actual_docs[static_cast<rapidjson::SizeType>(a)], "", &d);
      for (auto& line : d)
        diffs.push_back(fmt::format("key {}: {}", key_text(actual_keys[a]), line));
      ++a;
      ++e;
    }
  }
  return diffs;
}

// The differences of the actual documents from the expected ones, compared by position
// (expected documents without their key).
std::vector<std::string> DiffByPosition(const rapidjson::Document& expected,
                                        const rapidjson::Document& actual_docs) {
  std::vector<std::string> diffs;
  size_t n = std::max<size_t>(expected.Size(), actual_docs.Size());
  for (size_t k = 0; k < n; ++k) {
    auto idx = static_cast<rapidjson::SizeType>(k);
    if (k >= actual_docs.Size()) {
      diffs.push_back(
          fmt::format("document {}: missing document (expected {})", k, Json(expected[idx])));
    } else if (k >= expected.Size()) {
      diffs.push_back(
          fmt::format("document {}: unexpected document {}", k, Json(actual_docs[idx])));
    } else {
      std::vector<std::string> d;
      DiffDocuments(expected[idx], actual_docs[idx], "", &d);
      for (auto& line : d) diffs.push_back(fmt::format("document {}: {}", k, line));
    }
  }
  return diffs;
}

// Derives everything left, then compares the collection's reduced documents with the
// step's expected ones.
StepResult Verify(World& w, const Collection& collection, const catalog::TestStepSpec& s,
                  std::string* failure, StepFailure* details) {
  auto idle = w.RunUntilIdle();
  if (!idle) {
    if (!DeriveFailed(idle.error())) return idle.error();
    *failure = idle.error().message;
    return false;
  }
  rapidjson::Document actual_docs(rapidjson::kArrayType);
  std::vector<std::string> actual_keys;
  auto reduced = ReduceCollection(w, collection, s, &actual_docs, &actual_keys, failure);
  if (!reduced || !reduced.value()) return reduced;
  // Expected documents, aligned with the actual ones by key (in key order).
  rapidjson::Document expected(rapidjson::kArrayType);
  if (s.documents) s.documents->ToJson(&expected, expected.GetAllocator());
  if (!expected.IsArray()) expected.SetArray();
  bool keyed = true;
  for (rapidjson::SizeType k = 0; k < expected.Size(); ++k) {
    for (const auto& p : collection.key) keyed = keyed && doc::Lookup(expected[k], p) != nullptr;
  }
  std::vector<std::string> diffs = keyed ? DiffByKey(collection, expected, actual_docs, actual_keys)
                                         : DiffByPosition(expected, actual_docs);
  if (diffs.empty()) return true;
  details->differences = diffs;
  doc::AppendJson(expected, &details->expected);
  doc::AppendJson(actual_docs, &details->actual);
  std::string message = fmt::format("{} difference{}", diffs.size(), diffs.size() == 1 ? "" : "s");
  for (const auto& d : diffs) message += "\n    " + d;
  *failure = std::move(message);
  return false;
}

}  // namespace

void DiffDocuments(const doc::Value& expected, const doc::Value& actual, const std::string& at,
                   std::vector<std::string>* diffs) {
  const std::string where = at.empty() ? "/" : at;
  if (expected.IsObject()) {
    if (!actual.IsObject()) {
      diffs->push_back(fmt::format("{}: expected {}, actual {}", where, Json(expected), Json(actual)));
      return;
    }
    for (const auto& m : expected.GetObject()) {
      std::string name(m.name.GetString(), m.name.GetStringLength());
      std::string child = at + "/" + doc::Pointer::Escape(name);
      auto a = actual.FindMember(m.name);
      if (a == actual.MemberEnd()) {
        diffs->push_back(fmt::format("{}: expected {}, actual missing", child, Json(m.value)));
        continue;
      }
      DiffDocuments(m.value, a->value, child, diffs);
    }
    return;
  }
  if (expected.IsArray()) {
    if (!actual.IsArray()) {
      diffs->push_back(fmt::format("{}: expected {}, actual {}", where, Json(expected), Json(actual)));
      return;
    }
    if (expected.Size() != actual.Size()) {
      diffs->push_back(fmt::format("{}: expected {} items {}, actual {} items {}", where, expected.Size(),
                                   Json(expected), actual.Size(), Json(actual)));
      return;
    }
    for (rapidjson::SizeType i = 0; i < expected.Size(); ++i) {
      DiffDocuments(expected[i], actual[i], at + "/" + std::to_string(i), diffs);
    }
    return;
  }
  bool same = expected.IsNumber() && actual.IsNumber() ? NumbersEqual(expected, actual)
                                                       : doc::Compare(expected, actual) == 0 &&
                                                             expected.GetType() == actual.GetType();
  if (!same) diffs->push_back(fmt::format("{}: expected {}, actual {}", where, Json(expected), Json(actual)));
}

TestRunner::TestRunner(const Plan* plan, std::string scratch_dir)
    : plan_(plan), scratch_dir_(std::move(scratch_dir)) {}

Result<TestOutcome> TestRunner::Run(const catalog::TestSpec& test) {
  auto start = std::chrono::steady_clock::now();
  TestOutcome out;
  World w;
  w.plan = plan_;
  std::string tmpl = scratch_dir_ + "/flowctl-test-XXXXXX";
  if (!::mkdtemp(tmpl.data())) {
    return Error::Env(fmt::format("cannot create a data directory under {}: {}", scratch_dir_, std::strerror(errno)));
  }
  w.dir = tmpl;
  auto store = store::Store::Open(w.dir);
  if (!store) return store.error();
  w.store = std::move(store.value());
  if (auto started = w.Start(); !started) return started.error();
  for (size_t i = 0; i < test.steps.size(); ++i) {
    const catalog::TestStepSpec& s = test.steps[i];
    std::string failure;
    StepFailure details;
    auto c = plan_->collections.find(s.collection);
    StepResult step = false;
    if (c == plan_->collections.end()) {
      failure = fmt::format("no collection `{}`", s.collection);
    } else if (s.kind == catalog::TestStepSpec::Kind::kIngest) {
      step = Ingest(w, c->second, s, &failure);
    } else {
      step = Verify(w, *c->second, s, &failure, &details);
    }
    if (!step) return step.error();
    if (step.value()) continue;
    out.passed = false;
    details.step = i + 1;
    details.kind = s.kind == catalog::TestStepSpec::Kind::kIngest ? "ingest" : "verify";
    details.collection = s.collection;
    details.where = s.where;
    details.message = details.differences.empty() ? failure : failure.substr(0, failure.find('\n'));
    out.failures.push_back(
        fmt::format("step {} ({} {}): {}", i + 1, details.kind, s.collection, failure));
    out.failure = std::move(details);
    break;
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace flow::runtime
