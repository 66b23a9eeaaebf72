#include "cli/node.h"

#include <fmt/format.h>

#include "lambda/node.h"

namespace flow::cli {

runtime::NodeStarter NodeStarterFor(const CheckedCatalog& catalog) {
  lambda::NodeOptions options;
  for (const auto& d : catalog.loaded->catalog.node_dependencies) options.dependencies[d.package] = d.version;
  return [options](const std::string& derivation, const std::vector<runtime::NodeLambda>& lambdas)
             -> Result<std::map<std::string, std::shared_ptr<lambda::Lambda>>> {
    std::vector<lambda::NodeLambdaSpec> specs;
    for (const auto& l : lambdas) specs.push_back({l.id, l.transform, l.publish, l.body});
    auto worker = lambda::NodeWorker::Start(specs, options);
    if (!worker) {
      return Error{worker.error().code, fmt::format("derivation `{}`: {}", derivation, worker.error().message)};
    }
    std::map<std::string, std::shared_ptr<lambda::Lambda>> out;
    for (const auto& l : lambdas) out[l.id] = worker.value()->Get(l.id);
    return out;
  };
}

}  // namespace flow::cli
