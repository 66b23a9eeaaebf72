// Builds what develop runs from a loaded catalog: the plan, its tasks' fingerprints and the
// source files to watch. Node.js workers are kept by derivation and lambda bodies, so that
// a reload reuses the workers of unchanged derivations instead of starting them again.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "develop/develop.h"
#include "lambda/lambda.h"
#include "runtime/backfill.h"
#include "runtime/plan.h"

namespace flow::develop {

struct Built {
  std::unique_ptr<Source> source;
  std::shared_ptr<runtime::Plan> plan;
  std::map<std::string, std::string> fingerprints;  // runtime::TaskFingerprints
  std::vector<std::string> files;                   // local source files, to watch
};

class Builder {
 public:
  Builder(Hooks::Load load, std::function<void(const std::string&)> log)
      : load_(std::move(load)), log_(std::move(log)) {}

  // Loads and compiles the catalog; nullopt after reporting its errors (ending with
  // `consequence`), with `*exit_code` set.
  std::optional<Built> Build(const std::string& consequence, int* exit_code);

 private:
  Hooks::Load load_;
  std::function<void(const std::string&)> log_;
  std::map<std::string, std::map<std::string, std::shared_ptr<lambda::Lambda>>> node_cache_;
};

// The log line of an applied reload: tasks unchanged, restarted, back-filled (`backfilled`,
// counted only when there are some), new and removed, from the fingerprints before and after.
std::string ReloadSummary(const std::map<std::string, std::string>& before,
                          const std::map<std::string, std::string>& after,
                          const runtime::Backfill& backfilled = {});

}  // namespace flow::develop
