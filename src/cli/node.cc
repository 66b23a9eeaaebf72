#include "cli/node.h"

#include <fmt/format.h>

#include "cli/output.h"
#include "lambda/node.h"

namespace flow::cli {

runtime::NodeStarter NodeStarterFor(const CheckedCatalog& catalog) {
  lambda::NodeOptions options;
  for (const auto& d : catalog.loaded->catalog.node_dependencies) options.dependencies[d.package] = d.version;
  return [options](const std::string& derivation, const std::vector<runtime::NodeLambda>& lambdas)
             -> Result<std::map<std::string, std::shared_ptr<lambda::Lambda>>> {
    std::vector<lambda::NodeLambdaSpec> specs;
    // One worker per derivation: the task's errors already name the derivation.
    for (const auto& l : lambdas) specs.push_back({l.id, l.transform, l.publish, l.body, "", l.bootstrap, l.timeout});
    auto worker = lambda::NodeWorker::Start(specs, options);
    if (!worker) {
      return Error{worker.error().code, fmt::format("derivation `{}`: {}", derivation, worker.error().message)};
    }
    std::map<std::string, std::shared_ptr<lambda::Lambda>> out;
    for (const auto& l : lambdas) out[l.id] = worker.value()->Get(l.id);
    return out;
  };
}

int PrepareNodeLambdas(const GlobalOptions& g, const CheckedCatalog& catalog) {
  lambda::NodeOptions options;
  for (const auto& d : catalog.loaded->catalog.node_dependencies) options.dependencies[d.package] = d.version;
  // One module for every lambda of the catalog: one esbuild run checks them all.
  std::vector<lambda::NodeLambdaSpec> specs;
  std::vector<const catalog::LambdaSpec*> where;
  for (const auto& bd : catalog.built.derivations) {
    const auto& bootstrap = bd.collection->derivation->bootstrap;
    for (size_t i = 0; i < bootstrap.size(); ++i) {
      if (bootstrap[i].kind != catalog::LambdaSpec::Kind::kNodeJS) continue;
      specs.push_back({fmt::format("{}/bootstrap/{}", bd.collection->name, i), "", false, bootstrap[i].body,
                       bd.collection->name, static_cast<int>(i + 1)});
      where.push_back(&bootstrap[i]);
    }
    for (const auto& bt : bd.transforms) {
      const catalog::TransformSpec& t = *bt.spec;
      for (bool publish : {false, true}) {
        const auto& l = publish ? t.publish : t.update;
        if (!l || l->kind != catalog::LambdaSpec::Kind::kNodeJS) continue;
        specs.push_back({fmt::format("{}/{}/{}", bd.collection->name, t.name, publish ? "publish" : "update"), t.name,
                         publish, l->body, bd.collection->name});
        where.push_back(&*l);
      }
    }
  }
  if (specs.empty()) return kExitOk;
  auto prepared = lambda::PrepareNodeLambdas(specs, options);
  if (prepared) return kExitOk;
  const Error& e = prepared.error();
  // Place the error at the lambda it names, else at the root source.
  std::string head;
  for (size_t i = 0; i < specs.size(); ++i) {
    std::string label =
        specs[i].bootstrap
            ? fmt::format("bootstrap lambda {} of derivation `{}`", specs[i].bootstrap, specs[i].derivation)
            : fmt::format("transform `{}` of derivation `{}` ({})", specs[i].transform, specs[i].derivation,
                          specs[i].publish ? "publish" : "update");
    if (e.message.find(label) != std::string::npos) {
      const auto& w = where[i]->where;
      head = fmt::format("{}:{}:{}: ", w.file, w.mark.line, w.mark.col);
    }
  }
  if (JsonOutput()) {
    PrintErrorAt(head.empty() ? "" : head.substr(0, head.size() - 2), e.message);
  } else {
    fmt::print(stderr, "{}{}: {}\n", head, UseColor(g) ? "\033[31merror\033[0m" : "error", e.message);
  }
  return e.ExitCode();
}

}  // namespace flow::cli
