// develop's control API: POST /materializations starts a one-off materialization
// (runtime/one_off.h) in the running develop — what `flowctl materialize` sends when a
// develop owns the data directory. Requests arrive on the pipeline thread (during
// IngestService::Drain).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "develop/develop.h"
#include "runtime/one_off.h"
#include "runtime/supervisor.h"
#include "server/server.h"

namespace flow::develop {

// The request a POST /materializations body holds, `{target, collection, table, fields,
// allFields}` (missing or mistyped members are empty); nullopt when it is not a JSON object.
std::optional<runtime::OneOffRequest> ParseMaterializationRequest(const std::string& body);

// Answers a control request against the running `catalog`, adding the materialization it
// asks for to `tasks`. `log` receives the line saying it started.
server::Response HandleControl(const std::string& method, const std::string& target,
                               const std::string& body, const Source& catalog,
                               runtime::Supervisor* tasks,
                               const std::function<void(const std::string&)>& log);

}  // namespace flow::develop
