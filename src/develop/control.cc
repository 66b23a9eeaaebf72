#include "develop/control.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include "base/strings.h"
#include "develop/ingest_service.h"

namespace flow::develop {

std::optional<runtime::OneOffRequest> ParseMaterializationRequest(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) return std::nullopt;
  auto str = [&](const char* k) {
    return d.HasMember(k) && d[k].IsString() ? std::string(d[k].GetString()) : std::string();
  };
  runtime::OneOffRequest r;
  r.target = str("target");
  r.collection = str("collection");
  r.table = str("table");
  r.all_fields = d.HasMember("allFields") && d["allFields"].IsBool() && d["allFields"].GetBool();
  if (d.HasMember("fields") && d["fields"].IsArray()) {
    for (const auto& f : d["fields"].GetArray()) {
      if (f.IsString()) r.fields.push_back(f.GetString());
    }
  }
  return r;
}

server::Response HandleControl(const std::string& method, const std::string& target,
                               const std::string& body, const Source& catalog,
                               runtime::Supervisor* tasks,
                               const std::function<void(const std::string&)>& log) {
  if (target != "/materializations") {
    return ErrorResponse(404, "no such resource: " + target);
  }
  if (method != "POST") {
    return ErrorResponse(405, "use POST");
  }
  auto request = ParseMaterializationRequest(body);
  if (!request) {
    return ErrorResponse(400, "expected a JSON object {target, collection, table, fields}");
  }
  auto m = runtime::OneOffMaterialization(catalog.loaded->catalog, catalog.built, *request);
  if (!m) return ErrorResponse(400, m.error().message);
  for (const auto& s : tasks->Status()) {
    if (s.kind == runtime::TaskKind::kMaterialization && s.name == m.value()->name) {
      return ErrorResponse(409, "materialization `" + s.name + "` is already running");
    }
  }
  tasks->AddMaterialization(m.value());
  log(fmt::format("started materialization `{}` of `{}` into table `{}` of target `{}`",
                  m.value()->name, request->collection, request->table, request->target));
  return server::Response{200, fmt::format("{{\"name\":{}}}\n", JsonQuote(m.value()->name))};
}

}  // namespace flow::develop
