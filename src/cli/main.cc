// flowctl command line: flag parsing and output formatting only. Library code never
// prints; commands turn Results and Diagnostics into text and exit codes (SPEC section 8).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>
#include <malloc.h>
#include <string_view>
#include <unistd.h>

#include "base/log.h"
#include "base/strings.h"
#include "base/url.h"
#include "catalog/built.h"
#include "catalog/source_schema.h"
#include "cli/combine.h"
#include "cli/common.h"
#include "cli/develop.h"
#include "cli/docs.h"
#include "cli/fsck.h"
#include "cli/ingest.h"
#include "cli/materialize.h"
#include "cli/node.h"
#include "cli/output.h"
#include "cli/read.h"
#include "cli/run.h"
#include "cli/test.h"

namespace {

using namespace flow;
using cli::GlobalOptions;
using cli::PrintError;
using cli::PrintNote;

struct BuildOptions {
  std::string source = "flow.yaml";
  std::string catalog = "catalog.db";
  std::vector<std::string> resource_map;
  bool deny_warnings = false;
};

int RunBuild(const GlobalOptions& g, const BuildOptions& o) {
  auto start = std::chrono::steady_clock::now();
  int code = 0;
  auto checked = cli::LoadAndCheck(g, {o.source, "", o.resource_map, o.deny_warnings},
                                   fmt::format("; {} was not written", o.catalog), &code);
  if (!checked) return code;
  const auto& loaded = checked->loaded;
  const catalog::Built& built = checked->built;
  // TypeScript lambdas are transpiled and nodeDependencies installed now, so that their
  // errors are the build's.
  if (int node = cli::PrepareNodeLambdas(g, *checked); node != kExitOk) {
    PrintNote(fmt::format("{} was not written", o.catalog));
    return node;
  }
  auto written = catalog::WriteBuiltCatalog(o.catalog, *loaded, built);
  if (!written) {
    PrintError(written.error().message);
    return written.error().ExitCode();
  }
  const auto& cat = loaded->catalog;
  size_t derived = 0, transforms = 0, projections = 0, bindings = 0, steps = 0;
  for (const auto& c : built.collections) projections += c.projections.size();
  for (const auto& d : built.derivations) transforms += d.transforms.size();
  for (const auto& c : cat.collections) derived += c.derivation ? 1 : 0;
  for (const auto& [_, b] : built.bindings) bindings += b.size();
  for (const auto& t : cat.tests) steps += t.steps.size();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - start).count();
  std::string summary = fmt::format(
      "built {} from {} ({} source file{}) in {} ms\n"
      "  collections:       {} ({} captured, {} derived), {} projections\n"
      "  transforms:        {}\n"
      "  materializations:  {} into {} target{} ({} table{})\n"
      "  captures:          {}\n"
      "  tests:             {} ({} steps)\n"
      "  npm dependencies:  {}",
      o.catalog, DisplayName(cat.root_url), cat.files.size(), cat.files.size() == 1 ? "" : "s", ms,
      cat.collections.size(), cat.collections.size() - derived, derived, projections, transforms,
      cat.materializations.size(), cat.targets.size(), cat.targets.size() == 1 ? "" : "s", bindings,
      bindings == 1 ? "" : "s", cat.captures.size(), cat.tests.size(), steps, cat.node_dependencies.size());
  if (cli::JsonOutput()) {
    Log(LogLevel::kInfo, fmt::format("built {} from {}", o.catalog, DisplayName(cat.root_url)),
        {{"catalog", o.catalog}, {"sources", static_cast<uint64_t>(cat.files.size())}, {"ms", static_cast<int64_t>(ms)},
         {"collections", static_cast<uint64_t>(cat.collections.size())}, {"derived", static_cast<uint64_t>(derived)},
         {"transforms", static_cast<uint64_t>(transforms)},
         {"materializations", static_cast<uint64_t>(cat.materializations.size())},
         {"captures", static_cast<uint64_t>(cat.captures.size())}, {"tests", static_cast<uint64_t>(cat.tests.size())}});
  } else {
    fmt::print(stderr, "{}\n", summary);
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  // Document arenas allocate and free 1 MiB chunks all the time; by default glibc serves
  // those with mmap/munmap, so every reuse page-faults afresh. Keep them in the heap.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  CLI::App app{
      "flowctl: define, check, test and run continuously-updating data pipelines described "
      "as YAML catalogs."};
  app.require_subcommand(1);
  GlobalOptions g;
  // Global flags may come before or after the command (`flowctl build -v`).
  app.fallthrough();
  app.add_flag("--no-color", g.no_color, "Never colour output (also: the NO_COLOR variable)");
  app.add_flag("-v,--verbose", g.verbosity, "Log more: -v info, -vv debug (to stderr)");
  app.add_option("--log-level", g.log_level,
                 "Log records at this level and above: error, warn, info or debug (default: warn; "
                 "info with --log-format json)")
      ->check(CLI::IsMember({"error", "warn", "warning", "info", "debug"}));
  app.add_option("--log-format", g.log_format,
                 "text, or json: one JSON object per line on stderr (time, level, message and "
                 "fields such as collection, task, journal, offset), errors and summaries included")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.footer("Run `flowctl COMMAND --help` for a command's options.");

  BuildOptions build;
  auto* cmd_build = app.add_subcommand(
      "build", "Load and check a catalog, and write the built catalog database");
  cmd_build->add_option("--source", build.source, "Root catalog source file or URL")
      ->capture_default_str();
  cmd_build->add_option("--catalog", build.catalog, "Path of the built catalog to write")
      ->capture_default_str();
  cmd_build->add_option("--resource-map", build.resource_map,
                        "Read URLs starting with PREFIX from files under DIR (repeatable), "
                        "for building offline")
      ->type_name("PREFIX=DIR");
  cmd_build->add_flag("--deny-warnings", build.deny_warnings,
                      "Fail on catalog warnings as on errors (for CI)");
  cmd_build->footer(
      "Exit status: 0 built (warnings are printed but do not fail the build), 1 the catalog has "
      "errors, or warnings with --deny-warnings (all are printed), 2 usage error, 3 the catalog "
      "could not be written.");

  auto add_catalog_options = [](CLI::App* cmd, cli::CatalogOptions* c) {
    cmd->add_option("--source", c->source, "Root catalog source file or URL")->capture_default_str();
    cmd->add_option("--catalog", c->catalog, "Use this built catalog instead of --source");
    cmd->add_option("--resource-map", c->resource_map,
                    "Read URLs starting with PREFIX from files under DIR (repeatable)")
        ->type_name("PREFIX=DIR");
    cmd->add_flag("--deny-warnings", c->deny_warnings, "Fail on catalog warnings as on errors");
  };

  cli::CombineOptions combine;
  auto* cmd_combine = app.add_subcommand(
      "combine",
      "Validate JSON lines against a collection's schema and print them fully reduced, one "
      "document per key, in key order");
  cmd_combine->add_option("--collection", combine.collection, "Collection whose schema and key apply")
      ->required();
  add_catalog_options(cmd_combine, &combine.catalog);
  cmd_combine->add_option("--memory-budget", combine.memory_budget,
                          "Memory for documents before sorted runs spill to disk (e.g. 64MiB, 1GiB)")
      ->capture_default_str();
  cmd_combine->add_option("--spill-dir", combine.spill_dir,
                          "Directory for spill files (default: $TMPDIR or /tmp); they are "
                          "unlinked at creation");
  cmd_combine->add_flag("--combined", combine.combined_only,
                        "Print combined (partial) documents: `set` keeps intersect/remove");
  cmd_combine->add_option("FILE", combine.input, "JSON lines to read (default: stdin)");
  cmd_combine->footer(
      "Exit status: 0 success, 1 invalid input (malformed JSON with file:line:col, a document "
      "that fails validation, a reduction error) or catalog errors, 2 usage error, 3 the "
      "spill file or output cannot be written.");

  cli::IngestOptions ingest;
  auto* cmd_ingest = app.add_subcommand(
      "ingest",
      "Ingest JSON lines, CSV or TSV from a file or stdin into a collection as one transaction");
  cmd_ingest->add_option("COLLECTION", ingest.collection, "Collection to ingest into")->required();
  cmd_ingest->add_option("FILE", ingest.input, "Input file (default: stdin)");
  cmd_ingest->add_option("--format", ingest.format,
                         "json (JSON lines), csv or tsv (header row of projection fields); default: "
                         "from the file extension, else json");
  add_catalog_options(cmd_ingest, &ingest.catalog);
  cmd_ingest->add_option("--data-dir", ingest.data_dir, "Data directory")->capture_default_str();
  cmd_ingest->add_option("--codec", ingest.codec,
                         "Fragment codec for every collection written: gzip, zstd or none (default: "
                         "the collection's `journals.fragments.compressionCodec`, else gzip)");
  cmd_ingest->add_option("--memory-budget", ingest.memory_budget,
                         "Memory for combining the transaction before it spills to disk")
      ->capture_default_str();
  cmd_ingest->add_option("--spill-dir", ingest.spill_dir, "Directory for spill files (default: $TMPDIR or /tmp)");
  cmd_ingest->add_option("--url", ingest.url,
                         "Ingest through the API of a running `flowctl develop` (e.g. http://127.0.0.1:8081); "
                         "the default when a develop runs over --data-dir");
  cmd_ingest->footer(
      "Every document is validated and combined by key; all are committed together or none is. "
      "On success prints {\"Offsets\": {journal: head}} to stdout. Into a running develop, the input "
      "is sent as one PUT /ingest request (at most its --max-body).\n"
      "Exit status: 0 committed, 1 invalid input (nothing is written), 2 usage error, 3 the data "
      "directory is locked by another process or cannot be written.");

  cli::ReadOptions read;
  auto* cmd_read = app.add_subcommand("read", "Print a collection's committed documents as JSON lines");
  cmd_read->add_option("COLLECTION", read.collection, "Collection to read")->required();
  add_catalog_options(cmd_read, &read.catalog);
  cmd_read->add_option("--data-dir", read.data_dir, "Data directory")->capture_default_str();
  cmd_read->add_option("--partition", read.partitions,
                       "Only journals whose partition field has this value (repeatable)")
      ->type_name("FIELD=VALUE");
  cmd_read->add_flag("--reduced", read.reduced, "One fully reduced document per key, in key order");
  cmd_read->add_flag("--follow", read.follow, "Keep printing documents as they are committed (until SIGINT)");
  cmd_read->add_option("--memory-budget", read.memory_budget, "Memory for --reduced before it spills to disk")
      ->capture_default_str();
  cmd_read->footer(
      "Documents are printed in commit order across journals. Reading needs no lock: it works while "
      "another flowctl process writes the data directory, and sees only committed documents.");

  cli::FsckOptions fsck;
  auto* cmd_fsck = app.add_subcommand("fsck", "Verify a data directory: its ledger, spools and fragments");
  cmd_fsck->add_option("--data-dir", fsck.data_dir, "Data directory")->capture_default_str();
  cmd_fsck->footer(
      "Reads the ledger record by record, every spool, and every fragment of the lake (decompressing it "
      "and checking the SHA-1 in its name), and checks that every committed byte is in a fragment or a "
      "spool. Prints what is damaged (file and byte offset) and what can be salvaged. Modifies nothing "
      "and takes no lock. A torn final ledger record or uncommitted spool bytes, left by a crash, are "
      "notes, not damage: opening the directory discards them.\n"
      "Examples:\n"
      "  flowctl fsck                          # ./flowctl-data\n"
      "  flowctl fsck --data-dir /srv/flow     # another data directory\n"
      "Exit status: 0 clean, 1 damage found, 2 usage error, 3 the directory does not exist or cannot be "
      "read.");

  cli::TestOptions test;
  auto* cmd_test = app.add_subcommand("test", "Run the catalog's tests");
  add_catalog_options(cmd_test, &test.catalog);
  cmd_test->add_option("--filter", test.filter, "Only tests whose name contains this text");
  cmd_test->footer(
      "Each test runs in a fresh temporary data directory. After each ingest step, every "
      "derivation processes what is ready before the next step runs. Read delays are satisfied "
      "at verify steps by a simulated clock, never by sleeping.\n"
      "Exit status: 0 all tests passed, 1 a test failed or the catalog has errors, 2 usage "
      "error, 3 an environment problem (e.g. Node.js missing for nodeJS lambdas).");

  cli::RunOptions run;
  auto* cmd_run = app.add_subcommand(
      "run", "Run the catalog's captures, derivations and materializations over a data directory");
  add_catalog_options(cmd_run, &run.catalog);
  cmd_run->add_option("--data-dir", run.data_dir, "Data directory")->capture_default_str();
  cmd_run->add_option("--materialization", run.materializations,
                      "Run only this materialization (repeatable; default: all of them)")
      ->type_name("NAME");
  cmd_run->add_flag("--until-idle", run.until_idle,
                    "Exit once every task has processed everything committed (documents waiting "
                    "for a read delay excepted)");
  cmd_run->footer(
      "Runs until SIGINT/SIGTERM (then persists spools and exits 0), or with --until-idle until "
      "caught up. A derivation that fails halts with its error; the others keep running.\n"
      "Exit status: 0 success, 1 a derivation failed or the catalog has errors, 2 usage error, "
      "3 an environment problem (data directory locked or unwritable, Node.js missing).");

  cli::DevelopOptions dev;
  auto* cmd_dev = app.add_subcommand(
      "develop", "Run the pipeline continuously with the ingestion API, file-drop captures and live reload");
  add_catalog_options(cmd_dev, &dev.catalog);
  cmd_dev->add_option("--data-dir", dev.data_dir, "Data directory")->capture_default_str();
  cmd_dev->add_option("--port", dev.port, "Port of the ingestion API (0: any free port)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd_dev->add_option("--host", dev.host, "Address to listen on (loopback by default)")->capture_default_str();
  cmd_dev->add_flag("--no-watch", dev.no_watch, "Do not rebuild when the catalog's sources change");
  cmd_dev->add_option("--materialization", dev.materializations,
                      "Run only this materialization of the catalog (repeatable; default: all)");
  cmd_dev->add_option("--status-interval", dev.status_interval,
                      "Seconds between status lines when stderr is not a terminal")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd_dev->add_option("--request-timeout", dev.request_timeout,
                      "Seconds a client has to send a request's headers and body (slow or idle clients are "
                      "cut off), and the keep-alive idle limit")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  std::string max_body = "64MiB";
  cmd_dev->add_option("--max-body", max_body, "Largest ingest request body")->capture_default_str();
  cmd_dev->add_option("--allow-origin", dev.allow_origins,
                      "Let web pages of this origin (e.g. http://localhost:3000) call the API from a browser "
                      "(repeatable; by default browsers are refused, see docs/security.md)");
  cmd_dev->footer(
      "Serves PUT/POST /ingest, WebSocket /ingest/<collection> (json/v1, csv/v1, tsv/v1), /healthz and "
      "/metrics (see docs/reference/ingestion-api.md); ingests files dropped into the catalog's fileDrop captures; runs every "
      "derivation and materialization continuously; and rebuilds when a source file changes: a catalog "
      "with errors is reported and the previous one keeps running, a good one is applied without losing "
      "data (unchanged tasks keep their state, changed ones restart from their checkpoints, new ones "
      "back-fill). The listening URL is written to <data-dir>/develop.json, where `flowctl materialize` "
      "and `flowctl ingest --url` find it. SIGINT/SIGTERM persist spools and exit 0.\n"
      "Browser safety: requests must be addressed to a loopback name or address or the --host (DNS "
      "rebinding), a request from a web page of another origin is refused unless --allow-origin lists "
      "it, and JSON endpoints require Content-Type: application/json (see docs/security.md).\n"
      "Exit status: 0 stopped by a signal, 1 the catalog has errors at start, 2 usage error, 3 an "
      "environment problem (port in use, data directory locked, the store failed).");

  cli::MaterializeOptions mat;
  auto* cmd_mat = app.add_subcommand(
      "materialize", "Print the DDL of a one-off materialization of a collection, and run it until caught up");
  add_catalog_options(cmd_mat, &mat.catalog);
  cmd_mat->add_option("--data-dir", mat.data_dir, "Data directory")->capture_default_str();
  cmd_mat->add_option("--target", mat.target, "Materialization target of the catalog")->required();
  cmd_mat->add_option("--collection", mat.collection, "Collection to materialize")->required();
  cmd_mat->add_option("--table-name", mat.table, "Table to create (or reuse, when it has the same shape)")
      ->required();
  cmd_mat->add_option("--field", mat.fields, "A field to store (repeatable; the key and flow_document always are)");
  cmd_mat->add_flag("--all-fields", mat.all_fields, "Store every projection, not only single-typed scalars");
  cmd_mat->add_flag("--dry-run", mat.dry_run, "Only print the DDL");
  cmd_mat->add_flag("--yes", mat.yes, "Do not ask for confirmation");
  cmd_mat->footer(
      "Prints the CREATE TABLE statement to stdout. Without --dry-run, creates the table and "
      "flow_checkpoints if missing (a table of another shape is refused, never dropped) and "
      "materializes everything committed, exactly once, as materialization "
      "`materialize/<target>/<table>`; running it again continues from its checkpoint.");

  cli::DocsOptions docs;
  auto* cmd_docs = app.add_subcommand(
      "docs", "Write a static documentation and lineage site of the catalog (HTML, works from file://)");
  add_catalog_options(cmd_docs, &docs.catalog);
  cmd_docs->add_option("--output", docs.output, "Directory to write the site into (created if missing)")
      ->required();
  cmd_docs->add_option("--data-dir", docs.data_dir,
                       "Data directory the pages' lake paths and DuckDB queries name")
      ->capture_default_str();
  cmd_docs->footer(
      "Writes index.html (the collections, with search), one page per collection under collections/ "
      "(description, key, partitions, projections, schema with reductions, lake path and a DuckDB "
      "query, derivations, materializations, tests, and its neighbourhood in the lineage), lineage.html "
      "(the whole catalog as an SVG graph), style.css and search.js. Nothing is fetched when a page is "
      "viewed. The directory must be new, empty, or an earlier `flowctl docs` output (it then holds a "
      ".flowctl-docs file listing the files written; of those, the ones no longer produced are removed, "
      "and nothing else is touched).\n"
      "Exit status: 0 written, 1 the catalog has errors or --output is a non-empty directory of other "
      "files, 2 usage error, 3 the site could not be written.");

  auto* cmd_schema = app.add_subcommand(
      "json-schema", "Print the JSON Schema of catalog source files (for editors and linters)");
  auto* cmd_version = app.add_subcommand("version", "Print the flowctl version");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // With --log-format json anywhere on the line, stderr holds only JSON records, usage
    // errors included (the parse may have stopped before reaching the flag).
    for (int i = 1; i < argc; ++i) {
      std::string_view a = argv[i];
      if (a == "--log-format=json" ||
          (a == "--log-format" && i + 1 < argc && std::string_view(argv[i + 1]) == "json")) {
        g.log_format = "json";
      }
    }
    if (g.log_format != "json") {
      app.exit(e);
      return kExitUsage;
    }
    cli::ConfigureLogging(g);
    cli::PrintError(fmt::format("{} (run with --help for more information)", e.what()));
    return kExitUsage;
  }

  cli::ConfigureLogging(g);
  if (cmd_build->parsed()) return RunBuild(g, build);
  if (cmd_combine->parsed()) return cli::RunCombine(g, combine);
  if (cmd_ingest->parsed()) return cli::RunIngest(g, ingest);
  if (cmd_read->parsed()) return cli::RunRead(g, read);
  if (cmd_fsck->parsed()) return cli::RunFsck(g, fsck);
  if (cmd_test->parsed()) return cli::RunTest(g, test);
  if (cmd_run->parsed()) return cli::RunRun(g, run);
  if (cmd_mat->parsed()) return cli::RunMaterialize(g, mat);
  if (cmd_docs->parsed()) return cli::RunDocs(g, docs);
  if (cmd_dev->parsed()) {
    auto bytes = ParseByteSize(max_body);
    if (!bytes || *bytes == 0) {
      PrintError(fmt::format("--max-body `{}` is not a size such as 64MiB", max_body));
      return kExitUsage;
    }
    dev.max_body = *bytes;
    return cli::RunDevelop(g, dev);
  }
  if (cmd_schema->parsed()) {
    fmt::print("{}", catalog::CatalogSourceSchema());
    return kExitOk;
  }
  if (cmd_version->parsed()) {
    fmt::print("flowctl {}\n", FLOWCTL_VERSION);
    return kExitOk;
  }
  return kExitUsage;
}
