#include "runtime/preview.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include <fmt/format.h>

#include "doc/pack.h"
#include "doc/parse.h"
#include "runtime/cursor.h"
#include "runtime/csv.h"
#include "runtime/feed.h"
#include "runtime/ingest.h"
#include "runtime/input.h"
#include "runtime/read.h"

namespace flow::runtime {
namespace {

// The documents of one input, read and validated, in file order.
struct Documents {
  const PreviewInput* input = nullptr;
  std::unique_ptr<doc::Allocator> arena = std::make_unique<doc::Allocator>();
  std::vector<doc::Value> docs;
  std::vector<std::string> places;  // "FILE:LINE", or "FILE: row N (line L)" for CSV/TSV
};

bool Blank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

Error ReadFailed(const Input& in) {
  return Error::Env(fmt::format("cannot read {}: {}", in.name(), in.ReadErrorMessage(errno)));
}

// Reads and validates the documents of `input` into `*out`.
Result<bool> ReadInput(const PreviewInput& input, Documents* out, std::string* where) {
  out->input = &input;
  auto in = Input::Open(input.path);
  if (!in) return in.error();
  const std::string& name = in->name();
  const Collection& c = *input.collection;
  IngestFormat format = IngestFormatOfName(name);
  auto add = [&](doc::Value& d, std::string place) -> Result<bool> {
    auto checked = IngestTransaction::Check(c, d, *out->arena);
    if (!checked) {
      *where = place;
      return Error::User(fmt::format("a document of `{}`: {}", c.name, checked.error().message));
    }
    out->docs.push_back(std::move(d));
    out->places.push_back(std::move(place));
    return true;
  };
  if (format == IngestFormat::kJson) {
    LineReader lines(in->file());
    std::string_view line;
    while (lines.Next(&line)) {
      if (Blank(line)) continue;
      rapidjson::Document d(out->arena.get());
      doc::ParseError e;
      if (!doc::ParseTerminatedDocument(line, &d, &e)) {
        *where = fmt::format("{}:{}:{}", name, lines.number(), e.offset + 1);
        return Error::User(e.message);
      }
      auto added = add(d, fmt::format("{}:{}", name, lines.number()));
      if (!added) return added;
    }
    if (lines.too_long()) {
      *where = fmt::format("{}:{}", name, lines.number());
      return Error::User(lines.TooLongMessage());
    }
    if (lines.failed()) return ReadFailed(*in);
    return true;
  }
  CsvConverter csv(format == IngestFormat::kCsv ? CsvDialect::kCsv : CsvDialect::kTsv, c.name,
                   c.fields);
  doc::Allocator scratch;
  CsvConverter::Emit emit = [&](uint64_t, doc::Value& d) -> Result<bool> {
    doc::Value copy = doc::Copy(d, *out->arena);
    // "row N (line L)" becomes FILE:L, the place JSON lines have.
    std::string place = csv.place();
    unsigned long long row = 0, number = 0;
    if (std::sscanf(place.c_str(), "row %llu (line %llu)", &row, &number) == 2) {
      place = fmt::format("{}:{}", name, number);
    } else {
      place = fmt::format("{}: {}", name, place);
    }
    return add(copy, std::move(place));
  };
  std::string block(1 << 20, '\0');
  for (;;) {
    size_t n = std::fread(block.data(), 1, block.size(), in->file());
    if (n > 0) {
      auto fed = csv.Feed(std::string_view(block.data(), n), scratch, emit);
      scratch.Clear();
      if (!fed) {
        if (where->empty()) *where = name;
        return fed;
      }
    }
    if (n < block.size()) break;
  }
  if (std::ferror(in->file())) return ReadFailed(*in);
  auto finished = csv.Finish(scratch, emit);
  if (!finished && where->empty()) *where = name;
  return finished;
}

// The register state file as records of the register journal (`{"k":[...],"r":...}` lines).
Result<std::string> ReadRegisterState(const Derivation& d, const std::string& path,
                                      std::string* where) {
  std::set<size_t> lengths;  // of the transforms' shuffle keys
  for (const auto& t : d.transforms) lengths.insert(t.shuffle.size());
  std::string expected;
  for (size_t n : lengths) expected += fmt::format("{}{}", expected.empty() ? "" : " or ", n);
  auto in = Input::Open(path);
  if (!in) return in.error();
  const std::string& name = in->name();
  LineReader lines(in->file());
  std::string_view line;
  std::string records;
  doc::Allocator arena;
  const char* shape = R"(each line must be {"key": [<shuffle key values>], "value": <register>})";
  while (lines.Next(&line)) {
    if (Blank(line)) continue;
    arena.Clear();
    rapidjson::Document rec(&arena);
    doc::ParseError e;
    if (!doc::ParseTerminatedDocument(line, &rec, &e)) {
      *where = fmt::format("{}:{}:{}", name, lines.number(), e.offset + 1);
      return Error::User(e.message);
    }
    *where = fmt::format("{}:{}", name, lines.number());
    if (!rec.IsObject() || !rec.HasMember("key") || !rec.HasMember("value") ||
        rec.MemberCount() != 2) {
      return Error::User(fmt::format("not a register: {}", shape));
    }
    doc::Value key(rapidjson::kArrayType);
    if (rec["key"].IsArray()) {
      key = rec["key"];
    } else {
      key.PushBack(rec["key"], arena);  // a one-value key may be given bare
    }
    if (!lengths.count(key.Size())) {
      return Error::User(fmt::format(
          "the register key has {} value{}, but derivation `{}` shuffles by {}: the key holds "
          "one value per shuffle pointer, in order",
          key.Size(), key.Size() == 1 ? "" : "s", d.collection->name, expected));
    }
    doc::Value& value = rec["value"];
    if (d.register_validator) {
      auto errors = d.register_validator->Validate(value, arena);
      if (!errors.empty()) {
        return Error::User(fmt::format(
            "the value does not validate against the register schema of derivation `{}`: {}",
            d.collection->name,
            schema::FormatValidationErrors(errors, value, 3, d.register_annotations.get())));
      }
    }
    records += "{\"k\":";
    doc::AppendJson(key, &records);
    records += ",\"r\":";
    doc::AppendJson(value, &records);
    records += "}\n";
  }
  if (lines.too_long()) {
    *where = fmt::format("{}:{}", name, lines.number());
    return Error::User(lines.TooLongMessage());
  }
  if (lines.failed()) return ReadFailed(*in);
  where->clear();
  return records;
}

// Removes the temporary data directories of previews whose process is gone (killed before
// it could remove its own): named flowctl-preview-<pid>-XXXXXX in `dir`. Best effort: one
// that cannot be removed, or whose process id was reused, is left.
void SweepScratchDirs(const std::string& dir) {
  namespace fs = std::filesystem;
  static const std::regex kName(R"(flowctl-preview-(\d+)-[A-Za-z0-9]{6})");
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::smatch m;
    if (!std::regex_match(name, m, kName)) continue;
    long pid = std::strtol(m[1].str().c_str(), nullptr, 10);
    if (pid <= 0 || pid == ::getpid() || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    if (!it->is_directory(ec) || it->is_symlink(ec)) continue;
    std::error_code ignored;
    fs::remove_all(it->path(), ignored);
  }
}

// A temporary data directory, removed with everything in it.
struct ScratchDir {
  std::string path;
  ~ScratchDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

// `message` with the input place of the document it names ("offset N of journal J") after
// the journal's name. The inputs' documents were committed in input order (`order`), each
// stamped with a later clock than the one before, so a document's rank by clock among those
// of the inputs' journals is its position in `order`.
std::string WithPlace(const std::string& message, const store::Store& store,
                      const std::set<std::string>& journals,
                      const std::vector<const std::string*>& order) {
  static const std::regex kAt(R"(offset (\d+) of journal ([^ :;,()]+))");
  std::smatch m;
  if (!std::regex_search(message, m, kAt) || !journals.count(m[2].str())) return message;
  const uint64_t offset = std::stoull(m[1].str());
  doc::Clock target = 0;
  std::vector<doc::Clock> clocks;
  const store::LedgerState& committed = store.committed();
  for (const auto& j : journals) {
    auto head = committed.heads.find(j);
    if (head == committed.heads.end()) continue;
    JournalCursor cursor(store.dir(), j, store::GenerationOf(committed, j).begin);
    std::string line;
    for (;;) {
      uint64_t at = cursor.offset();
      auto n = cursor.Next(head->second, &line);
      if (!n || !n.value()) break;
      doc::Clock clock = ClockOfLine(line);
      if (j == m[2].str() && at == offset) target = clock;
      clocks.push_back(clock);
    }
  }
  if (!target) return message;
  size_t rank =
      std::count_if(clocks.begin(), clocks.end(), [&](doc::Clock c) { return c < target; });
  if (rank >= order.size()) return message;
  size_t end = static_cast<size_t>(m.position(0) + m.length(0));
  return message.substr(0, end) + " (" + *order[rank] + ")" + message.substr(end);
}

}  // namespace

Result<PreviewResult> RunPreview(const Plan& plan, const PreviewOptions& o,
                                 const std::function<Result<bool>(std::string_view)>& sink,
                                 std::string* error_where) {
  error_where->clear();
  if (plan.derivations.size() != 1) return Error::Internal("a preview runs exactly one derivation");
  // Read delays are ignored: every document is read in the order the inputs give.
  auto derivation = std::make_shared<Derivation>(*plan.derivations.front());
  for (auto& t : derivation->transforms) t.read_delay_seconds = 0;

  PreviewResult result;
  std::vector<Documents> inputs(o.inputs.size());
  size_t longest = 0;
  for (size_t i = 0; i < o.inputs.size(); ++i) {
    auto read = ReadInput(o.inputs[i], &inputs[i], error_where);
    if (!read) return read.error();
    longest = std::max(longest, inputs[i].docs.size());
    result.documents += inputs[i].docs.size();
  }
  std::string registers;
  if (!o.register_state.empty()) {
    auto r = ReadRegisterState(*derivation, o.register_state, error_where);
    if (!r) return r.error();
    registers = std::move(r.value());
  }

  ScratchDir dir;
  SweepScratchDirs(o.scratch_dir);
  std::string tmpl = fmt::format("{}/flowctl-preview-{}-XXXXXX", o.scratch_dir, ::getpid());
  if (!::mkdtemp(tmpl.data())) {
    return Error::Env(fmt::format("cannot create a temporary data directory under {}: {}",
                                  o.scratch_dir, std::strerror(errno)));
  }
  dir.path = tmpl;
  auto opened = store::Store::Open(dir.path);
  if (!opened) return opened.error();
  std::unique_ptr<store::Store> store = std::move(opened.value());
  if (!registers.empty()) {
    if (auto a = store->Append(derivation->RegisterJournal(), store::JournalSpec{}, registers); !a)
      return a.error();
    if (auto c = store->Commit(); !c) return c.error();
  }

  // Each document in a transaction of its own (a transaction combines by key and appends in
  // key order), committed in groups; the stamper's clock orders them as the inputs do.
  Stamper stamper;
  std::vector<const std::string*> order;  // the places of the documents, in commit order
  std::set<std::string> journals;         // that the inputs' documents went to
  constexpr size_t kGroup = 1024;         // transactions a commit, bounding the memory they hold
  std::vector<std::unique_ptr<IngestTransaction>> group;
  auto commit = [&]() -> Result<bool> {
    if (group.empty()) return true;
    std::vector<IngestTransaction*> txns;
    for (auto& t : group) txns.push_back(t.get());
    auto committed = CommitGroup(store.get(), txns);
    if (!committed) return committed.error();
    for (const auto& written : committed->written) {
      for (const auto& [journal, head] : written) journals.insert(journal);
    }
    group.clear();
    return true;
  };
  for (size_t n = 0; n < longest; ++n) {
    for (auto& in : inputs) {
      if (n >= in.docs.size()) continue;
      auto txn = std::make_unique<IngestTransaction>(store.get(), &stamper);
      auto added = txn->AddChecked(in.input->collection, in.docs[n]);
      if (!added) {
        *error_where = in.places[n];
        return added.error();
      }
      group.push_back(std::move(txn));
      order.push_back(&in.places[n]);
      if (group.size() == kGroup) {
        if (auto c = commit(); !c) return c.error();
      }
    }
  }
  if (auto c = commit(); !c) return c.error();

  DeriveTask task(derivation, store.get(), &stamper, Clock());
  if (auto open = task.Open(); !open) return open.error();
  for (;;) {
    auto step = task.Step();
    if (!step) {
      Error e = step.error();
      e.message = WithPlace(e.message, *store, journals, order);
      return e;
    }
    if (step.value() == 0) break;
  }
  result.stats = task.stats();

  auto reader = CollectionReader::Open(dir.path, derivation->collection, {});
  if (!reader) return reader.error();
  std::string text;
  auto reduced =
      reader.value()->Reduced(o.memory_budget, [&](std::string_view line) -> Result<bool> {
        // Without the UUID stamped here: it differs from run to run.
        rapidjson::Document d;
        doc::ParseError e;
        text.assign(line);
        if (!doc::ParseStoredDocument(text, &d, &e))
          return Error::Internal("a derived document is malformed: " + e.message);
        if (d.IsObject()) {
          auto meta = d.FindMember("_meta");
          if (meta != d.MemberEnd() && meta->value.IsObject()) {
            meta->value.RemoveMember("uuid");
            if (meta->value.MemberCount() == 0) d.RemoveMember(meta);
          }
        }
        text.clear();
        doc::AppendJson(d, &text);
        ++result.derived;
        return sink(text);
      });
  if (!reduced) return reduced.error();
  return result;
}

}  // namespace flow::runtime
