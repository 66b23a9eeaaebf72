// `flowctl preview`: one derivation run over sample documents in a temporary data directory
// (runtime/preview.h). The derived documents, reduced per key, are the command's output
// (stdout); the catalog's errors, the lambdas' logs and errors go to stderr. `--watch` reruns
// it whenever the catalog or an input changes.
#include "cli/commands.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "base/strings.h"
#include "base/url.h"
#include "cli/common.h"
#include "cli/node.h"
#include "cli/output.h"
#include "cli/watch.h"
#include "lambda/lambda.h"
#include "runtime/node_lambdas.h"
#include "runtime/plan.h"
#include "runtime/preview.h"

namespace flow::cli {

struct PreviewOptions {
  CatalogOptions catalog;
  std::string derivation;
  std::vector<std::string> inputs;  // FILE or SOURCE=FILE
  std::string register_state;
  bool watch = false;
};

namespace {

// An `--input` as given: the source it names (empty: not named) and the file.
struct InputArg {
  std::string source;
  std::string path;
};

// `SOURCE=FILE` when the text before the first `=` names a source of the derivation, or when
// the whole is not an existing file; otherwise FILE alone (a path may hold `=`).
InputArg SplitInput(const std::string& text, const std::vector<std::string>& sources) {
  size_t eq = text.find('=');
  if (eq == std::string::npos) return {"", text};
  std::string source = text.substr(0, eq);
  bool named = std::find(sources.begin(), sources.end(), source) != sources.end();
  std::error_code ec;
  if (!named && std::filesystem::exists(text, ec)) return {"", text};
  return {source, text.substr(eq + 1)};
}

std::string Quoted(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    out += fmt::format("{}`{}`", i == 0 ? "" : i + 1 == names.size() ? " and " : ", ", names[i]);
  }
  return out;
}

// The files of the inputs and register state, as given (for --watch).
std::vector<std::string> InputFiles(const PreviewOptions& o) {
  std::vector<std::string> files;
  for (const auto& i : o.inputs) {
    std::error_code ec;
    size_t eq = i.find('=');
    files.push_back(eq == std::string::npos || std::filesystem::exists(i, ec) ? i
                                                                              : i.substr(eq + 1));
  }
  if (!o.register_state.empty()) files.push_back(o.register_state);
  return files;
}

// Runs the preview once; `*files` receives the catalog's local sources and the input files.
int RunOnce(const GlobalOptions& g, const PreviewOptions& o, std::vector<std::string>* files) {
  int code = 0;
  auto checked = LoadAndCheck(g, o.catalog, "; nothing was previewed", &code);
  if (!checked) return code;
  const catalog::Catalog& cat = checked->loaded->catalog;
  files->clear();
  for (const auto& f : cat.files) {
    if (IsFileUrl(f->url)) files->push_back(FilePathOfUrl(f->url));
  }
  for (auto& f : InputFiles(o)) files->push_back(std::move(f));

  const catalog::BuiltDerivation* bd = nullptr;
  std::vector<std::string> derivations;
  for (const auto& d : checked->built.derivations) {
    derivations.push_back(d.collection->name);
    if (d.collection->name == o.derivation) bd = &d;
  }
  if (!bd) {
    std::string list = derivations.empty() ? "none" : Quoted(derivations);
    if (checked->built.Collection(o.derivation)) {
      PrintError(fmt::format("collection `{}` is not a derivation (it has no `derivation` "
                             "section); the catalog's derivations are {}",
                             o.derivation, list));
    } else {
      std::string hint = DidYouMean(o.derivation, derivations);
      PrintError(fmt::format("no derivation `{}` in the catalog{}; its derivations are {}",
                             o.derivation, hint.empty() ? "" : " (" + hint + ")", list));
    }
    return kExitUserError;
  }
  std::vector<std::string> sources;
  for (const auto& t : bd->transforms) {
    if (std::find(sources.begin(), sources.end(), t.spec->source) == sources.end())
      sources.push_back(t.spec->source);
  }

  std::vector<InputArg> args;
  for (const auto& text : o.inputs) {
    InputArg a = SplitInput(text, sources);
    if (a.source.empty()) {
      if (sources.size() > 1) {
        PrintError(fmt::format(
            "--input `{}` does not name its source: derivation `{}` reads {}; give each input as "
            "--input SOURCE=FILE, e.g. --input {}={}",
            text, o.derivation, Quoted(sources), sources.front(), text));
        return kExitUsage;
      }
      a.source = sources.front();
    } else if (std::find(sources.begin(), sources.end(), a.source) == sources.end()) {
      std::string hint = DidYouMean(a.source, sources);
      PrintError(
          fmt::format("--input `{}`: `{}` is not a source of derivation `{}`{}; its "
                      "source{} {}",
                      text, a.source, o.derivation, hint.empty() ? "" : " (" + hint + ")",
                      sources.size() == 1 ? " is" : "s are", Quoted(sources)));
      return kExitUsage;
    }
    args.push_back(std::move(a));
  }

  // Only this derivation is compiled and started; its lambdas' output goes to stderr.
  auto plan = runtime::CompileDerivationPlan(checked->built, o.derivation,
                                             runtime::NodeStarterFor(cat, STDERR_FILENO));
  if (!plan) return PrintFailure(plan.error());
  runtime::PreviewOptions po;
  for (const auto& a : args) po.inputs.push_back({plan->collections.at(a.source), a.path});
  po.register_state = o.register_state;
  const char* tmp = std::getenv("TMPDIR");
  po.scratch_dir = tmp && *tmp ? tmp : "/tmp";
  StdoutLines out;
  std::string where;
  auto result = runtime::RunPreview(
      *plan, po, [&](std::string_view line) { return out.Add(line); }, &where);
  out.Flush();
  if (!result) return PrintErrorAtPlace(where, result.error());
  const runtime::PreviewResult& r = result.value();
  std::string dead;
  if (r.stats.dead_letters) {
    dead = fmt::format("; {} source document{} went to dead letters (not shown)",
                       r.stats.dead_letters, r.stats.dead_letters == 1 ? "" : "s");
  }
  PrintNote(fmt::format("previewed `{}`: {} source document{} in, {} derived document{} out{}",
                        o.derivation, r.documents, r.documents == 1 ? "" : "s", r.derived,
                        r.derived == 1 ? "" : "s", dead),
            {{"derivation", o.derivation},
             {"documents", r.documents},
             {"derived", r.derived},
             {"dead_letters", r.stats.dead_letters}});
  return out.failed() ? kExitEnvironment : kExitOk;
}

}  // namespace

// Ctrl-C or SIGTERM cuts a lambda short, so that the preview ends and removes its
// temporary data directory; a second one kills at once (the next preview removes it).
void OnStopSignal(int sig) {
  lambda::RequestStop();
  std::signal(sig, SIG_DFL);
}

int RunPreview(const GlobalOptions& g, const PreviewOptions& o) {
  std::vector<std::string> files;
  if (!o.watch) {
    std::signal(SIGINT, OnStopSignal);
    std::signal(SIGTERM, OnStopSignal);
    return RunOnce(g, o, &files);
  }
  WatchLoop loop;
  loop.run = [&](std::vector<std::string>* files) { RunOnce(g, o, files); };
  loop.always = CatalogRootFile(o.catalog);
  for (auto& f : InputFiles(o)) loop.always.push_back(std::move(f));
  loop.watching = [](size_t n) {
    return fmt::format(
        "watching {} file{} of the catalog and the inputs: save a change to preview again "
        "(Ctrl-C to stop)",
        n, n == 1 ? "" : "s");
  };
  loop.changed = "a file changed: previewing again";
  return RunWatching(loop);
}

Command RegisterPreview(CLI::App& app) {
  auto o = std::make_shared<PreviewOptions>();
  auto* cmd = app.add_subcommand(
      "preview", "Run one derivation over sample documents and print what it derives");
  AddCatalogOptions(*cmd, o->catalog);
  cmd->add_option("--derivation", o->derivation, "The derived collection to preview")
      ->required()
      ->type_name("NAME");
  cmd->add_option("--input", o->inputs,
                  "Documents for a source collection: JSON lines, or CSV/TSV by the extension "
                  "(.gz/.zst decompressed). SOURCE= names the source collection; it is needed "
                  "when the derivation reads several (repeatable)")
      ->required()
      ->type_name("[SOURCE=]FILE");
  cmd->add_option("--register-state", o->register_state,
                  "Initial registers, JSON lines of {\"key\": [shuffle key values], \"value\": "
                  "register} (default: every register starts at its `initial`)")
      ->type_name("FILE");
  cmd->add_flag("--watch", o->watch,
                "Preview again whenever a source file of the catalog or an input changes, until "
                "SIGINT/SIGTERM");
  cmd->footer(
      "The derivation runs alone, in a temporary data directory removed afterwards: the data "
      "directory (--data-dir of other commands) is neither read nor written. The documents of "
      "several inputs are read interleaved by file order (the first document of each input, "
      "then the second, ...); read delays are ignored. Each input document is validated "
      "against its collection's schema.\n"
      "The derived documents, fully reduced per key, go to stdout as JSON lines in key order; "
      "the lambdas' logs (console.log) and errors, and a summary line, go to stderr.\n"
      "Examples:\n"
      "  flowctl preview --derivation acme/totals --input orders.jsonl\n"
      "  flowctl preview --derivation acme/joined --input acme/orders=orders.csv "
      "--input acme/customers=customers.jsonl\n"
      "  flowctl preview --derivation acme/totals --input orders.jsonl --register-state "
      "registers.jsonl --watch\n"
      "Exit status: 0 previewed (with --watch: stopped by SIGINT/SIGTERM), 1 the catalog has "
      "errors, --derivation names no derivation, an input file is missing, an input "
      "document is invalid or a lambda failed, 2 usage error (an input naming no source of "
      "the derivation), 3 an environment problem (Node.js missing for nodeJS lambdas, a "
      "read error).");
  return {cmd, [o](const GlobalOptions& g) { return RunPreview(g, *o); }};
}

}  // namespace flow::cli
