#include "cli/node.h"

#include <fmt/format.h>

namespace flow::cli {

runtime::NodeStarter NodeStarterFor(const CheckedCatalog&) {
  return [](const std::string& derivation,
            const std::vector<runtime::NodeLambda>&) -> Result<std::map<std::string, std::shared_ptr<lambda::Lambda>>> {
    return Error::Env(fmt::format("derivation `{}`: nodeJS lambdas are not available in this build yet", derivation));
  };
}

}  // namespace flow::cli
