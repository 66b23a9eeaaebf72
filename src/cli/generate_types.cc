// `flowctl generate-types`: write the TypeScript declarations of a catalog (its collections,
// registers and lambda signatures; runtime::TypeScriptDeclarations) for editors.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "base/files.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/output.h"
#include "runtime/node_lambdas.h"

namespace flow::cli {

struct GenerateTypesOptions {
  CatalogOptions catalog;
  std::string output = "flow_generated";  // the directory of flow.d.ts; "-": stdout
};

int RunGenerateTypes(const GlobalOptions& g, const GenerateTypesOptions& o) {
  std::string path = o.output == "-" ? "" : o.output + "/flow.d.ts";
  int code = 0;
  auto checked = LoadAndCheck(
      g, o.catalog,
      path.empty() ? "; nothing was written" : fmt::format("; {} was not written", path), &code);
  if (!checked) return code;
  std::string text =
      runtime::TypeScriptDeclarations(checked->loaded->catalog, checked->built) + "\n";
  if (path.empty()) {
    fmt::print("{}", text);
    std::fflush(stdout);
    return kExitOk;
  }
  std::error_code ec;
  std::filesystem::create_directories(o.output, ec);
  if (ec) {
    PrintError(fmt::format("cannot create {}: {}", o.output, ec.message()));
    return kExitEnvironment;
  }
  if (auto written = WriteFileAtomic(path, text); !written) return PrintFailure(written.error());
  size_t types = 0;
  for (size_t at = text.find("\nexport "); at != std::string::npos;
       at = text.find("\nexport ", at + 1))
    ++types;
  PrintNote(
      fmt::format("wrote {} ({} types); import them with `import type {{ ... }} from \"./{}\"`",
                  path, types, (std::filesystem::path(o.output) / "flow").generic_string()),
      {{"path", path}, {"types", uint64_t{types}}});
  return kExitOk;
}

Command RegisterGenerateTypes(CLI::App& app) {
  auto o = std::make_shared<GenerateTypesOptions>();
  auto* cmd = app.add_subcommand(
      "generate-types",
      "Write the TypeScript types of the catalog's collections, registers and lambdas (flow.d.ts), "
      "for editors");
  AddCatalogOptions(*cmd, o->catalog);
  cmd->add_option("--output", o->output,
                  "Directory to write flow.d.ts into (created if missing); - for stdout")
      ->capture_default_str();
  cmd->footer(
      "flow.d.ts declares a type per collection (shop/orders: ShopOrders), per derivation's "
      "register (ShopByStatusRegister) and per transform's source.schema, and the type of each "
      "TypeScript lambda (ShopByStatusFromOrdersPublish), from their JSON schemas: the types "
      "`flowctl build` type-checks lambdas against. Write it again after changing a schema.\n"
      "Exit status: 0 written, 1 the catalog has errors, 2 usage error, 3 the file could not be "
      "written.");
  return {cmd, [o](const GlobalOptions& g) { return RunGenerateTypes(g, *o); }};
}

}  // namespace flow::cli
