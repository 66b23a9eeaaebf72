#include "runtime/node_lambdas.h"

#include <fmt/format.h>

#include "lambda/node.h"

namespace flow::runtime {
namespace {

lambda::NodeOptions OptionsOf(const catalog::Catalog& catalog) {
  lambda::NodeOptions options;
  for (const auto& d : catalog.node_dependencies) options.dependencies[d.package] = d.version;
  return options;
}

}  // namespace

NodeStarter NodeStarterFor(const catalog::Catalog& catalog) {
  lambda::NodeOptions options = OptionsOf(catalog);
  return [options](const std::string& derivation, const std::vector<NodeLambda>& lambdas)
             -> Result<std::map<std::string, std::shared_ptr<lambda::Lambda>>> {
    std::vector<lambda::NodeLambdaSpec> specs;
    // One worker per derivation: the task's errors already name the derivation.
    for (const auto& l : lambdas)
      specs.push_back({l.id, l.transform, l.publish, l.body, "", l.bootstrap, l.timeout});
    auto worker = lambda::NodeWorker::Start(specs, options);
    if (!worker) {
      return Error{worker.error().code,
                   fmt::format("derivation `{}`: {}", derivation, worker.error().message)};
    }
    std::map<std::string, std::shared_ptr<lambda::Lambda>> out;
    for (const auto& l : lambdas) out[l.id] = worker.value()->Get(l.id);
    return out;
  };
}

Result<bool> PrepareNodeLambdas(const catalog::Catalog& catalog, const catalog::Built& built,
                                std::string* where) {
  where->clear();
  // One module for every lambda of the catalog: one esbuild run checks them all.
  std::vector<lambda::NodeLambdaSpec> specs;
  std::vector<const catalog::LambdaSpec*> lambdas;
  for (const auto& bd : built.derivations) {
    const auto& bootstrap = bd.collection->derivation->bootstrap;
    for (size_t i = 0; i < bootstrap.size(); ++i) {
      if (bootstrap[i].kind != catalog::LambdaSpec::Kind::kNodeJS) continue;
      specs.push_back({fmt::format("{}/bootstrap/{}", bd.collection->name, i), "", false,
                       bootstrap[i].body, bd.collection->name, static_cast<int>(i + 1)});
      lambdas.push_back(&bootstrap[i]);
    }
    for (const auto& bt : bd.transforms) {
      const catalog::TransformSpec& t = *bt.spec;
      for (bool publish : {false, true}) {
        const auto& l = publish ? t.publish : t.update;
        if (!l || l->kind != catalog::LambdaSpec::Kind::kNodeJS) continue;
        specs.push_back(
            {fmt::format("{}/{}/{}", bd.collection->name, t.name, publish ? "publish" : "update"),
             t.name, publish, l->body, bd.collection->name});
        lambdas.push_back(&*l);
      }
    }
  }
  if (specs.empty()) return true;
  auto prepared = lambda::PrepareNodeLambdas(specs, OptionsOf(catalog));
  if (prepared) return true;
  const Error& e = prepared.error();
  // Place the error at the lambda it names (the last one, when it names several).
  for (size_t i = 0; i < specs.size(); ++i) {
    std::string label = specs[i].bootstrap ? fmt::format("bootstrap lambda {} of derivation `{}`",
                                                         specs[i].bootstrap, specs[i].derivation)
                                           : fmt::format("transform `{}` of derivation `{}` ({})",
                                                         specs[i].transform, specs[i].derivation,
                                                         specs[i].publish ? "publish" : "update");
    if (e.message.find(label) != std::string::npos) {
      const auto& w = lambdas[i]->where;
      *where = fmt::format("{}:{}:{}", w.file, w.mark.line, w.mark.col);
    }
  }
  return e;
}

}  // namespace flow::runtime
