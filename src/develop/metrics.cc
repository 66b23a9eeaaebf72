#include "develop/metrics.h"

#include <optional>

#include <fmt/format.h>

namespace flow::develop {

const std::vector<double>& CommitHistogram::Bounds() {
  static const std::vector<double> bounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,   0.25,   0.5,   1,    2.5};
  return bounds;
}

CommitHistogram::CommitHistogram() : buckets_(Bounds().size() + 1, 0) {}

void CommitHistogram::Add(uint64_t microseconds) {
  double s = microseconds / 1e6;
  const auto& bounds = Bounds();
  size_t i = 0;
  while (i < bounds.size() && s > bounds[i]) ++i;
  ++buckets_[i];
  ++count_;
  sum_ += s;
}

std::string Label(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

using V = std::optional<uint64_t>;
using runtime::TaskKind;
using runtime::TaskState;
using runtime::TaskStatus;

// One metric family over every task; `value` returns nullopt to leave a task out.
template <typename F>
void PerTask(std::string* m, const std::vector<TaskStatus>& tasks, std::string_view name,
             std::string_view type, std::string_view help, F value) {
  *m += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  for (const auto& s : tasks) {
    V v = value(s);
    if (v)
      *m += fmt::format("{}{{kind=\"{}\",task=\"{}\"}} {}\n", name, runtime::ToString(s.kind),
                        Label(s.name), *v);
  }
}

void RenderTasks(std::string* m, const std::vector<TaskStatus>& tasks) {
  PerTask(m, tasks, "flowctl_task_documents_in_total", "counter", "Documents a task has read.",
          [](const TaskStatus& s) { return V(s.counters.in); });
  PerTask(m, tasks, "flowctl_task_documents_out_total", "counter",
          "Documents a derivation published, or rows a materialization stored.",
          [](const TaskStatus& s) { return V(s.counters.out); });
  PerTask(m, tasks, "flowctl_task_dead_letters_total", "counter",
          "Documents or keys a task sent to its dead-letter collections (deadLetters).",
          [](const TaskStatus& s) {
            return s.kind == TaskKind::kCapture ? std::nullopt : V(s.counters.dead_letters);
          });
  PerTask(m, tasks, "flowctl_task_read_bytes", "gauge",
          "Bytes of its source journals a task has read (its position).",
          [](const TaskStatus& s) { return V(s.progress.read); });
  PerTask(m, tasks, "flowctl_task_bytes_out_total", "counter",
          "Bytes of the documents a derivation published.", [](const TaskStatus& s) {
            return s.kind == TaskKind::kDerivation ? V(s.counters.bytes_out) : std::nullopt;
          });
  PerTask(m, tasks, "flowctl_task_lag_bytes", "gauge",
          "Committed source bytes a task has not read yet.",
          [](const TaskStatus& s) { return V(s.progress.total - s.progress.read); });
  PerTask(m, tasks, "flowctl_task_up", "gauge",
          "Whether a task runs (0: halted or waiting to retry).", [](const TaskStatus& s) {
            return V(s.state == TaskState::kRunning || s.state == TaskState::kBackFilling ? 1 : 0);
          });
}

}  // namespace

std::string RenderMetrics(const MetricsInput& in) {
  std::string m;
  m +=
      "# HELP flowctl_ingested_documents_total Documents ingested through the API, by collection.\n"
      "# TYPE flowctl_ingested_documents_total counter\n";
  if (in.ingested) {
    for (const auto& [c, n] : *in.ingested) {
      m += fmt::format("flowctl_ingested_documents_total{{collection=\"{}\"}} {}\n", Label(c),
                       n.documents);
    }
  }
  m += "# HELP flowctl_collection_bytes Bytes committed to the collection's journals.\n"
       "# TYPE flowctl_collection_bytes gauge\n";
  for (const auto& [name, bytes] : in.collection_bytes) {
    m += fmt::format("flowctl_collection_bytes{{collection=\"{}\"}} {}\n", Label(name), bytes);
  }
  RenderTasks(&m, in.tasks);
  m += "# HELP flowctl_ingest_commit_seconds Time to validate and commit one ingest request.\n"
       "# TYPE flowctl_ingest_commit_seconds histogram\n";
  CommitHistogram none;
  const CommitHistogram& h = in.latencies ? *in.latencies : none;
  const auto& bounds = CommitHistogram::Bounds();
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    cumulative += h.buckets()[i];
    m += fmt::format("flowctl_ingest_commit_seconds_bucket{{le=\"{}\"}} {}\n", bounds[i],
                     cumulative);
  }
  m += fmt::format("flowctl_ingest_commit_seconds_bucket{{le=\"+Inf\"}} {}\n", h.count());
  m += fmt::format("flowctl_ingest_commit_seconds_sum {}\nflowctl_ingest_commit_seconds_count {}\n",
                   h.sum(), h.count());
  m += fmt::format(
      "# TYPE flowctl_ingest_requests_total counter\nflowctl_ingest_requests_total {}\n",
      in.requests);
  return m;
}

}  // namespace flow::develop
