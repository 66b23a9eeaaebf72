// Catalog tests (SPEC 6): each test runs in a fresh data directory with fresh registers;
// `ingest` steps commit one transaction each, after which every derivation (and what is
// downstream of it) processes what is ready at the current simulated time, so that what
// one step derives is ordered before the next step's documents; `verify` steps first run
// every derivation until nothing is left to process, advancing a simulated clock over read
// delays (never sleeping), then fully reduce the collection's documents per key and compare them with
// the expected ones (partial objects, equal-length arrays, numbers within 1e-9 relative).
// Not thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "catalog/spec.h"
#include "runtime/plan.h"

namespace flow::runtime {

// The step a test failed at, for reports.
struct StepFailure {
  size_t step = 0;   // counted from 1
  std::string kind;  // "ingest" or "verify"
  std::string collection;
  catalog::Where where;  // the step in the catalog
  std::string message;   // "2 differences", or the error that failed the step
  // A verify step's differences, one line each (`key [7]: /spent: expected 5, actual 6`).
  std::vector<std::string> differences;
  // A verify step's documents as JSON arrays: those the step expects and the collection's
  // fully reduced ones (in key order); empty for other failures.
  std::string expected, actual;
};

struct TestOutcome {
  bool passed = true;
  double seconds = 0;
  // One entry per failed step: "step 3 (verify bikeshare/bikes): ..." followed by one line
  // per difference.
  std::vector<std::string> failures;
  // The same, structured (set when the test failed).
  std::optional<StepFailure> failure;
};

// Compares `actual` to `expected` as SPEC 6 says, appending one line per difference
// (`/pointer: expected X, actual Y`) to `diffs`, with pointers prefixed by `at`.
void DiffDocuments(const doc::Value& expected, const doc::Value& actual, const std::string& at,
                   std::vector<std::string>* diffs);

class TestRunner {
 public:
  // `scratch_dir`: where per-test data directories are created (and removed).
  TestRunner(const Plan* plan, std::string scratch_dir);

  // Runs one test. Environment and internal errors (a data directory that cannot be
  // written) are errors; everything the catalog got wrong (a failing lambda, an invalid
  // document, a verify mismatch) is a failed outcome.
  Result<TestOutcome> Run(const catalog::TestSpec& test);

 private:
  const Plan* plan_;
  std::string scratch_dir_;
};

}  // namespace flow::runtime
