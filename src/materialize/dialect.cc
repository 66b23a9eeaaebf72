#include "materialize/dialect.h"

#include <algorithm>
#include <cctype>
#include <map>

#include <fmt/format.h>

#include "schema/shape.h"

namespace flow::materialize {
namespace {

using schema::kBoolean;
using schema::kInteger;
using schema::kNull;
using schema::kNumber;
using schema::kString;

std::string Upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string CanonicalType(Dialect dialect, std::string type) {
  type = Upper(type);
  if (dialect == Dialect::kPostgres) {
    if (type == "BIGINT" || type == "INT8") return "BIGINT";
    if (type == "DOUBLE PRECISION" || type == "FLOAT8") return "DOUBLE PRECISION";
    if (type == "BOOLEAN" || type == "BOOL") return "BOOLEAN";
    if (type.rfind("CHARACTER VARYING", 0) == 0) return "VARCHAR" + type.substr(17);
  }
  return type;
}

bool Column::NotNull() const { return key || document || (must_exist && !(types & kNull)); }

std::vector<const Column*> Table::KeyColumns() const {
  std::vector<const Column*> out;
  for (const auto& c : columns) {
    if (c.key) out.push_back(&c);
  }
  std::stable_sort(out.begin(), out.end(), [](const Column* a, const Column* b) { return a->key_position < b->key_position; });
  return out;
}

std::string QuoteIdentifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

bool StoredAsJson(const Column& column) {
  uint8_t t = column.types & static_cast<uint8_t>(~kNull);
  return !(t == kInteger || t == kNumber || t == (kInteger | kNumber) || t == kBoolean || t == kString);
}

std::string ColumnType(Dialect dialect, const Column& column) {
  bool pg = dialect == Dialect::kPostgres;
  if (column.document || StoredAsJson(column)) return pg ? "JSON" : "TEXT";
  uint8_t t = column.types & static_cast<uint8_t>(~kNull);
  if (t == kInteger) return pg ? "BIGINT" : "INTEGER";
  if (t == kBoolean) return "BOOLEAN";
  if (t == kString) {
    if (pg && column.max_length) return fmt::format("VARCHAR({})", *column.max_length);
    return "TEXT";
  }
  return pg ? "DOUBLE PRECISION" : "REAL";  // numbers
}

std::string CreateTableSql(Dialect dialect, const Table& table) {
  std::string sql = fmt::format("CREATE TABLE IF NOT EXISTS {} (\n", QuoteIdentifier(table.name));
  for (size_t i = 0; i < table.columns.size(); ++i) {
    const Column& c = table.columns[i];
    sql += fmt::format("  {} {}{}", QuoteIdentifier(c.field), ColumnType(dialect, c), c.NotNull() ? " NOT NULL" : "");
    if (i + 1 < table.columns.size() || !table.delta_updates) sql += ",";
    sql += "\n";
  }
  if (!table.delta_updates) {
    std::vector<std::string> keys;
    for (const Column* k : table.KeyColumns()) keys.push_back(QuoteIdentifier(k->field));
    sql += fmt::format("  PRIMARY KEY ({})\n", fmt::join(keys, ", "));
  }
  sql += ");";
  return sql;
}

std::string CreateCheckpointsSql(Dialect dialect) {
  return fmt::format(
      "CREATE TABLE IF NOT EXISTS flow_checkpoints (\n"
      "  materialization TEXT NOT NULL PRIMARY KEY,\n"
      "  fence BIGINT NOT NULL,\n"
      "  checkpoint {} NOT NULL\n"
      ");",
      dialect == Dialect::kPostgres ? "TEXT" : "TEXT");
}

std::string IdentifierProblem(Dialect dialect, const Table& table) {
  if (dialect == Dialect::kPostgres) {
    constexpr size_t kMax = 63;  // NAMEDATALEN - 1
    if (table.name.size() > kMax) {
      return fmt::format("table name {} is {} bytes long; PostgreSQL cuts names at {} bytes: choose a shorter one",
                         QuoteIdentifier(table.name), table.name.size(), kMax);
    }
    for (const auto& c : table.columns) {
      if (c.field.size() > kMax) {
        return fmt::format(
            "table {}: column name {} is {} bytes long; PostgreSQL cuts names at {} bytes: project the field "
            "under a shorter name (`projections: {{short_name: {}}}`) and select that",
            QuoteIdentifier(table.name), QuoteIdentifier(c.field), c.field.size(), kMax, c.location.ToString());
      }
    }
    return "";
  }
  auto lower = [](std::string s) {
    for (char& ch : s) {
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    }
    return s;
  };
  std::map<std::string, const Column*> seen;
  for (const auto& c : table.columns) {
    auto [it, inserted] = seen.emplace(lower(c.field), &c);
    if (!inserted) {
      return fmt::format(
          "table {}: columns {} and {} are one column in SQLite, which ignores the case of names: project one of "
          "the fields under another name, or leave one out",
          QuoteIdentifier(table.name), QuoteIdentifier(it->second->field), QuoteIdentifier(c.field));
    }
  }
  return "";
}

}  // namespace flow::materialize
