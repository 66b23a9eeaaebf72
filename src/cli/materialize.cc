// `flowctl materialize`: print the DDL of a one-off materialization of a collection into a
// target's table, and (unless --dry-run) run it until caught up (SPEC section 8).
#include "cli/commands.h"

#include <unistd.h>

#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "base/strings.h"
#include "cli/common.h"
#include "cli/output.h"
#include "develop/develop.h"
#include "runtime/one_off.h"

namespace flow::cli {

struct MaterializeOptions {
  CatalogOptions catalog;
  std::string data_dir = kDefaultDataDir;
  std::string target;
  std::string collection;
  std::string table;
  std::vector<std::string> fields;
  bool all_fields = false;
  bool dry_run = false;
  bool yes = false;
  bool backfill = false;  // drop and re-create the table
};


int RunMaterialize(const GlobalOptions& g, const MaterializeOptions& o) {
  if (o.all_fields && !o.fields.empty()) {
    PrintError("--field and --all-fields cannot be combined");
    return kExitUsage;
  }
  int code = 0;
  auto checked = LoadAndCheck(g, o.catalog, "; nothing was materialized", &code);
  if (!checked) return code;
  runtime::OneOffRequest request{o.target, o.collection, o.table, o.fields, o.all_fields};
  auto made = runtime::OneOffMaterialization(checked->loaded->catalog, checked->built, request);
  if (!made) return PrintFailure(made.error());
  auto m = made.value();
  fmt::print("{}\n", runtime::CreateTableSqlOf(*m));
  std::fflush(stdout);
  if (o.dry_run) return kExitOk;
  if (!Confirm(fmt::format("Materialize `{}` into table `{}` of target `{}`?", o.collection, o.table, o.target), o.yes,
               "pass --yes to create the table and materialize into it (or --dry-run to only print the DDL)",
               "nothing was materialized")) {
    return ::isatty(STDIN_FILENO) ? kExitOk : kExitUsage;
  }
  // A develop running over the data directory runs it, continuously.
  if (std::string url = develop::RunningDevelopUrl(o.data_dir); !url.empty()) {
    auto started = develop::MaterializeThrough(url, request);
    if (!started) return PrintFailure(started.error());
    PrintNote(fmt::format("materialization `{}` runs in the develop at {}", m->name, url));
    return kExitOk;
  }
  auto data = OpenDataDir(o.data_dir, &code);
  if (!data) return code;
  auto done = runtime::MaterializeUntilCaughtUp(data->store.get(), m, o.backfill);
  if (!done) return PrintFailure(done.error());
  PrintNote(fmt::format("materialized `{}` into table `{}` of target `{}`: {} documents read, {} rows stored",
                        o.collection, o.table, o.target, done->in, done->out),
            {{"collection", o.collection}, {"table", o.table}, {"target", o.target}});
  return kExitOk;
}

Command RegisterMaterialize(CLI::App& app) {
  auto o = std::make_shared<MaterializeOptions>();
  auto* cmd = app.add_subcommand(
      "materialize",
      "Print the DDL of a one-off materialization of a collection, and run it until caught up");
  AddCatalogOptions(*cmd, o->catalog);
  AddDataDirOption(*cmd, o->data_dir);
  cmd->add_option("--target", o->target, "Materialization target of the catalog")->required();
  cmd->add_option("--collection", o->collection, "Collection to materialize")->required();
  cmd->add_option("--table-name", o->table,
                  "Table to create (or reuse, when it has the same shape)")
      ->required();
  cmd->add_option("--field", o->fields,
                  "A field to store (repeatable; the key and flow_document always are)");
  cmd->add_flag("--all-fields", o->all_fields,
                "Store every projection, not only single-typed scalars");
  cmd->add_flag("--dry-run", o->dry_run, "Only print the DDL");
  cmd->add_flag("--yes", o->yes, "Do not ask for confirmation");
  cmd->add_flag("--backfill", o->backfill, "Drop and re-create the table, then fill it from the start (a back-fill)");
  cmd->footer(
      "Prints the CREATE TABLE statement to stdout. Without --dry-run, creates the table and "
      "flow_checkpoints if missing (a table of another shape is refused, never dropped) and "
      "materializes everything committed, exactly once, as materialization "
      "`materialize/<target>/<table>`; running it again continues from its checkpoint.");
  return {cmd, [o](const GlobalOptions& g) { return RunMaterialize(g, *o); }};
}

}  // namespace flow::cli
