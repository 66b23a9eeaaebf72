// The Prometheus text develop serves at GET /metrics (SPEC 7): documents ingested, bytes
// per collection, per-task counters, progress and state, and a histogram of ingest commit
// latencies.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "develop/ingest_service.h"
#include "runtime/supervisor.h"

namespace flow::develop {

// Latencies of ingest commits, bucketed (cumulated since develop started).
class CommitHistogram {
 public:
  // Upper bounds of the buckets, in seconds (the last bucket, +Inf, is implied).
  static const std::vector<double>& Bounds();
  CommitHistogram();
  void Add(uint64_t microseconds);
  // Per bound, then +Inf: the latencies in that bucket (not cumulative).
  const std::vector<uint64_t>& buckets() const { return buckets_; }
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }  // seconds

 private:
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  double sum_ = 0;
};

struct MetricsInput {
  const std::map<std::string, IngestCounters>* ingested = nullptr;  // by collection
  std::map<std::string, uint64_t> collection_bytes;                 // committed, by collection
  std::vector<runtime::TaskStatus> tasks;
  const CommitHistogram* latencies = nullptr;
  uint64_t requests = 0;  // ingest requests answered
};

// The metrics text of `in`.
std::string RenderMetrics(const MetricsInput& in);

// A Prometheus label value: backslashes, quotes and line ends escaped.
std::string Label(std::string_view s);

}  // namespace flow::develop
