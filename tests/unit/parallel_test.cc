// Parallel combining (runtime/parallel.h, runtime/combine.h, `read --reduced`): chunks cut as
// LineReader cuts lines, partitions consuming in input order, and `combine` giving the same
// bytes and the same first error for any number of threads.
#include "runtime/parallel.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "doc/pack.h"
#include "doc/parse.h"
#include "doc/value.h"
#include "runtime/combine.h"
#include "runtime/ingest_file.h"
#include "runtime/input.h"
#include "runtime/read.h"
#include "scratch.h"
#include "store/journal.h"

namespace flow {
namespace {
using testing::Must;
using testing::TempDir;

std::string Write(const TempDir& t, const std::string& name, const std::string& text) {
  std::string path = t.path + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

struct Lines {
  std::vector<std::pair<size_t, std::string>> lines;
  bool too_long = false;
  size_t number = 0;
  std::string message;
  bool operator==(const Lines&) const = default;
};

Lines ByLineReader(const std::string& path, size_t max_line) {
  FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE(f);
  runtime::LineReader r(f, max_line);
  Lines out;
  std::string_view line;
  while (r.Next(&line)) {
    CHECK(line.data()[line.size()] == '\0');
    out.lines.emplace_back(r.number(), std::string(line));
  }
  out.too_long = r.too_long();
  if (out.too_long) out.number = r.number(), out.message = r.TooLongMessage();
  std::fclose(f);
  return out;
}

Lines ByChunkReader(const std::string& path, size_t target, size_t max_line) {
  FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE(f);
  runtime::ChunkReader r(f, target, max_line);
  Lines out;
  runtime::LineChunk chunk;
  while (r.Next(&chunk)) {
    chunk.ForEachLine([&](std::string_view line, size_t number) {
      CHECK(line.data()[line.size()] == '\0');
      out.lines.emplace_back(number, std::string(line));
      return true;
    });
  }
  out.too_long = r.too_long();
  if (out.too_long) out.number = r.number(), out.message = r.TooLongMessage();
  std::fclose(f);
  return out;
}

TEST_CASE("parallel: ChunkReader gives LineReader's lines, numbers and too-long errors") {
  TempDir t;
  const std::vector<std::string> inputs = {
      "",
      "\n",
      "a",
      "a\n",
      "\xEF\xBB\xBF{\"x\":1}\r\n\n  \nbb\nccc",
      "one\ntwo\n\n\nthree\n",
      "short\n" + std::string(30, 'x') + "\nafter\n",  // too long at max_line 20
      "short\n" + std::string(21, 'x'),                // 21 bytes, no end: too long
      "short\n" + std::string(20, 'y'),                // exactly the limit at the end
      "short\n" + std::string(20, 'y') + "\nz\n",      // exactly the limit, then more
      std::string(25, 'q'),
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::string path = Write(t, fmt::format("in{}", i), inputs[i]);
    for (size_t max_line : {size_t{20}, runtime::LineReader::kMaxLine}) {
      Lines want = ByLineReader(path, max_line);
      for (size_t target : {1, 3, 7, 64, 1 << 20}) {
        INFO("input " << i << ", max_line " << max_line << ", target " << target);
        CHECK(ByChunkReader(path, target, max_line) == want);
      }
    }
  }
}

// Items carry a number; partitions must see them in order whatever the threads do.
struct Numbered : runtime::PipelineItem {
  size_t n = 0;
  std::atomic<bool> processed{false};
};

TEST_CASE("parallel: each partition consumes the items in push order, after they are processed") {
  for (unsigned threads : {1u, 2u, 4u, 7u}) {
    INFO("threads " << threads);
    constexpr size_t kPartitions = 5, kItems = 300;
    std::vector<std::vector<size_t>> seen(kPartitions);
    std::atomic<bool> unprocessed{false};
    runtime::PipelineOptions o;
    o.threads = threads;
    o.partitions = kPartitions;
    o.max_in_flight = 3;
    {
      runtime::OrderedPipeline pipe(
          o,
          [&](runtime::PipelineItem& item) {
            auto& it = static_cast<Numbered&>(item);
            if (it.n % 7 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
            it.processed = true;
          },
          [&](size_t p, runtime::PipelineItem& item) {
            auto& it = static_cast<Numbered&>(item);
            if (!it.processed) unprocessed = true;
            if ((it.n + p) % 5 == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
            seen[p].push_back(it.n);  // one call at a time per partition
          });
      for (size_t i = 0; i < kItems; ++i) {
        auto item = std::make_unique<Numbered>();
        item->n = i;
        pipe.Push(std::move(item));
      }
      pipe.Finish();
    }
    CHECK_FALSE(unprocessed);
    for (size_t p = 0; p < kPartitions; ++p) {
      REQUIRE(seen[p].size() == kItems);
      for (size_t i = 0; i < kItems; ++i) CHECK(seen[p][i] == i);
    }
  }
}

// Keyed by /k, with a location of every reduction strategy.
std::shared_ptr<const runtime::Collection> Compile() {
  catalog::CollectionRecord r;
  r.name = "t/all";
  r.bundle = R"({"$ref":"#/$defs/s0","$defs":{"s0":{"type":"object","required":["k"],
    "reduce":{"strategy":"merge"},
    "properties":{"k":{"type":"integer"},
      "f":{"type":"number","reduce":{"strategy":"sum"}},
      "i":{"type":"integer","reduce":{"strategy":"sum"}},
      "lww":{"type":"string","reduce":{"strategy":"lastWriteWins"}},
      "fww":{"type":"string","reduce":{"strategy":"firstWriteWins"}},
      "app":{"type":"array","reduce":{"strategy":"append"}},
      "mn":{"type":"number","reduce":{"strategy":"minimize"}},
      "mx":{"type":"number","reduce":{"strategy":"maximize"}},
      "m":{"type":"object","reduce":{"strategy":"merge"},
           "additionalProperties":{"type":"number","reduce":{"strategy":"sum"}}},
      "s":{"type":"object","reduce":{"strategy":"set"},
           "properties":{"add":{"type":"object"},"remove":{"type":"object"}}},
      "plain":{"type":"string"}}}}})";
  r.key = {"/k"};
  r.projections.push_back({"k", "/k", false, 4, true});
  return Must(runtime::Collection::Compile(r));
}

// `n` documents over `keys` keys, floats with many significant digits (so that the order of
// additions shows in the sums).
std::string Generate(size_t n, size_t keys, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    size_t k = rng() % keys;
    double f = std::uniform_real_distribution<double>(-1e3, 1e3)(rng);
    out += fmt::format(
        R"({{"k":{},"f":{:.17g},"i":{},"lww":"l{}","fww":"f{}","app":[{}],"mn":{:.17g},"mx":{},)"
        R"("m":{{"x{}":{:.17g}}},"s":{{"{}":{{"e{}":{}}}}},"plain":"p{}"}})",
        k, f, rng() % 1000, i, i, i, f * 3, rng() % 100000, rng() % 4, f, rng() % 5 ? "add" : "remove",
        rng() % 6, i, i);
    out += i % 97 == 0 ? "\n\n" : "\n";
  }
  return out;
}

struct Combined {
  std::string out, where, error;
  runtime::CombineResult result;
};

Combined Combine(const std::shared_ptr<const runtime::Collection>& c, const std::string& path, unsigned threads,
                 uint64_t budget, bool combined_only = false) {
  auto input = Must(runtime::Input::Open(path));
  reduce::CombinerOptions o;
  o.memory_budget = budget;
  Combined out;
  auto r = runtime::CombineInput(
      c, input, o, combined_only, nullptr,
      [&](std::string_view line) -> Result<bool> {
        out.out.append(line);
        out.out.push_back('\n');
        return true;
      },
      &out.where, threads);
  if (r.ok()) {
    out.result = *r;
  } else {
    out.error = r.error().message;
  }
  return out;
}

TEST_CASE("parallel combine: the same bytes for any number of threads, spilling or not") {
  TempDir t;
  auto c = Compile();
  std::string path = Write(t, "in.json", Generate(8000, 400, 1));
  for (uint64_t budget : {uint64_t{8} << 20, uint64_t{64} << 10, uint64_t{1}}) {
    for (bool combined : {false, true}) {
      INFO("budget " << budget << (combined ? ", combined" : ""));
      Combined one = Combine(c, path, 1, budget, combined);
      REQUIRE_MESSAGE(one.error.empty(), one.error);
      CHECK(one.result.documents == 8000);
      CHECK(one.result.keys == 400);
      if (budget == 8 << 20) CHECK(one.result.combiner.spills == 0);
      if (budget < 8 << 20) CHECK(one.result.combiner.spills > 0);
      for (unsigned threads : {2u, 4u, 7u}) {
        INFO("threads " << threads);
        Combined many = Combine(c, path, threads, budget, combined);
        REQUIRE_MESSAGE(many.error.empty(), many.error);
        CHECK(many.out == one.out);
        CHECK(many.result.documents == one.result.documents);
        CHECK(many.result.combiner.spills == one.result.combiner.spills);
      }
    }
  }
}

TEST_CASE("parallel combine: the first error in input order wins, with its place") {
  TempDir t;
  auto c = Compile();
  std::vector<std::string> lines;
  std::string text = Generate(6000, 300, 2);
  for (size_t b = 0, e; b < text.size(); b = e + 1) {
    e = text.find('\n', b);
    lines.push_back(text.substr(b, e - b));
  }
  auto with = [&](std::vector<std::pair<size_t, std::string>> changes) {
    auto copy = lines;
    for (auto& [n, s] : changes) copy[n - 1] = s;
    std::string out;
    for (auto& l : copy) out += l + "\n";
    return out;
  };
  const std::string overflow = R"({"k":100000,"i":18446744073709551615})";
  struct Case {
    std::string name, text, where, message;
  };
  const std::vector<Case> cases = {
      {"invalid before malformed", with({{2500, R"({"k":"x"})"}, {5000, "{\"k\":1,}"}}), ":2500",
       "does not validate"},
      {"malformed before invalid", with({{2500, "{\"k\":1,}"}, {5000, R"({"k":"x"})"}}), ":2500:8",
       "invalid JSON"},
      {"reduction before malformed", with({{2000, overflow}, {3000, overflow}, {5000, "nope"}}), ":3000",
       "cannot reduce into collection `t/all`: key [100000]: sum at /i: integer overflow"},
      {"malformed before reduction", with({{2000, overflow}, {3000, overflow}, {2999, "[1"}}), ":2999:3",
       "invalid JSON"},
      {"too long after an error", with({{10, "{"}}) + std::string(17 << 20, ' '), ":10:2", "invalid JSON"},
  };
  for (const auto& k : cases) {
    std::string path = Write(t, "bad.json", k.text);
    for (unsigned threads : {1u, 2u, 4u, 7u}) {
      // Budgets that do not spill: a spill defers a reduction error to the drain.
      for (uint64_t budget : {uint64_t{256} << 20, uint64_t{8} << 20}) {
        INFO(k.name << ", threads " << threads << ", budget " << budget);
        Combined r = Combine(c, path, threads, budget);
        CHECK(r.out.empty());
        CHECK(r.where == path + k.where);
        CHECK_MESSAGE(r.error.find(k.message) != std::string::npos, r.error);
      }
    }
  }
  // A line longer than the document limit, after valid ones.
  std::string path = Write(t, "long.json", with({}) + std::string(17 << 20, ' ') + "\n{\"k\":1}\n");
  for (unsigned threads : {1u, 3u}) {
    Combined r = Combine(c, path, threads, 256 << 20);
    CHECK(r.where == path + ":6063");
    CHECK_MESSAGE(r.error.find("line 6063 is longer than the document limit") != std::string::npos, r.error);
  }
}

TEST_CASE(
    "parallel drain: DrainParallel gives DrainTagged's keys, documents and tags in key order, and "
    "its error") {
  auto c = Compile();
  // More keys than kParallelDrainKeys: drained on threads even without spills.
  std::string text = Generate(20000, 5000, 3);
  // Two documents of one key whose sum overflows: with spills, the error comes out of the
  // drain, in its key's place (key 150 sits among the others).
  const std::string overflow = R"({"k":150,"i":18446744073709551615})";
  for (uint64_t budget : {uint64_t{8} << 20, uint64_t{64} << 10}) {
    for (bool bad : {false, true}) {
      INFO("budget " << budget << ", overflow " << bad);
      reduce::CombinerOptions o;
      o.memory_budget = budget;
      auto fill = [&](runtime::PartitionedCombiner& pc) {
        std::string all = text;
        if (bad) all = overflow + "\n" + all + overflow + "\n";
        uint64_t tag = 0;
        bool added = true;
        for (size_t b = 0, e; b < all.size(); b = e + 1) {
          e = all.find('\n', b);
          if (e == b) continue;
          rapidjson::Document d;
          doc::ParseError pe;
          REQUIRE(doc::ParseDocument(std::string_view(all).substr(b, e - b), &d, &pe));
          std::string key;
          doc::PackKey(d, c->key, &key);
          uint64_t hash = reduce::Combiner::KeyHash(key);
          auto& part = pc.partition(runtime::PartitionedCombiner::PartitionOfHash(hash));
          added = part.AddCopy(d, key, hash, ++tag).ok() && added;
        }
        return added;
      };
      runtime::PartitionedCombiner one(*c, o), many(*c, o);
      bool added = fill(one);
      CHECK(fill(many) == added);
      if (!added) continue;  // (without spills the overflow is found when added)
      using Item = std::tuple<std::string, std::string, uint64_t>;
      std::vector<Item> in_order, merged;
      auto json = [](const doc::Value& v) {
        std::string out;
        doc::AppendJson(v, &out);
        return out;
      };
      auto r1 = one.DrainTagged(
          true, [&](std::string_view key, doc::Value& d, uint64_t tag) -> Result<bool> {
            in_order.emplace_back(std::string(key), json(d), tag);
            return true;
          });
      std::vector<std::vector<Item>> taken(runtime::PartitionedCombiner::kPartitions);
      auto r2 = many.DrainParallel(
          true, 3,
          [&](size_t p, std::string_view key, doc::Value& d, uint64_t tag) {
            taken[p].emplace_back(std::string(key), json(d), tag);
          },
          [&](size_t p, size_t i) -> Result<bool> {
            merged.push_back(taken[p][i]);
            return true;
          });
      CHECK(r1.ok() == r2.ok());
      CHECK(r1.ok() == !(bad && budget < (8u << 20)));
      if (!r1.ok() && !r2.ok()) CHECK(r1.error().message == r2.error().message);
      CHECK(merged == in_order);
      if (r1.ok()) CHECK(in_order.size() > runtime::PartitionedCombiner::kParallelDrainKeys);
      if (!r1.ok())
        CHECK_MESSAGE(r1.error().message.find("integer overflow") != std::string::npos,
                      r1.error().message);
    }
  }
}

TEST_CASE("parallel drain: KeepDrained keeps every partition's documents, or none of them") {
  // A materialization moves the drained documents out when the combiner keeps them. When a
  // partition spilled, none keeps them: the others must not hold their arenas on.
  auto c = Compile();
  auto add = [&](runtime::PartitionedCombiner& pc, int k, const std::string& pad) {
    rapidjson::Document d;
    std::string line = fmt::format(R"({{"k":{},"i":1,"lww":"{}"}})", k, pad);
    d.Parse(line.data(), line.size());
    REQUIRE(!d.HasParseError());
    std::string key;
    doc::PackKey(d, c->key, &key);
    uint64_t hash = reduce::Combiner::KeyHash(key);
    REQUIRE(pc.partition(runtime::PartitionedCombiner::PartitionOfHash(hash))
                .AddCopy(d, key, hash)
                .ok());
    return runtime::PartitionedCombiner::PartitionOfHash(hash);
  };
  auto drain = [&](runtime::PartitionedCombiner& pc, bool keep, std::vector<doc::Value>* out) {
    std::vector<std::vector<doc::Value>> taken(runtime::PartitionedCombiner::kPartitions);
    doc::Allocator copies;
    REQUIRE(pc.DrainParallel(
                  false, 2,
                  [&](size_t p, std::string_view, doc::Value& d, uint64_t) {
                    taken[p].push_back(keep ? std::move(d) : doc::Copy(d, copies));
                  },
                  [&](size_t p, size_t i) -> Result<bool> {
                    out->push_back(std::move(taken[p][i]));
                    return true;
                  })
                .ok());
  };
  const std::string pad(200, 'x');
  reduce::CombinerOptions o;
  o.memory_budget = 64 << 20;
  {  // Nothing spilled: kept, and valid after the drain.
    runtime::PartitionedCombiner pc(*c, o);
    for (int k = 0; k < 5000; ++k) add(pc, k, pad);
    REQUIRE(pc.KeepDrained());
    std::vector<doc::Value> out;
    drain(pc, true, &out);
    REQUIRE(out.size() == 5000);
    for (const auto& v : out) CHECK(v["lww"].GetStringLength() == pad.size());
  }
  {  // Partition 0 spilled, the others did not: none keeps its documents.
    o.memory_budget = 1 << 20;  // 64 KiB a partition
    runtime::PartitionedCombiner pc(*c, o);
    // 2000 keys into partition 0, 20 into each of the others (which stay in memory).
    std::vector<int> count(runtime::PartitionedCombiner::kPartitions, 0);
    for (int k = 0; count[0] < 2000; ++k) {
      std::string key;
      rapidjson::Document d;
      d.Parse(fmt::format(R"({{"k":{}}})", k).c_str());
      doc::PackKey(d, c->key, &key);
      size_t p = runtime::PartitionedCombiner::PartitionOfHash(reduce::Combiner::KeyHash(key));
      if (p != 0 && count[p] >= 20) continue;
      REQUIRE(add(pc, k, pad) == p);
      ++count[p];
    }
    REQUIRE(pc.partition(0).stats().spills > 0);
    size_t in_memory = 0;
    for (size_t p = 1; p < runtime::PartitionedCombiner::kPartitions; ++p)
      in_memory += pc.partition(p).stats().spills == 0 ? 1 : 0;
    REQUIRE(in_memory > 0);
    CHECK_FALSE(pc.KeepDrained());
    std::vector<doc::Value> out;
    drain(pc, false, &out);
    for (size_t p = 0; p < runtime::PartitionedCombiner::kPartitions; ++p) {
      CAPTURE(p);
      CHECK(pc.partition(p).memory() < (64u << 10));
    }
  }
}

TEST_CASE("parallel combine: empty input, blank lines, a huge document") {
  TempDir t;
  auto c = Compile();
  std::string huge = R"({"k":77,"app":[)";
  for (int i = 0; i < 300000; ++i) huge += (i ? "," : "") + std::to_string(i);
  huge += "]}";
  const std::vector<std::pair<std::string, std::string>> inputs = {
      {"", ""},
      {"\n\n \r\n\t\n", ""},
      {"\xEF\xBB\xBF{\"k\":1,\"i\":1}\r\n\n\n{\"k\":1,\"i\":2}", R"({"i":3,"k":1})" "\n"},
      {Generate(500, 20, 3) + huge + "\n" + Generate(500, 20, 4), ""},
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::string path = Write(t, fmt::format("in{}.json", i), inputs[i].first);
    Combined one = Combine(c, path, 1, 256 << 20);
    REQUIRE_MESSAGE(one.error.empty(), one.error);
    if (!inputs[i].second.empty()) CHECK(one.out == inputs[i].second);
    if (i < 2) CHECK(one.result.documents == 0);
    if (i == 3) CHECK(one.out.find(huge.substr(8, 1000)) != std::string::npos);
    for (unsigned threads : {2u, 4u, 7u}) {
      for (uint64_t budget : {uint64_t{256} << 20, uint64_t{64} << 10}) {
        INFO("input " << i << ", threads " << threads << ", budget " << budget);
        Combined many = Combine(c, path, threads, budget);
        REQUIRE_MESSAGE(many.error.empty(), many.error);
        CHECK(many.out == one.out);
        CHECK(many.result.documents == one.result.documents);
      }
    }
  }
}

TEST_CASE("parallel read --reduced: the same documents for any number of threads") {
  TempDir t;
  auto c = Compile();
  std::string data = t.path + "/data";
  {
    auto store = Must(store::Store::Open(data));
    auto input = Must(runtime::Input::Open(Write(t, "in.json", Generate(5000, 250, 5))));
    std::string where;
    auto r = runtime::IngestFile(store.get(), c, input, runtime::IngestFormat::kJson, {}, nullptr, &where);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    CHECK(Must(store->PersistAll()));
  }
  auto reduced = [&](unsigned threads, uint64_t budget) {
    auto reader = Must(runtime::CollectionReader::Open(data, c, {}));
    std::string out;
    auto r = reader->Reduced(
        budget,
        [&](std::string_view line) -> Result<bool> {
          out.append(line);
          out.push_back('\n');
          return true;
        },
        threads);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    return out;
  };
  for (uint64_t budget : {uint64_t{256} << 20, uint64_t{64} << 10}) {
    std::string one = reduced(1, budget);
    CHECK(std::count(one.begin(), one.end(), '\n') == 250);
    for (unsigned threads : {2u, 4u, 7u}) {
      INFO("threads " << threads << ", budget " << budget);
      CHECK(reduced(threads, budget) == one);
    }
  }
}

}  // namespace
}  // namespace flow
