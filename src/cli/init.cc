// `flowctl init`: scaffolds a project in an empty directory, from sample files (CSV, TSV or
// JSON lines) or from a built-in example: a collection per sample with an inferred schema,
// a file-drop capture, an example SQLite derivation with a test built from the sample, a
// SQLite materialization, a README, .gitignore and editor settings.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "base/strings.h"
#include "catalog/source_schema.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/output.h"
#include "cli/sample.h"
#include "schema/infer.h"

namespace flow::cli {

std::string PrettyJson(const rapidjson::Value& v);  // cli/infer.cc

struct InitOptions {
  std::vector<std::string> from;
  std::vector<std::string> keys;
  std::string prefix;
  std::string format;
  std::string dir = ".";
};

namespace {

namespace fs = std::filesystem;

constexpr size_t kTestRows = 5;  // sample documents the generated test ingests

// ---- YAML output (schemas as block YAML; documents as one-line flow mappings) ----

bool IsIdentifier(std::string_view s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

std::string JsonString(std::string_view s) {
  rapidjson::Value v(rapidjson::StringRef(s.data(), s.size()));
  std::string out;
  doc::AppendJson(v, &out);
  return out;
}

// A string as a plain YAML scalar where that reads the same, else double-quoted.
std::string YamlString(std::string_view s) {
  static const char* kSpecial[] = {"true", "false", "null", "yes", "no",
                                   "on",   "off",   "y",    "n",   "~"};
  bool plain =
      !s.empty() && (std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_' || s[0] == '/');
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
          c == '/'))
      plain = false;
  }
  std::string lower;
  for (char c : s) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  for (const char* k : kSpecial) {
    if (lower == k) plain = false;
  }
  return plain ? std::string(s) : JsonString(s);
}

std::string Flow(const doc::Value& v) {
  if (v.IsString()) return YamlString(std::string_view(v.GetString(), v.GetStringLength()));
  if (v.IsArray()) {
    std::vector<std::string> items;
    for (const auto& i : v.GetArray()) items.push_back(Flow(i));
    return fmt::format("[{}]", fmt::join(items, ", "));
  }
  if (v.IsObject()) {
    std::vector<std::string> items;
    for (const auto& m : v.GetObject()) {
      items.push_back(YamlString(std::string_view(m.name.GetString(), m.name.GetStringLength())) +
                      ": " + Flow(m.value));
    }
    return fmt::format("{{{}}}", fmt::join(items, ", "));
  }
  std::string out;
  doc::AppendJson(v, &out);
  return out;
}

// Objects as block mappings; arrays and scalars in flow style.
void Block(const doc::Value& v, int indent, std::string* out) {
  std::string pad(indent, ' ');
  for (const auto& m : v.GetObject()) {
    std::string key = YamlString(std::string_view(m.name.GetString(), m.name.GetStringLength()));
    if (m.value.IsObject() && m.value.MemberCount() > 0) {
      *out += fmt::format("{}{}:\n", pad, key);
      Block(m.value, indent + 2, out);
    } else {
      *out += fmt::format("{}{}: {}\n", pad, key, Flow(m.value));
    }
  }
}

std::string Indented(std::string_view text, int indent) {
  std::string out, pad(indent, ' ');
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string_view line =
        text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    out += line.empty() ? "\n" : pad + std::string(line) + "\n";
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return out;
}

// ---- names ----

// Letters, digits, `-`, `_` and `.` (a collection name segment); others become `-`.
std::string NameSegment(std::string_view s) {
  std::string out;
  for (char c : s) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    out.push_back(ok ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : '-');
  }
  while (!out.empty() && (out.front() == '-' || out.front() == '.')) out.erase(0, 1);
  while (!out.empty() && (out.back() == '-' || out.back() == '.')) out.pop_back();
  return out;
}

std::string Stem(const std::string& path) {
  std::string name = fs::path(path).filename().string();
  for (const char* ext : {".gz", ".csv", ".tsv", ".jsonl", ".ndjson", ".json", ".txt"}) {
    if (name.size() > std::strlen(ext) && name.ends_with(ext))
      name.resize(name.size() - std::strlen(ext));
  }
  std::string s = NameSegment(name);
  return s.empty() ? "documents" : s;
}

std::string TableName(std::string_view s) {
  std::string out;
  for (char c : s) out.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "t_" + out;
  return out;
}

const char* FormatName(runtime::IngestFormat f) {
  return f == runtime::IngestFormat::kCsv   ? "csv"
         : f == runtime::IngestFormat::kTsv ? "tsv"
                                            : "json";
}

// ---- one sample file ----

struct Sample {
  std::string path;      // as given
  std::string relative;  // from the project directory, for the README
  runtime::IngestFormat format = runtime::IngestFormat::kJson;
  std::string stem, collection;
  rapidjson::Document schema;
  schema::KeySuggestion key;
  uint64_t documents = 0;
  std::vector<std::unique_ptr<rapidjson::Document>> first;  // the first kTestRows documents
};

// A top-level property of an inferred schema, as the derivation sees it.
struct Property {
  std::string name;
  std::vector<std::string> types;  // without "null"
  bool nullable = false, required = false, enumerated = false;
  std::string format;
};

std::vector<Property> PropertiesOf(const rapidjson::Document& schema) {
  std::vector<Property> out;
  if (!schema.HasMember("properties")) return out;
  std::vector<std::string> required;
  if (schema.HasMember("required")) {
    for (const auto& r : schema["required"].GetArray()) required.emplace_back(r.GetString());
  }
  for (const auto& m : schema["properties"].GetObject()) {
    Property p;
    p.name = m.name.GetString();
    p.required = std::find(required.begin(), required.end(), p.name) != required.end();
    auto add = [&](std::string t) {
      if (t == "null")
        p.nullable = true;
      else
        p.types.push_back(std::move(t));
    };
    if (m.value.HasMember("type")) {
      const auto& t = m.value["type"];
      if (t.IsString())
        add(t.GetString());
      else
        for (const auto& i : t.GetArray()) add(i.GetString());
    }
    p.enumerated = m.value.HasMember("enum");
    if (m.value.HasMember("format")) p.format = m.value["format"].GetString();
    out.push_back(std::move(p));
  }
  return out;
}

// The example derivation: documents counted (and a numeric property summed) per value of a
// small set of strings, per day, or overall.
struct Derivation {
  std::string collection, transform, table;
  std::string group_out, group_expr, group_source;  // group_source empty: a constant
  bool by_day = false;
  std::string sum_source, sum_out, sum_type;  // sum_source empty: counts only
  bool sum_coalesce = false;
  std::string description;
};

Derivation PlanDerivation(const Sample& s, const std::string& prefix) {
  Derivation d;
  auto props = PropertiesOf(s.schema);
  auto is_key = [&](const std::string& name) {
    return std::find(s.key.pointers.begin(), s.key.pointers.end(), "/" + name) !=
           s.key.pointers.end();
  };
  auto plain_string = [](const Property& p) {
    return p.required && !p.nullable && p.types == std::vector<std::string>{"string"} &&
           IsIdentifier(p.name);
  };
  for (const auto& p : props) {
    if (plain_string(p) && p.enumerated && !is_key(p.name)) {
      d.group_out = d.group_source = p.name;
      d.group_expr = "$" + p.name;
      d.description = fmt::format("per `{}`", p.name);
      break;
    }
  }
  if (d.group_source.empty()) {
    for (const auto& p : props) {
      if (plain_string(p) && (p.format == "date-time" || p.format == "date")) {
        d.group_out = "day";
        d.group_source = p.name;
        d.by_day = true;
        d.group_expr = fmt::format("substr(${}, 1, 10)", p.name);
        d.description = fmt::format("per day of `{}`", p.name);
        break;
      }
    }
  }
  if (d.group_source.empty()) {
    d.group_out = "scope";
    d.group_expr = "'all'";
    d.description = "over all documents";
  }
  for (const auto& p : props) {
    bool numeric = p.types == std::vector<std::string>{"integer"} ||
                   p.types == std::vector<std::string>{"number"};
    if (numeric && IsIdentifier(p.name) && !is_key(p.name) && p.name != d.group_out) {
      d.sum_source = p.name;
      d.sum_out = "total_" + p.name;
      d.sum_type = p.types[0];
      d.sum_coalesce = p.nullable || !p.required;
      break;
    }
  }
  std::string suffix = d.by_day                 ? "by-day"
                       : d.group_source.empty() ? "totals"
                                                : "by-" + NameSegment(d.group_out);
  d.collection = fmt::format("{}/{}-{}", prefix, s.stem, suffix);
  d.table = TableName(s.stem + "_" + suffix);
  d.transform =
      "from" +
      std::string(1, static_cast<char>(std::toupper(static_cast<unsigned char>(s.stem[0])))) +
      TableName(s.stem.substr(1));
  return d;
}

// The derived documents of the sample's first rows, as the derivation computes them:
// counted and summed per group, in key order. Sums add in document order, as reductions do.
std::string ExpectedDocuments(const Sample& s, const Derivation& d) {
  struct Agg {
    uint64_t count = 0;
    bool is_int = true;
    int64_t i = 0;
    double f = 0;
  };
  std::map<std::string, Agg> groups;
  for (const auto& doc : s.first) {
    std::string group = "all";
    if (!d.group_source.empty()) {
      const auto& v = (*doc)[d.group_source.c_str()];
      group = v.GetString();
      if (d.by_day) group = group.substr(0, 10);
    }
    Agg& a = groups[group];
    ++a.count;
    if (d.sum_source.empty()) continue;
    auto it = doc->FindMember(d.sum_source.c_str());
    if (it == doc->MemberEnd() || it->value.IsNull()) continue;  // COALESCE(x, 0)
    const auto& v = it->value;
    if (a.is_int && doc::IsInteger(v) && v.IsInt64()) {
      a.i += v.GetInt64();
    } else {
      if (a.is_int) a.f = static_cast<double>(a.i);
      a.is_int = false;
      a.f += v.GetDouble();
    }
  }
  std::string out;
  for (const auto& [group, a] : groups) {
    rapidjson::Document e(rapidjson::kObjectType);
    auto& al = e.GetAllocator();
    e.AddMember(rapidjson::Value(d.group_out.c_str(), al), rapidjson::Value(group.c_str(), al), al);
    e.AddMember("count", a.count, al);
    if (!d.sum_source.empty()) {
      rapidjson::Value total;
      if (a.is_int)
        total.SetInt64(a.i);
      else
        total.SetDouble(a.f);
      e.AddMember(rapidjson::Value(d.sum_out.c_str(), al), total, al);
    }
    out += fmt::format("          - {}\n", Flow(e));
  }
  return out;
}

// ---- the built-in example ----

std::string ExampleOrders() {
  static const char* kStatus[] = {"placed", "paid", "shipped", "delivered"};
  static const char* kCustomers[] = {"ada@example.com", "grace@example.org", "alan@example.net",
                                     "edsger@example.com", "barbara@example.org"};
  std::string out;
  for (int i = 1; i <= 24; ++i) {
    int cents = 1250 + (i * 379) % 9000;
    std::string coupon = i % 3 == 0 ? "\"SPRING10\"" : "null";
    out += fmt::format(
        "{{\"order_id\": {}, \"customer\": \"{}\", \"status\": \"{}\", \"amount\": {}.{:02d}, "
        "\"items\": {}, "
        "\"coupon\": {}, \"created_at\": \"2024-05-{:02d}T{:02d}:{:02d}:00Z\"}}\n",
        1000 + i, kCustomers[i % 5], kStatus[(i * 7) % 4], cents / 100, cents % 100, 1 + i % 4,
        coupon, 1 + i / 8, 8 + i % 10, (i * 13) % 60);
  }
  return out;
}

// ---- the project files ----

std::string FlowYaml(const std::vector<Sample>& samples, const Derivation& d,
                     const std::string& prefix, const std::string& command) {
  const Sample& s0 = samples[0];
  std::string y;
  y += "# yaml-language-server: $schema=flow.schema.json\n";
  y += fmt::format("#\n# A flowctl catalog, scaffolded by `{}`.\n", command);
  y += "# `flowctl build` checks it, `flowctl test` runs its tests, `flowctl develop` runs it.\n\n";
  y += "collections:\n";
  for (const auto& s : samples) {
    y += fmt::format(
        "  # Inferred from {} ({} document{}): `flowctl infer-schema FILE --collection {}`\n",
        s.relative, s.documents, s.documents == 1 ? "" : "s", s.collection);
    y += "  # says what its schema needs to accept new data.\n";
    y += fmt::format("  - name: {}\n", s.collection);
    y += fmt::format("    schema: {}.schema.yaml\n", s.stem);
    y += fmt::format("    # {}\n", s.key.explanation);
    std::vector<std::string> key;
    for (const auto& k : s.key.pointers) key.push_back(YamlString(k));
    y += fmt::format("    key: [{}]\n\n", fmt::join(key, ", "));
  }
  y += fmt::format("  # An example derivation: {} {}, kept up to date as {} arrives.\n",
                   d.sum_source.empty()
                       ? "documents counted"
                       : fmt::format("documents counted and `{}` summed", d.sum_source),
                   d.description, s0.collection);
  y += fmt::format("  - name: {}\n", d.collection);
  y += "    schema:\n";
  y += "      type: object\n";
  y += "      # Documents of the same key are reduced into one: counts and totals add up.\n";
  y += "      reduce: {strategy: merge}\n";
  y += "      properties:\n";
  y += fmt::format("        {}: {{type: string}}\n", d.group_out);
  y += "        count: {type: integer, reduce: {strategy: sum}}\n";
  if (!d.sum_source.empty())
    y +=
        fmt::format("        {}: {{type: {}, reduce: {{strategy: sum}}}}\n", d.sum_out, d.sum_type);
  y += fmt::format("      required: [{}, count]\n", d.group_out);
  y += fmt::format("    key: [/{}]\n", d.group_out);
  y += "    derivation:\n";
  y += "      transform:\n";
  y += fmt::format("        {}:\n", d.transform);
  y += fmt::format("          source: {{name: {}}}\n", s0.collection);
  y += "          # A SQLite lambda: each field of the source document is a $parameter, and the\n";
  y += "          # result columns are the properties of the derived document.\n";
  y += "          publish:\n";
  y += "            sqlite: |\n";
  std::string select =
      fmt::format("SELECT {} AS {},\n       1 AS count", d.group_expr, d.group_out);
  if (!d.sum_source.empty()) {
    select += fmt::format(
        ",\n       {} AS {}",
        d.sum_coalesce ? fmt::format("COALESCE(${}, 0)", d.sum_source) : "$" + d.sum_source,
        d.sum_out);
  }
  y += Indented(select, 14);
  y += "\n";

  y += "captures:\n";
  y += "  # Files dropped into these directories are ingested, each as one transaction, then\n";
  y += "  # moved to .done/ (or to .failed/, with an .error file saying why).\n";
  for (const auto& s : samples) {
    y += fmt::format("  {}-drop:\n", s.collection);
    y += fmt::format("    endpoint: {{fileDrop: {{path: incoming/{}, format: {}}}}}\n", s.stem,
                     FormatName(s.format));
    y += fmt::format("    bindings: [{{target: {}}}]\n", s.collection);
  }
  y += "\n";

  y += "materializationTargets:\n";
  y += "  localDB:\n";
  y += fmt::format("    sqlite: {{path: out/{}.db}}\n\n", prefix);
  y += "materializations:\n";
  y += "  # Tables kept up to date with the collections (created on first run).\n";
  y += fmt::format("  {}/local:\n", prefix);
  y += "    target: localDB\n";
  y += "    bindings:\n";
  for (const auto& s : samples) {
    y += fmt::format("      - {{source: {}, table: {}}}\n", s.collection, TableName(s.stem));
  }
  y += fmt::format("      - {{source: {}, table: {}}}\n\n", d.collection, d.table);

  y += "tests:\n";
  y += fmt::format("  {}:\n", JsonString(fmt::format("{} from the first rows of {}", d.collection,
                                                     s0.relative)));
  y += "    - ingest:\n";
  y += fmt::format("        collection: {}\n", s0.collection);
  y += "        documents:\n";
  for (const auto& doc : s0.first) y += fmt::format("          - {}\n", Flow(*doc));
  y += "    - verify:\n";
  if (d.sum_type == "number") {
    y += "        # Totals are sums of floating-point numbers, exactly as the reduction adds "
         "them.\n";
  }
  y += fmt::format("        collection: {}\n", d.collection);
  y += "        documents:\n";
  y += ExpectedDocuments(s0, d);
  return y;
}

std::string Readme(const std::vector<Sample>& samples, const Derivation& d,
                   const std::string& prefix, const std::string& command) {
  const Sample& s0 = samples[0];
  std::string r =
      fmt::format("# {}\n\nA flowctl project, scaffolded by `{}`.\n\n", prefix, command);
  r += "| file | what it holds |\n|---|---|\n";
  r += "| `flow.yaml` | the catalog: collections, a capture, a derivation, a materialization and a "
       "test |\n";
  for (const auto& s : samples) {
    r += fmt::format("| `{}.schema.yaml` | the schema of `{}`, inferred from `{}` |\n", s.stem,
                     s.collection, s.relative);
  }
  r += "| `flow.schema.json` | the JSON Schema of catalog files, for editors (`flowctl json-schema "
       "> flow.schema.json`) |\n";
  r += "| `.vscode/settings.json` | maps `flow.yaml` and `*.flow.yaml` to `flow.schema.json` |\n\n";
  r += "## What to run next\n\n```sh\n";
  r += "flowctl build                 # check the catalog (writes catalog.db)\n";
  r += "flowctl test                  # run the test in flow.yaml\n";
  r += fmt::format("cp {} incoming/{}/   # drop a file into the capture's directory\n", s0.relative,
                   s0.stem);
  r += "flowctl run --until-idle      # ingest it, derive, materialize, then exit\n";
  r += fmt::format("sqlite3 out/{}.db 'SELECT * FROM {}'\n", prefix, d.table);
  r += "flowctl develop               # or run it all continuously, with live reload and an "
       "ingestion API\n";
  r += "```\n\n";
  r += fmt::format(
      "`flowctl infer-schema NEW-FILE --collection {}` tells whether new data fits the schema,\n"
      "and what to change if it does not.\n",
      s0.collection);
  return r;
}

constexpr char kGitignore[] =
    "# flowctl's data directory, built catalog and outputs\n"
    "flowctl-data/\ncatalog.db\nout/\n"
    "# files dropped into capture directories\nincoming/\n"
    "node_modules/\n";

constexpr char kVscodeSettings[] =
    "{\n"
    "  \"yaml.schemas\": {\n"
    "    \"./flow.schema.json\": [\"flow.yaml\", \"*.flow.yaml\"]\n"
    "  }\n"
    "}\n";

// The entries of `dir` other than the sample files; empty when it does not exist.
std::vector<std::string> Occupants(const fs::path& dir, const std::vector<std::string>& samples) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    bool sample = false;
    for (const auto& s : samples) {
      std::error_code ec2;
      if (fs::equivalent(e.path(), s, ec2)) sample = true;
    }
    if (!sample) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<bool> WriteText(const fs::path& path, const std::string& text) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream f(path, std::ios::binary);
  f << text;
  f.close();
  if (!f)
    return Error::Env(fmt::format("cannot write {}: {}", path.string(), std::strerror(errno)));
  return true;
}

}  // namespace

int RunInit(const GlobalOptions&, const InitOptions& o) {
  fs::path dir = o.dir;
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    PrintError(fmt::format(
        "{} is not a directory: give a new or empty directory to create the project in", o.dir));
    return kExitUsage;
  }
  if (auto others = Occupants(dir, o.from); !others.empty()) {
    size_t shown = std::min<size_t>(others.size(), 10);
    PrintError(fmt::format(
        "{} is not empty: it holds {}{}; flowctl init writes only into a new or empty directory "
        "(the --from files may be in it): choose another directory, e.g. `flowctl init --from "
        "FILE my-project`",
        o.dir, fmt::join(others.begin(), others.begin() + static_cast<long>(shown), ", "),
        others.size() > shown ? fmt::format(" and {} more", others.size() - shown) : ""));
    return kExitUserError;
  }
  fs::path abs = fs::absolute(dir, ec).lexically_normal();
  std::string base =
      abs.filename().empty() ? abs.parent_path().filename().string() : abs.filename().string();
  std::string prefix = o.prefix.empty() ? NameSegment(base) : o.prefix;
  if (prefix.empty()) prefix = "acme";
  if (prefix != NameSegment(prefix) || prefix.find('/') != std::string::npos) {
    PrintError(fmt::format(
        "--prefix `{}` is not a collection name segment: use lowercase letters, digits, `-`, `_` "
        "and `.`, e.g. --prefix acme",
        prefix));
    return kExitUsage;
  }

  std::vector<std::string> from = o.from;
  std::string command = "flowctl init";
  for (const auto& f : o.from) command += " --from " + fs::path(f).filename().string();
  if (from.empty()) {
    fs::create_directories(dir, ec);
    auto wrote = WriteText(dir / "orders.jsonl", ExampleOrders());
    if (!wrote) return PrintFailure(wrote.error());
    from = {(dir / "orders.jsonl").string()};
  }
  if (!o.keys.empty() && from.size() > 1) {
    PrintError(
        "--key applies to one sample: give one --from with --key, then edit the other keys in "
        "flow.yaml");
    return kExitUsage;
  }

  std::vector<Sample> samples;
  for (const auto& path : from) {
    Sample s;
    s.path = path;
    fs::path rel = fs::absolute(path, ec).lexically_normal().lexically_relative(abs);
    s.relative = !rel.empty() ? rel.string() : fs::absolute(path, ec).string();
    auto format = SampleFormat(path, o.format);
    if (!format) {
      PrintError(fmt::format("--format `{}` is not one of json, csv, tsv", o.format));
      return kExitUsage;
    }
    s.format = *format;
    s.stem = Stem(path);
    s.collection = prefix + "/" + s.stem;
    for (const auto& other : samples) {
      if (other.stem == s.stem) {
        PrintError(fmt::format("{} and {} would both be the collection `{}`: rename one",
                               other.path, path, s.collection));
        return kExitUsage;
      }
    }
    schema::SchemaInferrer inferrer;
    std::string where;
    auto read = ReadSample(
        path, s.format, {},
        [&](const doc::Value& d) {
          inferrer.Add(d);
          if (s.first.size() < kTestRows) {
            auto copy = std::make_unique<rapidjson::Document>();
            copy->CopyFrom(d, copy->GetAllocator());
            s.first.push_back(std::move(copy));
          }
        },
        &where);
    if (!read) return PrintErrorAtPlace(where, read.error());
    s.documents = inferrer.documents();
    if (s.documents == 0) {
      PrintError(
          fmt::format("{} holds no documents: init infers the schema from sample rows, so give a "
                      "file with some",
                      path));
      return kExitUserError;
    }
    inferrer.WriteSchema(&s.schema);
    s.key = inferrer.SuggestKey();
    if (!o.keys.empty()) {
      auto props = PropertiesOf(s.schema);
      for (const auto& k : o.keys) {
        std::string why;
        auto ptr = doc::Pointer::Parse(k, &why);
        if (!ptr || ptr->tokens().size() != 1) {
          PrintError(fmt::format(
              "--key `{}` is not a JSON pointer to a top-level property, e.g. --key /order_id", k));
          return kExitUsage;
        }
        auto p = std::find_if(props.begin(), props.end(),
                              [&](const Property& p) { return p.name == ptr->tokens()[0]; });
        std::vector<std::string> names;
        for (const auto& q : props) names.push_back(q.name);
        if (p == props.end()) {
          std::string hint = DidYouMean(ptr->tokens()[0], names);
          PrintError(fmt::format("--key `{}`: {} has no property `{}`{}{}", k, path,
                                 ptr->tokens()[0], hint.empty() ? "" : "; ", hint));
          return kExitUsage;
        }
        if (!p->required || p->nullable) {
          PrintError(fmt::format(
              "--key `{}`: `{}` is {} in some documents of {}, and a key must be present in every "
              "one",
              k, p->name, p->required ? "null" : "absent", path));
          return kExitUserError;
        }
      }
      s.key.pointers = o.keys;
      s.key.explanation = fmt::format("`{}`: chosen with --key", fmt::join(o.keys, "`, `"));
    }
    if (s.key.pointers.empty()) {
      PrintError(fmt::format("{}: no key can be suggested: {}; choose one with --key /PROPERTY",
                             path, s.key.explanation));
      return kExitUserError;
    }
    samples.push_back(std::move(s));
  }

  Derivation d = PlanDerivation(samples[0], prefix);
  std::vector<std::pair<std::string, std::string>> files;
  files.emplace_back("flow.yaml", FlowYaml(samples, d, prefix, command));
  for (const auto& s : samples) {
    std::string y =
        fmt::format("# The schema of {}, inferred from {} ({} documents) by flowctl init.\n",
                    s.collection, s.relative, s.documents);
    Block(s.schema, 0, &y);
    files.emplace_back(s.stem + ".schema.yaml", y);
  }
  files.emplace_back("flow.schema.json", catalog::CatalogSourceSchema());
  files.emplace_back(".vscode/settings.json", kVscodeSettings);
  files.emplace_back(".gitignore", kGitignore);
  files.emplace_back("README.md", Readme(samples, d, prefix, command));
  for (const auto& s : samples) files.emplace_back(fmt::format("incoming/{}/.gitkeep", s.stem), "");
  for (const auto& [name, text] : files) {
    auto wrote = WriteText(dir / name, text);
    if (!wrote) return PrintFailure(wrote.error());
  }

  for (const auto& s : samples) {
    PrintNote(fmt::format("{}: {} document{} of {}; key [{}]: {}", s.collection, s.documents,
                          s.documents == 1 ? "" : "s", s.relative, fmt::join(s.key.pointers, ", "),
                          s.key.explanation),
              {{"collection", s.collection}, {"documents", s.documents}});
  }
  PrintNote(fmt::format(
      "{}: documents {} {}", d.collection,
      d.sum_source.empty() ? "counted" : fmt::format("counted and `{}` summed", d.sum_source),
      d.description));
  std::string cd = o.dir == "." ? "" : fmt::format("cd {} && ", o.dir);
  PrintNote(
      fmt::format("wrote flow.yaml, {}.schema.yaml, README.md, .gitignore, flow.schema.json and "
                  ".vscode/settings.json into {}; next: {}flowctl test",
                  samples[0].stem, o.dir, cd));
  return kExitOk;
}

Command RegisterInit(CLI::App& app) {
  auto o = std::make_shared<InitOptions>();
  auto* cmd = app.add_subcommand("init",
                                 "Scaffold a project in an empty directory, from sample CSV, TSV "
                                 "or JSON lines, or a built-in example");
  cmd->add_option("DIR", o->dir,
                  "Directory to create the project in (new, or empty but for the --from files)")
      ->capture_default_str();
  cmd->add_option("--from", o->from,
                  "Sample file (CSV, TSV or JSON lines, by extension; repeatable): one collection "
                  "each, with a schema inferred from it")
      ->allow_extra_args(false);
  cmd->add_option("--key", o->keys,
                  "Key of the collection (a JSON pointer such as /order_id; repeat for a compound "
                  "key), instead of the suggested one")
      ->allow_extra_args(false);
  cmd->add_option("--prefix", o->prefix,
                  "First segment of the collection names (default: the directory's name)");
  cmd->add_option("--format", o->format,
                  "json, csv or tsv for every --from file; default: from the extension");
  cmd->footer(
      "Writes flow.yaml (the collections, a file-drop capture per sample, an example SQLite "
      "derivation, a test "
      "built from the first sample rows, and a SQLite materialization into out/PREFIX.db), a "
      "schema file per "
      "sample, README.md, .gitignore, flow.schema.json and .vscode/settings.json (editor "
      "completion through "
      "`flowctl json-schema`). The key is suggested from the sample, with the reason; --key "
      "overrides it. Without "
      "--from, a small example (orders.jsonl) is written and used.\n"
      "Examples:\n"
      "  flowctl init --from orders.csv                 # in the directory holding orders.csv\n"
      "  flowctl init --from data/orders.jsonl --key /id shop\n"
      "  flowctl init demo                              # the built-in example\n"
      "Exit status: 0 written, 1 the directory is not empty or a sample cannot be read, 2 usage "
      "error.");
  return {cmd, [o](const GlobalOptions& g) { return RunInit(g, *o); }};
}

}  // namespace flow::cli
