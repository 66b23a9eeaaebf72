#include "cli/docs.h"

#include <chrono>

#include <fmt/format.h>

#include "cli/output.h"
#include "docs/site.h"

namespace flow::cli {

int RunDocs(const GlobalOptions& g, const DocsOptions& o) {
  auto start = std::chrono::steady_clock::now();
  int code = 0;
  auto checked = LoadAndCheck(g, o.catalog, fmt::format("; {} was not written", o.output), &code);
  if (!checked) return code;
  docs::SiteOptions options;
  options.data_dir = o.data_dir;
  auto files = docs::RenderSite(*checked->loaded, checked->built, options);
  auto written = docs::WriteSite(files, o.output);
  if (!written) {
    PrintError(written.error().message);
    return written.error().ExitCode();
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  std::string removed = written->removed ? fmt::format(", removed {} stale", written->removed) : "";
  PrintNote(fmt::format("wrote {} pages ({} files{}) to {} in {} ms; open {}/index.html", written->pages,
                        written->files, removed, o.output, ms, o.output),
            {{"pages", written->pages}, {"files", written->files}, {"output", o.output}});
  return kExitOk;
}

}  // namespace flow::cli
