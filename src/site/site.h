// The documentation site of a checked catalog (SPEC section 10): an index of collections
// with search, a page per collection, the whole catalog's lineage graph, one stylesheet and
// one script. Pages are plain files that work from file:// without a server or network:
// the index embeds its search data, nothing is fetched. Every catalog value is HTML-escaped.
// Rendering is pure; WriteSite owns the output directory's rules (see docs/docs-site.md).
#pragma once

#include <string>
#include <vector>

#include "base/result.h"

namespace flow::catalog {
struct Loaded;
struct Built;
}  // namespace flow::catalog

namespace flow::site {

struct SiteOptions {
  std::string data_dir = "flowctl-data";  // shown in lake paths and DuckDB queries
};

struct SiteFile {
  std::string path;     // relative to the site root, `/`-separated
  std::string content;
};

// Every file of the site. `built` must come from checking `loaded`.
std::vector<SiteFile> RenderSite(const catalog::Loaded& loaded, const catalog::Built& built,
                                 const SiteOptions& options);

// The marker file WriteSite leaves in a directory it wrote; it lists the files written.
constexpr const char* kMarkerFile = ".flowctl-docs";

struct WriteReport {
  size_t pages = 0;    // HTML files written
  size_t files = 0;    // all files written
  size_t removed = 0;  // files of an earlier run that this one no longer has
};

// Writes `files` under `dir` (created if missing), each through a temporary file renamed
// into place. Refuses (a user error, nothing written) a directory that is not empty and has
// no marker file; in a directory with a marker, removes the files the previous run listed
// that this run did not write, and nothing else. Errors name the path.
Result<WriteReport> WriteSite(const std::vector<SiteFile>& files, const std::string& dir);

}  // namespace flow::site
