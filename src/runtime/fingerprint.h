// Fingerprints of a catalog's tasks, for live reload (runtime/supervisor.h): a task whose
// fingerprint is unchanged between two builds keeps running.
#pragma once

#include <map>
#include <string>

#include "catalog/check.h"
#include "catalog/spec.h"

namespace flow::runtime {

// Fingerprints of a checked catalog's tasks, by "derivation:NAME" and
// "materialization:NAME": equal when nothing that the task's behaviour depends on changed
// (its sources, schemas, lambdas, projections, target, dead letters).
std::map<std::string, std::string> TaskFingerprints(const catalog::Catalog& catalog,
                                                    const catalog::Built& built);

}  // namespace flow::runtime
