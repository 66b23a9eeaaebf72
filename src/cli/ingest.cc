// `flowctl ingest`: a file or stdin into a collection as one transaction (SPEC section 8).
#include "cli/commands.h"

#include <unistd.h>

#include <chrono>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/common.h"
#include "cli/output.h"
#include "develop/develop.h"
#include "runtime/feed.h"
#include "runtime/ingest.h"
#include "runtime/ingest_file.h"
#include "runtime/input.h"

namespace flow::cli {

struct IngestOptions {
  CatalogOptions catalog;
  std::string data_dir = kDefaultDataDir;
  std::string collection;
  std::string input;   // a file, or "" / "-" for stdin
  std::string format;  // json, csv, tsv; empty: from the file extension, else json
  std::string codec;   // overrides the collections' fragment codec
  std::string memory_budget = kDefaultMemoryBudget;
  std::string spill_dir;
  std::string url;  // a running develop's ingestion API (default: the develop over data_dir, if any)
  unsigned threads = 0;  // 0: the cores available
};

namespace {

// Prints `{"Offsets": {"<journal>": <head>, ...}}`, the acknowledgement of a commit.
void PrintOffsets(const std::map<std::string, uint64_t>& heads) {
  fmt::print("{{\"Offsets\":{}}}\n", runtime::HeadsJson(heads));
  std::fflush(stdout);
}

// Sends the input to the develop at `url` as one PUT /ingest request.
int IngestIntoDevelop(const GlobalOptions& g, const IngestOptions& o, const std::string& url,
                      runtime::IngestFormat format) {
  auto input = runtime::Input::Open(o.input);
  if (!input) return PrintFailure(input.error());
  std::shared_ptr<const runtime::Collection> collection;
  if (format != runtime::IngestFormat::kJson) {
    int code = 0;
    collection = LoadCollection(g, o.catalog, o.collection, std::nullopt, &code);
    if (!collection) return code;
  }
  std::string where;
  auto ack = develop::IngestThrough(url, *input, o.collection, format, collection, &where);
  if (!ack) return PrintErrorAtPlace(where, ack.error());
  fmt::print("{}", ack->body);
  std::fflush(stdout);
  PrintNote(fmt::format("ingested {} documents into `{}` through the develop at {}", ack->documents, o.collection, url),
            {{"collection", o.collection}, {"documents", ack->documents}});
  return kExitOk;
}

}  // namespace

int RunIngest(const GlobalOptions& g, const IngestOptions& o) {
  auto start = std::chrono::steady_clock::now();
  std::string format = o.format;
  if (format.empty()) {  // from the extension, under a compression suffix
    switch (runtime::IngestFormatOfName(o.input)) {
      case runtime::IngestFormat::kCsv: format = "csv"; break;
      case runtime::IngestFormat::kTsv: format = "tsv"; break;
      case runtime::IngestFormat::kJson: format = "json"; break;
    }
  }
  if (format != "json" && format != "csv" && format != "tsv") {
    PrintError(fmt::format("--format `{}` is not one of json, csv, tsv", format));
    return kExitUsage;
  }
  std::optional<store::Codec> codec;
  if (!o.codec.empty()) {
    codec = runtime::ParseCodec(o.codec);
    if (!codec) {
      PrintError(fmt::format("--codec `{}` is not one of gzip, zstd, none", o.codec));
      return kExitUsage;
    }
  }
  auto budget = ParseBudget(o.memory_budget);
  if (!budget) return kExitUsage;
  std::string url = o.url;
  if (url.empty())
    url = develop::RunningDevelopUrl(o.data_dir);  // a develop owns the data directory
  if (!url.empty()) {
    while (!url.empty() && url.back() == '/') url.pop_back();
    return IngestIntoDevelop(g, o, url, *runtime::ParseIngestFormat(format));
  }

  int code = 0;
  auto collection = LoadCollection(g, o.catalog, o.collection, codec, &code);
  if (!collection) return code;
  if (collection->derived) {
    PrintError(fmt::format(
        "collection `{}` is derived: its documents come from its derivation and cannot be "
        "ingested",
        o.collection));
    return kExitUserError;
  }

  auto input = runtime::Input::Open(o.input);
  if (!input) return PrintFailure(input.error());
  auto data = OpenDataDir(o.data_dir, &code);
  if (!data) return code;
  store::Store* store = data->store.get();

  reduce::CombinerOptions copts;
  copts.memory_budget = *budget;
  copts.spill_dir = o.spill_dir;
  Progress progress("ingesting");
  progress.SetTotal(input->size());
  std::string where;
  auto ingested = runtime::IngestFile(
      store, collection, *input, *runtime::ParseIngestFormat(format), copts,
      [&](uint64_t docs, uint64_t bytes) { progress.Update(docs, bytes); }, &where, ThreadsOrDefault(o.threads));
  if (!ingested) {
    progress.Stop();
    return PrintErrorAtPlace(where, ingested.error());
  }
  const auto& heads = ingested->heads;
  progress.Above([&] { PrintOffsets(heads); });
  // A clean shutdown persists the spools as lake fragments (SPEC 3.3).
  progress.Phase("committed; writing lake fragments");
  auto persisted = store->PersistAll();
  progress.Stop();
  if (!persisted) {
    PrintError(fmt::format(
        "{}; the transaction is committed, and its fragments will be written by the next "
        "flowctl process to open {}",
        persisted.error().message, o.data_dir));
    return persisted.error().ExitCode();
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto& st = ingested->stats;
  const auto& ss = store->stats();
  PrintNote(fmt::format("ingested {} document{} ({} after combining by key) into `{}`: {} "
                        "journal{}, {:.1f} MB read, "
                        "{} fragment{} ({:.1f} MB) in {:.2f} s",
                        st.documents, st.documents == 1 ? "" : "s", st.combined, collection->name,
                        heads.size(), heads.size() == 1 ? "" : "s", ingested->bytes_read / 1e6,
                        ss.fragments, ss.fragments == 1 ? "" : "s", ss.fragment_bytes / 1e6, secs),
            {{"collection", collection->name},
             {"documents", static_cast<uint64_t>(st.documents)},
             {"combined", static_cast<uint64_t>(st.combined)},
             {"seconds", secs}});
  return kExitOk;
}

Command RegisterIngest(CLI::App& app) {
  auto o = std::make_shared<IngestOptions>();
  auto* cmd = app.add_subcommand(
      "ingest",
      "Ingest JSON lines, CSV or TSV from a file or stdin into a collection as one transaction");
  cmd->add_option("COLLECTION", o->collection, "Collection to ingest into")->required();
  cmd->add_option("FILE", o->input, "Input file (default: stdin)");
  cmd->add_option("--format", o->format,
                  "json (JSON lines), csv or tsv (header row of projection fields); default: "
                  "from the file extension (.csv, .tsv, also under .gz or .zst), else json");
  AddCatalogOptions(*cmd, o->catalog);
  AddDataDirOption(*cmd, o->data_dir);
  cmd->add_option("--codec", o->codec,
                  "Fragment codec for every collection written: gzip, zstd or none (default: "
                  "the collection's `journals.fragments.compressionCodec`, else gzip)");
  AddMemoryBudgetOption(*cmd, o->memory_budget,
                        "Memory for combining the transaction before it spills to disk");
  cmd->add_option("--spill-dir", o->spill_dir,
                  "Directory for spill files (default: $TMPDIR or /tmp)");
  AddThreadsOption(*cmd, o->threads,
                   "Threads parsing and validating JSON lines; what is committed is the same "
                   "for any number");
  cmd->add_option("--url", o->url,
                  "Ingest through the API of a running `flowctl develop` (e.g. "
                  "http://127.0.0.1:8081); the default when a develop runs over --data-dir");
  cmd->footer(
      "Every document is validated and combined by key; all are committed together or none is. "
      "On success prints {\"Offsets\": {journal: head}} to stdout. Into a running develop, the "
      "input is sent as one PUT /ingest request (at most its --max-body).\n"
      "Exit status: 0 committed, 1 invalid input (nothing is written), 2 usage error, 3 the data "
      "directory is locked by another process or cannot be written.");
  return {cmd, [o](const GlobalOptions& g) { return RunIngest(g, *o); }};
}

}  // namespace flow::cli
