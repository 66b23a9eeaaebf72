#include "cli/combine.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "base/strings.h"
#include "doc/parse.h"
#include "doc/value.h"
#include "reduce/combiner.h"
#include "schema/annotations.h"
#include "schema/validator.h"

namespace flow::cli {
namespace {

// Reads a file or stdin as lines, in large blocks.
class LineReader {
 public:
  explicit LineReader(FILE* f) : f_(f) {}
  // The next line without its '\n' (a final line may lack one). False at the end.
  bool Next(std::string_view* line) {
    for (;;) {
      size_t nl = buf_.find('\n', off_);
      if (nl != std::string::npos) {
        *line = std::string_view(buf_).substr(off_, nl - off_);
        off_ = nl + 1;
        ++number_;
        return true;
      }
      if (eof_) {
        if (off_ >= buf_.size()) return false;
        *line = std::string_view(buf_).substr(off_);
        off_ = buf_.size();
        ++number_;
        return true;
      }
      buf_.erase(0, off_);
      off_ = 0;
      size_t have = buf_.size();
      buf_.resize(have + kBlock);
      size_t n = std::fread(buf_.data() + have, 1, kBlock, f_);
      buf_.resize(have + n);
      bytes_ += n;
      if (n == 0) eof_ = true;
    }
  }
  size_t number() const { return number_; }
  uint64_t bytes() const { return bytes_; }
  bool failed() const { return std::ferror(f_) != 0; }

 private:
  static constexpr size_t kBlock = 4 << 20;
  FILE* f_;
  std::string buf_;
  size_t off_ = 0, number_ = 0;
  uint64_t bytes_ = 0;
  bool eof_ = false;
};

bool Blank(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

}  // namespace

int RunCombine(const GlobalOptions& g, const CombineOptions& o) {
  auto start = std::chrono::steady_clock::now();
  auto budget = reduce::ParseByteSize(o.memory_budget);
  if (!budget || *budget == 0) {
    fmt::print(stderr, "error: --memory-budget `{}` is not a size like 64MiB or 1GiB\n", o.memory_budget);
    return kExitUsage;
  }
  int code = 0;
  auto collections = LoadCollections(g, o.catalog, &code);
  if (!collections) return code;
  const catalog::CollectionRecord* col = nullptr;
  std::vector<std::string> names;
  for (const auto& c : *collections) {
    names.push_back(c.name);
    if (c.name == o.collection) col = &c;
  }
  if (!col) {
    std::string hint = DidYouMean(o.collection, names);
    fmt::print(stderr, "error: no collection `{}` in the catalog{}\n", o.collection,
               hint.empty() ? "" : "; " + hint);
    return kExitUserError;
  }
  rapidjson::Document bundle;
  bundle.Parse(col->bundle.c_str());
  auto validator = schema::Validator::Compile(bundle);
  auto annotations = schema::Annotations::Compile(bundle);
  if (!validator || !annotations) {
    fmt::print(stderr, "error: the schema of collection `{}` cannot be compiled: {}\n", o.collection,
               (!validator ? validator.error() : annotations.error()).message);
    return kExitUserError;
  }
  std::vector<doc::Pointer> key;
  for (const auto& k : col->key) {
    std::string why;
    auto p = doc::Pointer::Parse(k, &why);
    if (!p) {
      fmt::print(stderr, "error: collection `{}` has a malformed key `{}`: {}\n", o.collection, k, why);
      return kExitUserError;
    }
    key.push_back(*p);
  }

  FILE* in = stdin;
  std::string input_name = "<stdin>";
  if (!o.input.empty() && o.input != "-") {
    in = std::fopen(o.input.c_str(), "rb");
    if (!in) {
      fmt::print(stderr, "error: cannot open {}: {}\n", o.input, std::strerror(errno));
      return kExitUserError;
    }
    input_name = o.input;
  }
  struct Closer {
    FILE* f;
    ~Closer() {
      if (f && f != stdin) std::fclose(f);
    }
  } closer{in};

  reduce::CombinerOptions copts;
  copts.memory_budget = *budget;
  copts.spill_dir = o.spill_dir;
  auto reducer = std::make_shared<reduce::Reducer>(annotations.value());
  reduce::Combiner combiner(reducer, key, copts);
  rapidjson::Document parsed(&combiner.allocator());
  LineReader lines(in);
  std::string_view line;
  bool progress = ::isatty(STDERR_FILENO);
  auto last_progress = start;
  uint64_t docs = 0;
  while (lines.Next(&line)) {
    if (Blank(line)) continue;
    doc::ParseError perr;
    if (!doc::ParseDocument(line, &parsed, &perr)) {
      fmt::print(stderr, "{}:{}:{}: error: {}\n", input_name, lines.number(), perr.offset + 1, perr.message);
      return kExitUserError;
    }
    auto errors = validator.value()->Validate(parsed, combiner.allocator());
    if (!errors.empty()) {
      fmt::print(stderr, "{}:{}: error: document does not validate against the schema of collection `{}`: {}\n",
                 input_name, lines.number(), o.collection,
                 schema::FormatValidationErrors(errors, parsed, 3, annotations.value().get()));
      return kExitUserError;
    }
    auto added = combiner.Add(parsed);
    if (!added) {
      if (added.error().code == Error::Code::kUser) {
        fmt::print(stderr, "{}:{}: error: cannot reduce into collection `{}`: {}\n", input_name, lines.number(),
                   o.collection, added.error().message);
      } else {
        fmt::print(stderr, "error: {}\n", added.error().message);
      }
      return added.error().ExitCode();
    }
    ++docs;
    if (progress && (docs & 0xffff) == 0) {
      auto now = std::chrono::steady_clock::now();
      if (now - last_progress > std::chrono::milliseconds(500)) {
        last_progress = now;
        fmt::print(stderr, "\rcombining: {} documents, {:.1f} MB read", docs, lines.bytes() / 1e6);
      }
    }
  }
  if (lines.failed()) {
    fmt::print(stderr, "error: cannot read {}: {}\n", input_name, std::strerror(errno));
    return kExitUserError;
  }
  if (progress && docs >= 0x10000) fmt::print(stderr, "\r\033[K");

  std::string out;
  out.reserve(1 << 20);
  uint64_t keys = 0;
  bool write_failed = false;
  auto flush = [&]() {
    if (!out.empty() && std::fwrite(out.data(), 1, out.size(), stdout) != out.size()) write_failed = true;
    out.clear();
  };
  auto drained = combiner.Drain(!o.combined_only, [&](std::string_view, doc::Value& d) -> Result<bool> {
    doc::AppendJson(d, &out);
    out.push_back('\n');
    ++keys;
    if (out.size() >= (1 << 20)) flush();
    if (write_failed) return Error::Env(fmt::format("cannot write the output: {}", std::strerror(errno)));
    return true;
  });
  flush();
  if (std::fflush(stdout) != 0) write_failed = true;
  if (!drained) {
    fmt::print(stderr, "error: collection `{}`: {}\n", o.collection, drained.error().message);
    return drained.error().ExitCode();
  }
  if (write_failed) {
    fmt::print(stderr, "error: cannot write the output: {}\n", std::strerror(errno));
    return kExitEnvironment;
  }
  if (progress) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto& st = combiner.stats();
    fmt::print(stderr, "combined {} documents into {} keys in {:.2f} s{}\n", docs, keys, secs,
               st.spills ? fmt::format(" ({} compactions, {} spill runs, {:.1f} MB spilled)", st.compactions,
                                       st.spills, st.spilled_bytes / 1e6)
                         : st.compactions ? fmt::format(" ({} compactions)", st.compactions) : std::string());
  }
  return kExitOk;
}

}  // namespace flow::cli
