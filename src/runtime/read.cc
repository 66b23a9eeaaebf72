#include "runtime/read.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <sys/stat.h>

#include <algorithm>

#include "base/strings.h"
#include "doc/parse.h"
#include "doc/value.h"
#include "reduce/combiner.h"
#include "store/journal.h"

namespace flow::runtime {

Result<std::unique_ptr<CollectionReader>> CollectionReader::Open(const std::string& dir,
                                                                 std::shared_ptr<const Collection> collection,
                                                                 const std::vector<std::string>& partitions) {
  // The journal name segment `field=<value encoded>` must be present.
  std::vector<std::string> segments;
  for (const auto& selector : partitions) {
    size_t eq = selector.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Error::User(fmt::format("--partition `{}` is not of the form field=value", selector));
    }
    std::string field = selector.substr(0, eq), value = selector.substr(eq + 1);
    std::vector<std::string> names;
    bool known = false;
    for (const auto& p : collection->partitions) {
      names.push_back(p.field);
      known = known || p.field == field;
    }
    if (!known) {
      std::string hint = DidYouMean(field, names);
      return Error::User(fmt::format(
          "`{}` is not a partition field of collection `{}`{}", field, collection->name,
          names.empty()   ? " (it has none)"
          : !hint.empty() ? "; " + hint
                          : fmt::format(" (its partition fields: {})", fmt::join(names, ", "))));
    }
    std::string seg = field + "=";
    doc::Value v(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
    store::EncodePartitionValue(v, &seg);
    segments.push_back("/" + seg + "/");
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    return Error::User(fmt::format(
        "data directory {} does not exist; ingest into it first, or pass --data-dir", dir));
  }
  return std::unique_ptr<CollectionReader>(
      new CollectionReader(dir, std::move(collection), std::move(segments)));
}

CollectionReader::CollectionReader(std::string dir, std::shared_ptr<const Collection> collection,
                                   std::vector<std::string> segments)
    : dir_(std::move(dir)),
      collection_(std::move(collection)),
      segments_(std::move(segments)),
      reader_(dir_, {{collection_->name, {}, 0, ""}}) {}

CollectionReader::~CollectionReader() = default;

Result<bool> CollectionReader::Refresh() {
  auto s = store::ReadLedger(dir_, /*check_files=*/first_refresh_);
  first_refresh_ = false;
  if (!s) return s.error();
  const store::LedgerState& state = s.value();
  for (const auto& j : store::CollectionJournals(state, collection_->name)) {
    if (journals_.count(j)) continue;
    std::string padded = j.substr(collection_->name.size()) + "/";
    bool selected = std::all_of(segments_.begin(), segments_.end(), [&](const std::string& seg) {
      return padded.find(seg) != std::string::npos;
    });
    if (!selected) continue;
    journals_.insert(j);
    reader_.Add(0, j, store::GenerationOf(state, j).begin);
  }
  reader_.Advance(state);
  return true;
}

Result<bool> CollectionReader::Poll(const Sink& sink) {
  auto r = Refresh();
  if (!r) return r;
  return reader_.Drain(
      [&](const std::string&, uint64_t, const std::string& line) { return sink(line); });
}

Result<bool> CollectionReader::Reduced(uint64_t memory_budget, const Sink& sink) {
  reduce::CombinerOptions copts;
  copts.memory_budget = memory_budget;
  reduce::Combiner combiner(collection_->reducer, collection_->key, copts);
  rapidjson::Document parsed(&combiner.scratch());
  auto r = Refresh();
  if (!r) return r;
  r = reader_.Drain(
      [&](const std::string& journal, uint64_t offset, const std::string& line) -> Result<bool> {
        doc::ParseError perr;
        if (!doc::ParseStoredDocument(line, &parsed, &perr)) {
          return Error::Env(fmt::format("journal {} holds a malformed document at offset {}: {}",
                                        journal, offset, perr.message));
        }
        auto a = combiner.AddScratch(parsed);
        if (!a) {
          return Error{a.error().code, fmt::format("the document at offset {} of journal {}: {}",
                                                   offset, journal, a.error().message)};
        }
        return a;
      });
  if (!r) return r;
  std::string json;
  return combiner.Drain(true, [&](std::string_view, doc::Value& d) -> Result<bool> {
    json.clear();
    doc::AppendJson(d, &json);
    return sink(json);
  });
}

}  // namespace flow::runtime
