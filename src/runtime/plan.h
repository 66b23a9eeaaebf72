// A checked catalog compiled for running: every collection (runtime/collection.h), every
// derivation with its transforms and lambdas (runtime/derive.h), every materialization and
// every file-drop capture (runtime/capture.h). Lambdas are created here:
// SQLite lambdas in-process, remote lambdas as HTTP clients, and the nodeJS lambdas of
// each derivation in one Node.js worker, through `NodeStarter` (so that callers choose how
// workers are started and cached).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "catalog/check.h"
#include "lambda/lambda.h"
#include "runtime/capture.h"
#include "runtime/collection.h"
#include "runtime/derive.h"
#include "runtime/materialize.h"

namespace flow::runtime {

// A nodeJS lambda to host: `id` is unique within its derivation.
struct NodeLambda {
  std::string id;
  std::string body;
  bool publish = false;
  std::string transform;
  int bootstrap = 0;  // a bootstrap lambda: its 1-based position in `bootstrap`
  std::chrono::milliseconds timeout = lambda::kDefaultTimeout;  // `lambdaTimeout`
};

// Starts one worker for a derivation's nodeJS lambdas and returns them, by id.
using NodeStarter = std::function<Result<std::map<std::string, std::shared_ptr<lambda::Lambda>>>(
    const std::string& derivation, const std::vector<NodeLambda>& lambdas)>;

struct Plan {
  std::map<std::string, std::shared_ptr<const Collection>> collections;
  std::vector<std::shared_ptr<const Derivation>> derivations;          // catalog order
  std::vector<std::shared_ptr<const Materialization>> materializations;  // catalog order
  std::vector<std::shared_ptr<const FileDropCapture>> captures;          // catalog order
};

// The table a binding of `collection` writes: `fields` (selected, `flow_document` last)
// with their locations, shapes and key positions.
materialize::Table MakeTable(const catalog::BuiltCollection& collection, const std::string& table,
                             const std::vector<std::string>& fields, bool delta_updates);

// A `partitions: {include, exclude}` selector on encoded partition values.
Result<PartitionFilter> CompilePartitionFilter(const catalog::PartitionSelectorSpec& spec);

// Compiles derivation `derivation` of `built` alone (`flowctl preview`), with only the
// collections it reads and writes (its sources, its own, its dead-letter collections): the
// Node.js workers and SQLite databases of other derivations are not started. Its `logic` is
// empty (it is never compared with a checkpoint). An unknown name is an internal error.
Result<Plan> CompileDerivationPlan(const catalog::Built& built, const std::string& derivation,
                                   const NodeStarter& node);

// Compiles `built` (checked without errors). `node` may be empty when the catalog has no
// nodeJS lambdas; otherwise its absence is an environment error.
Result<Plan> CompilePlan(const catalog::Catalog& catalog, const catalog::Built& built, const NodeStarter& node);

}  // namespace flow::runtime
