#include "cli/docs.h"

#include <chrono>

#include <fmt/format.h>

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
    fmt::print(stderr, "error: {}\n", written.error().message);
    return written.error().ExitCode();
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  std::string removed = written->removed ? fmt::format(", removed {} stale", written->removed) : "";
  fmt::print(stderr, "wrote {} pages ({} files{}) to {} in {} ms; open {}/index.html\n", written->pages,
             written->files, removed, o.output, ms, o.output);
  return kExitOk;
}

}  // namespace flow::cli
