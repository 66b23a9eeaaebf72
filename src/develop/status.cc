// develop's status as text (develop.h): the lines of the terminal's view, or of the log.
#include <fmt/format.h>

#include "base/strings.h"
#include "develop/develop.h"

namespace flow::develop {

namespace {

std::string HumanBytes(uint64_t b) {
  if (b < 1024) return fmt::format("{} B", b);
  if (b < (1 << 20)) return fmt::format("{:.1f} KiB", b / 1024.0);
  if (b < (1ull << 30)) return fmt::format("{:.1f} MiB", b / 1048576.0);
  return fmt::format("{:.1f} GiB", b / 1073741824.0);
}

}  // namespace

// The status as lines: a table for the terminal's view, else one `status:` line a task.
std::vector<std::string> StatusLines(const develop::Status& status, bool table) {
  std::vector<std::string> lines;
  if (table) {
    lines.push_back(fmt::format("flowctl develop on {} — {} requests, {} documents ingested",
                                status.url, status.requests, status.documents));
    lines.push_back(fmt::format("  {:<16} {:<40} {:<14} {:>10} {:>10} {:>12}", "KIND", "TASK",
                                "STATE", "IN", "OUT", "LAG"));
  }
  for (const auto& s : status.tasks) {
    uint64_t lag = s.progress.total - s.progress.read;
    std::string lag_text = s.kind == runtime::TaskKind::kCapture ? "-" : HumanBytes(lag);
    if (s.state == runtime::TaskState::kBackFilling && s.progress.total > 0) {
      lag_text += fmt::format(" ({:.0f}%)", 100.0 * s.progress.read / s.progress.total);
    }
    if (table) {
      lines.push_back(fmt::format("  {:<16} {:<40} {:<14} {:>10} {:>10} {:>12}",
                                  runtime::ToString(s.kind), Truncate(s.name, 40), runtime::StateText(s),
                                  s.counters.in, s.counters.out, lag_text));
    } else {
      lines.push_back(fmt::format("status: {} `{}` {} in={} out={} lag={}",
                                  runtime::ToString(s.kind), s.name, runtime::StateText(s), s.counters.in,
                                  s.counters.out, lag_text));
    }
  }
  if (!table) {
    lines.push_back(
        fmt::format("status: ingest requests={} documents={}", status.requests, status.documents));
  }
  return lines;
}

}  // namespace flow::develop
