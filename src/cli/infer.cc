// `flowctl infer-schema`: a JSON schema for sample documents, or the widening a collection's
// schema needs to accept them.
#include "schema/infer.h"

#include <fmt/format.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <CLI/CLI.hpp>
#include <memory>

#include "base/strings.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/output.h"
#include "cli/sample.h"

namespace flow::cli {

struct InferSchemaOptions {
  std::vector<std::string> files;
  std::string format;
  std::string collection;
  CatalogOptions catalog;
};

std::string PrettyJson(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.SetIndent(' ', 2);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

// Reads every file into `inferrer`; on failure prints the error and returns its exit code.
int InferFromFiles(const std::vector<std::string>& files, const std::string& format,
                   const std::vector<runtime::CsvField>& fields, schema::SchemaInferrer* inferrer) {
  for (const auto& file : files) {
    auto f = SampleFormat(file, format);
    if (!f) {
      PrintError(fmt::format("--format `{}` is not one of json, csv, tsv", format));
      return kExitUsage;
    }
    std::string where;
    auto read = ReadSample(
        file, *f, fields, [&](const doc::Value& d) { inferrer->Add(d); }, &where);
    if (!read) return PrintErrorAtPlace(where, read.error());
  }
  return kExitOk;
}

int RunInferSchema(const GlobalOptions& g, const InferSchemaOptions& o) {
  schema::SchemaInferrer inferrer;
  std::string files = fmt::format("{}", fmt::join(o.files, ", "));
  if (o.collection.empty()) {
    if (int code = InferFromFiles(o.files, o.format, {}, &inferrer)) return code;
    rapidjson::Document schema;
    inferrer.WriteSchema(&schema);
    fmt::print("{}\n", PrettyJson(schema));
    auto key = inferrer.SuggestKey();
    PrintNote(
        fmt::format("inferred from {} document{} of {}; suggested key: {}", inferrer.documents(),
                    inferrer.documents() == 1 ? "" : "s", files,
                    key.pointers.empty() ? "none (" + key.explanation + ")" : key.explanation),
        {{"documents", inferrer.documents()}});
    return kExitOk;
  }
  int code = 0;
  auto checked = LoadAndCheck(g, o.catalog, "", &code);
  if (!checked) return code;
  const catalog::BuiltCollection* c = checked->built.Collection(o.collection);
  if (!c) {
    std::vector<std::string> names;
    for (const auto& bc : checked->built.collections) names.push_back(bc.spec->name);
    std::string hint = DidYouMean(o.collection, names);
    PrintError(fmt::format("--collection `{}` is not a collection of {}{}{}", o.collection,
                           o.catalog.source, hint.empty() ? "" : "; ", hint));
    return kExitUserError;
  }
  // CSV headers name the collection's projections, as in `flowctl ingest`.
  std::vector<runtime::CsvField> fields;
  for (const auto& p : c->projections) {
    std::string why;
    auto ptr = doc::Pointer::Parse(p.location, &why);
    if (ptr) fields.push_back({p.field, *ptr, 127});
  }
  if (int code = InferFromFiles(o.files, o.format, fields, &inferrer)) return code;
  auto widenings = inferrer.Widenings(*c->shape);
  for (const auto& w : widenings) fmt::print("{}\n", w);
  std::fflush(stdout);
  if (widenings.empty()) {
    PrintNote(
        fmt::format(
            "the schema of `{}` accepts the types of the {} document{} of {}: no widening needed",
            o.collection, inferrer.documents(), inferrer.documents() == 1 ? "" : "s", files),
        {{"collection", o.collection}, {"documents", inferrer.documents()}});
    return kExitOk;
  }
  PrintError(
      fmt::format(
          "the schema of `{}` needs {} widening{} (above) to accept the {} document{} of {}",
          o.collection, widenings.size(), widenings.size() == 1 ? "" : "s", inferrer.documents(),
          inferrer.documents() == 1 ? "" : "s", files),
      {{"collection", o.collection}, {"widenings", static_cast<uint64_t>(widenings.size())}});
  return kExitUserError;
}

Command RegisterInferSchema(CLI::App& app) {
  auto o = std::make_shared<InferSchemaOptions>();
  auto* cmd = app.add_subcommand(
      "infer-schema",
      "Print a JSON schema for sample documents (CSV, TSV or JSON lines), or the widening a "
      "collection's schema needs to accept them");
  cmd->add_option("FILE", o->files, "Sample files (- for stdin)")->required();
  cmd->add_option("--format", o->format,
                  "json (JSON lines), csv or tsv; default: from each file's extension, else json");
  cmd->add_option(
      "--collection", o->collection,
      "Compare with this collection's schema and print the changes it needs, one per line");
  AddCatalogOptions(*cmd, o->catalog);
  cmd->footer(
      "Prints the schema (types, properties present in every document as `required`, formats "
      "date-time, date, "
      "uuid and email, and an `enum` for a string property with at most 8 distinct values over at "
      "least 20 "
      "documents) to stdout, and a suggested key to stderr. CSV and TSV cells are read as `flowctl "
      "ingest` reads "
      "them: empty is null, then integer, number, boolean, else string.\n"
      "With --collection, prints what the collection's schema needs to accept the documents, e.g. "
      "\"/properties/amount/type: integer → number\" (types, forbidden properties and `required`; "
      "not `enum`, "
      "bounds or patterns). CSV headers then name the collection's projections.\n"
      "Examples:\n"
      "  flowctl infer-schema orders.csv > orders.schema.json\n"
      "  flowctl infer-schema new-orders.jsonl --collection acme/orders\n"
      "Exit status: 0 schema printed, or no widening needed; 1 widening needed, or unreadable "
      "input or catalog; "
      "2 usage error.");
  return {cmd, [o](const GlobalOptions& g) { return RunInferSchema(g, *o); }};
}

}  // namespace flow::cli
