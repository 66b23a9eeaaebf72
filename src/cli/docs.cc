// `flowctl docs`: write the static documentation site of a catalog (SPEC section 10).
#include "cli/commands.h"

#include <chrono>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/common.h"
#include "cli/output.h"
#include "site/site.h"

namespace flow::cli {

struct DocsOptions {
  CatalogOptions catalog;
  std::string output;                     // the site's directory
  std::string data_dir = kDefaultDataDir;  // shown in the pages' lake paths
};

int RunDocs(const GlobalOptions& g, const DocsOptions& o) {
  auto start = std::chrono::steady_clock::now();
  int code = 0;
  auto checked = LoadAndCheck(g, o.catalog, fmt::format("; {} was not written", o.output), &code);
  if (!checked) return code;
  site::SiteOptions options;
  options.data_dir = o.data_dir;
  auto files = site::RenderSite(*checked->loaded, checked->built, options);
  auto written = site::WriteSite(files, o.output);
  if (!written) return PrintFailure(written.error());
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  std::string removed = written->removed ? fmt::format(", removed {} stale", written->removed) : "";
  PrintNote(fmt::format("wrote {} pages ({} files{}) to {} in {} ms; open {}/index.html", written->pages,
                        written->files, removed, o.output, ms, o.output),
            {{"pages", written->pages}, {"files", written->files}, {"output", o.output}});
  return kExitOk;
}

Command RegisterDocs(CLI::App& app) {
  auto o = std::make_shared<DocsOptions>();
  auto* cmd = app.add_subcommand(
      "docs",
      "Write a static documentation and lineage site of the catalog (HTML, works from file://)");
  AddCatalogOptions(*cmd, o->catalog);
  cmd->add_option("--output", o->output, "Directory to write the site into (created if missing)")
      ->required();
  AddDataDirOption(*cmd, o->data_dir,
                   "Data directory the pages' lake paths and DuckDB queries name");
  cmd->footer(
      "Writes index.html (the collections, with search), one page per collection under "
      "collections/ (description, key, partitions, projections, schema with reductions, lake "
      "path and a DuckDB query, derivations, materializations, tests, and its neighbourhood in "
      "the lineage), lineage.html (the whole catalog as an SVG graph), style.css and search.js. "
      "Nothing is fetched when a page is viewed. The directory must be new, empty, or an earlier "
      "`flowctl docs` output (it then holds a .flowctl-docs file listing the files written; of "
      "those, the ones no longer produced are removed, and nothing else is touched).\n"
      "Exit status: 0 written, 1 the catalog has errors or --output is a non-empty directory of "
      "other files, 2 usage error, 3 the site could not be written.");
  return {cmd, [o](const GlobalOptions& g) { return RunDocs(g, *o); }};
}

}  // namespace flow::cli
