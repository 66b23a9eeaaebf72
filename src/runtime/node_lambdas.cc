#include "runtime/node_lambdas.h"

#include <fmt/format.h>

#include <map>
#include <set>
#include <utility>

#include "base/url.h"
#include "lambda/node.h"
#include "schema/typescript.h"

namespace flow::runtime {
namespace {

lambda::NodeOptions OptionsOf(const catalog::Catalog& catalog) {
  lambda::NodeOptions options;
  for (const auto& d : catalog.node_dependencies) options.dependencies[d.package] = d.version;
  return options;
}

// `shop/by-status` -> ShopByStatus: the words of a name, capitalized (a leading digit gets
// a `_`).
std::string PascalCase(std::string_view name) {
  std::string out;
  bool upper = true;
  for (char c : name) {
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum) {
      upper = true;
      continue;
    }
    out += upper && c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
    upper = false;
  }
  if (out.empty() || (out[0] >= '0' && out[0] <= '9')) out = "_" + out;
  return out;
}

// The names of the declarations (TypeScriptDeclarations), unique: a name taken already gets
// a number.
struct TypeNames {
  std::map<std::string, std::string> collection;          // by collection name
  std::map<std::string, std::string> register_;           // by derivation name
  // What a derivation's lambdas return (TypeScriptOf's `output`), by derivation name.
  std::map<std::string, std::string> output, register_output;
  using Transform = std::pair<std::string, std::string>;  // derivation, transform
  std::map<Transform, std::string> source, publish, update;

  explicit TypeNames(const catalog::Built& built) {
    for (const auto& c : built.collections)
      collection[c.spec->name] = Take(PascalCase(c.spec->name));
    for (const auto& bd : built.derivations) {
      const std::string& d = bd.collection->name;
      output[d] = Take(PascalCase(d) + "Output");
      register_[d] = Take(PascalCase(d) + "Register");
      register_output[d] = Take(PascalCase(d) + "RegisterOutput");
      for (const auto& bt : bd.transforms) {
        const catalog::TransformSpec& t = *bt.spec;
        std::string base = PascalCase(d) + PascalCase(t.name);
        if (bt.source_shape) source[{d, t.name}] = Take(base + "Source");
        if (t.update && t.update->kind == catalog::LambdaSpec::Kind::kNodeJS) {
          update[{d, t.name}] = Take(base + "Update");
        }
        if (t.publish && t.publish->kind == catalog::LambdaSpec::Kind::kNodeJS) {
          publish[{d, t.name}] = Take(base + "Publish");
        }
      }
    }
  }

  // The type of the source documents of transform `t` of derivation `d`.
  std::string SourceOf(const std::string& d, const catalog::TransformSpec& t) const {
    if (auto it = source.find({d, t.name}); it != source.end()) return it->second;
    auto it = collection.find(t.source);
    return it != collection.end() ? it->second : "unknown";
  }

 private:
  std::string Take(const std::string& base) {
    std::string name = base;
    for (int n = 2; !taken_.insert(name).second; ++n) name = base + std::to_string(n);
    return name;
  }
  std::set<std::string> taken_;
};

// A doc comment of `lines` (without `*/`).
std::string DocComment(const std::vector<std::string>& lines) {
  std::string out = "/**\n";
  for (const auto& l : lines) {
    std::string text;
    for (size_t i = 0; i < l.size(); ++i) {
      if (l[i] == '\r') continue;
      text += l[i] == '\n' ? std::string("\n * ") : std::string(1, l[i]);
      if (l[i] == '*' && i + 1 < l.size() && l[i + 1] == '/') text += "\\";
    }
    out += " * " + text + "\n";
  }
  return out + " */\n";
}

// `export type Name = ...;` (an object type, too: see below).
// With `output`, the type of documents a lambda returns (TypeScriptOf's `output`); with a
// `base`, `export type Name = Base & ...`.
std::string Declare(const std::string& name, const schema::Shape* shape,
                    std::vector<std::string> doc, bool output = false,
                    const std::string& base = "") {
  if (shape && shape->title) doc.push_back(*shape->title);
  if (shape && shape->description) doc.push_back(*shape->description);
  std::string type = shape ? schema::TypeScriptOf(*shape, 0, output) : "unknown";
  std::string out = DocComment(doc);
  if (!base.empty()) {
    bool object = type.size() >= 2 && type.front() == '{' && type.back() == '}';
    return out + fmt::format("export type {} = {} & {};\n\n", name, base,
                             object ? type : "(" + type + ")");
  }
  // A type alias rather than an interface even for an object: only aliases are assignable
  // to the index signatures of the output types (an update lambda returning its source).
  return out + fmt::format("export type {} = {};\n\n", name, type);
}

// One entry per nodeJS lambda of the catalog, in catalog order.
struct CatalogLambdas {
  std::vector<lambda::NodeLambdaSpec> specs;
  std::vector<const catalog::LambdaSpec*> lambdas;
};

// With `names`, each spec names its types (`flow.ShopOrders`).
CatalogLambdas Collect(const catalog::Built& built, const TypeNames* names) {
  CatalogLambdas out;
  auto flow_type = [](const std::string& name) { return "flow." + name; };
  for (const auto& bd : built.derivations) {
    const std::string& d = bd.collection->name;
    const auto& bootstrap = bd.collection->derivation->bootstrap;
    for (size_t i = 0; i < bootstrap.size(); ++i) {
      if (bootstrap[i].kind != catalog::LambdaSpec::Kind::kNodeJS) continue;
      out.specs.push_back({fmt::format("{}/bootstrap/{}", d, i), "", false, bootstrap[i].body, d,
                           static_cast<int>(i + 1)});
      out.lambdas.push_back(&bootstrap[i]);
    }
    for (const auto& bt : bd.transforms) {
      const catalog::TransformSpec& t = *bt.spec;
      for (bool publish : {false, true}) {
        const auto& l = publish ? t.publish : t.update;
        if (!l || l->kind != catalog::LambdaSpec::Kind::kNodeJS) continue;
        lambda::NodeLambdaSpec spec{
            fmt::format("{}/{}/{}", d, t.name, publish ? "publish" : "update"), t.name, publish,
            l->body, d};
        if (names) {
          std::string source = names->SourceOf(d, t);
          spec.source_type = source == "unknown" ? source : flow_type(source);
          spec.register_type = publish ? flow_type(names->register_.at(d)) : "undefined";
          spec.output_type =
              flow_type(publish ? names->output.at(d) : names->register_output.at(d));
        }
        out.specs.push_back(std::move(spec));
        out.lambdas.push_back(&*l);
      }
    }
  }
  return out;
}

}  // namespace

NodeStarter NodeStarterFor(const catalog::Catalog& catalog, int output_fd) {
  lambda::NodeOptions options = OptionsOf(catalog);
  options.output_fd = output_fd;
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
  auto [specs, lambdas] = Collect(built, nullptr);
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

std::string TypeScriptDeclarations(const catalog::Catalog& catalog, const catalog::Built& built) {
  TypeNames names(built);
  std::string out = fmt::format(
      "// Generated by flowctl from the catalog {}:\n"
      "// the TypeScript types of its collections' documents, of its derivations' registers and\n"
      "// of its nodeJS lambdas, from their schemas. Do not edit: run `flowctl generate-types`\n"
      "// again after changing a schema.\n\n",
      DisplayName(catalog.root_url));
  for (const auto& c : built.collections) {
    out += Declare(names.collection.at(c.spec->name), c.shape.get(),
                   {fmt::format("A document of collection `{}`.", c.spec->name)});
  }
  for (const auto& bd : built.derivations) {
    const std::string& d = bd.collection->name;
    const catalog::BuiltCollection* derived = built.Collection(d);
    out += Declare(names.output.at(d), derived ? derived->shape.get() : nullptr,
                   {fmt::format("A document a lambda of derivation `{}` publishes: the property "
                                "types of {}, with every property optional, undeclared ones "
                                "allowed (unless the schema forbids them) and enum values left to "
                                "validation.",
                                d, names.collection.at(d))},
                   true);
    out += Declare(
        names.register_.at(d), bd.register_shape.get(),
        {fmt::format("The register of derivation `{}`{}.", d,
                     bd.register_schema_url.empty() ? " (no register schema: anything)" : "")});
    out += Declare(names.register_output.at(d), bd.register_shape.get(),
                   {fmt::format("A register update an update lambda of derivation `{}` returns: "
                                "the property types of {}, with every property optional, "
                                "undeclared ones allowed (unless the schema forbids them) and "
                                "enum values left to validation.",
                                d, names.register_.at(d))},
                   true);
    for (const auto& bt : bd.transforms) {
      const catalog::TransformSpec& t = *bt.spec;
      if (bt.source_shape) {
        auto coll = names.collection.find(t.source);
        out += Declare(names.source.at({d, t.name}), bt.source_shape.get(),
                       {fmt::format("A source document of transform `{}` of derivation `{}`: of "
                                    "its source collection, and of its `source.schema`.",
                                    t.name, d)},
                       false, coll != names.collection.end() ? coll->second : "");
      }
      std::string source = names.SourceOf(d, t);
      const std::string& reg = names.register_.at(d);
      if (auto it = names.update.find({d, t.name}); it != names.update.end()) {
        out += DocComment({fmt::format(
            "The update lambda of transform `{}` of derivation `{}`: the register updates of a "
            "source document.",
            t.name, d)});
        out += fmt::format("export type {} = (source: {}) => {}[];\n\n", it->second, source,
                           names.register_output.at(d));
      }
      if (auto it = names.publish.find({d, t.name}); it != names.publish.end()) {
        out += DocComment({fmt::format(
            "The publish lambda of transform `{}` of derivation `{}`: the documents of `{}` "
            "published for a source document, given the register before and after its updates.",
            t.name, d, d)});
        out += fmt::format("export type {} = (source: {}, register: {}, previous: {}) => {}[];\n\n",
                           it->second, source, reg, reg, names.output.at(d));
      }
    }
  }
  while (out.size() >= 2 && out[out.size() - 1] == '\n' && out[out.size() - 2] == '\n')
    out.pop_back();
  return out;
}

Result<TypeCheckResult> TypeCheckNodeLambdas(const catalog::Catalog& catalog,
                                             const catalog::Built& built, Diagnostics* diags) {
  TypeNames names(built);
  auto [specs, lambdas] = Collect(built, &names);
  TypeCheckResult result;
  result.lambdas = specs.size();
  if (specs.empty()) return result;
  auto checked = lambda::TypeCheckNodeLambdas(specs, TypeScriptDeclarations(catalog, built),
                                              catalog.root_url, OptionsOf(catalog));
  if (!checked) return checked.error();
  result.cached = checked->cached;
  for (const auto& e : checked->errors) {
    const lambda::NodeLambdaSpec& spec = specs[e.lambda];
    const catalog::LambdaSpec& l = *lambdas[e.lambda];
    Mark at = catalog::LocateInScalar(catalog, l.where, l.body, e.offset);
    std::string label =
        spec.bootstrap
            ? fmt::format("bootstrap lambda {} of derivation `{}`", spec.bootstrap, spec.derivation)
            : fmt::format("lambda of transform `{}` of derivation `{}` ({})", spec.transform,
                          spec.derivation, spec.publish ? "publish" : "update");
    std::string hint;
    auto bare = [](const std::string& t) { return t.starts_with("flow.") ? t.substr(5) : t; };
    if (spec.bootstrap) {
      hint = "a bootstrap lambda takes no parameters";
    } else if (spec.publish) {
      hint = fmt::format(
          "`source` is a {}, `register` and `previous` are {}, and it returns {}[]; "
          "`flowctl generate-types` writes these types for your editor, and --no-type-check "
          "skips this check",
          bare(spec.source_type), bare(spec.register_type), bare(spec.output_type));
    } else {
      hint = fmt::format(
          "`source` is a {} and it returns {}[] (an update lambda is given its source "
          "document only); `flowctl generate-types` writes these types for your editor, and "
          "--no-type-check skips this check",
          bare(spec.source_type), bare(spec.output_type));
    }
    diags->Error(l.where.file, at, fmt::format("{} does not type-check: {}", label, e.message), "",
                 hint);
  }
  return result;
}

}  // namespace flow::runtime
