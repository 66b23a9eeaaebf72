// The client side of a running develop's API (develop.h): `flowctl ingest` and `flowctl
// materialize` into a data directory a develop owns.
#include <chrono>

#include <fmt/format.h>
#include <rapidjson/document.h>

#include "base/strings.h"
#include "develop/develop.h"
#include "http/client.h"

namespace flow::develop {
namespace {

struct Answer {
  long status = 0;
  std::string body;
};

Result<Answer> Send(const std::string& method, const std::string& url, const std::string& body) {
  http::Request request;
  request.method = method;
  request.url = url;
  request.body = body;
  request.headers = {"Content-Type: application/json"};
  request.connect_timeout = std::chrono::milliseconds(5000);
  http::Failure failure;
  auto response = http::Perform(request, &failure);
  if (!response) return Error::Env(fmt::format("{} {}: {}", method, url, failure.summary));
  return Answer{response->status, std::move(response->body)};
}

// The message of a JSON error body (`{"error": "..."}`), else the body itself.
std::string ErrorOfBody(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  if (!d.HasParseError() && d.IsObject() && d.HasMember("error") && d["error"].IsString()) {
    return d["error"].GetString();
  }
  size_t end = body.find_last_not_of(" \t\r\n");
  return end == std::string::npos ? std::string() : body.substr(0, end + 1);
}

Error Refusal(long status, std::string message) {
  return status >= 500 ? Error::Env(std::move(message)) : Error::User(std::move(message));
}

}  // namespace

Result<IngestAck> IngestThrough(const std::string& url, runtime::Input& input, const std::string& collection,
                                runtime::IngestFormat format,
                                const std::shared_ptr<const runtime::Collection>& csv_collection, std::string* where) {
  auto request = runtime::EncodeIngestRequest(input, collection, format, csv_collection, where);
  if (!request) return request.error();
  auto r = Send("PUT", url + "/ingest", request->body);
  if (!r) return Error::Env(fmt::format("{}; nothing was written", r.error().message));
  if (r->status == 200) return IngestAck{std::move(r->body), request->documents};
  *where = input.name();
  std::string place;  // of the refused document, when the develop names it by its index
  rapidjson::Document d;
  d.Parse(r->body.data(), r->body.size());
  if (!d.HasParseError() && d.IsObject() && d.HasMember("index") && d["index"].IsUint64() &&
      d["index"].GetUint64() < request->places.size()) {
    place = request->places[d["index"].GetUint64()];
  }
  if (format == runtime::IngestFormat::kJson && !place.empty()) {  // placed by its line
    *where = place;
    place.clear();
  }
  std::string hint = r->status == 413 ? "\n    hint: split the input, or stream it over the WebSocket API" : "";
  return Refusal(r->status, fmt::format("{}{}{} (HTTP {} from {}){}", place, place.empty() ? "" : ": ",
                                        ErrorOfBody(r->body), r->status, url, hint));
}

Result<bool> MaterializeThrough(const std::string& url, const runtime::OneOffRequest& request) {
  std::string body = fmt::format("{{\"target\":{},\"collection\":{},\"table\":{},\"allFields\":{},\"fields\":[",
                                 JsonQuote(request.target), JsonQuote(request.collection), JsonQuote(request.table),
                                 request.all_fields ? "true" : "false");
  for (size_t i = 0; i < request.fields.size(); ++i) body += (i ? "," : "") + JsonQuote(request.fields[i]);
  body += "]}";
  auto r = Send("POST", url + "/materializations", body);
  if (!r) return Error::Env(fmt::format("the develop at {}: {}", url, r.error().message));
  if (r->status != 200) {
    return Refusal(r->status, fmt::format("the develop at {} refused the materialization (HTTP {}): {}", url,
                                          r->status, ErrorOfBody(r->body)));
  }
  return true;
}

}  // namespace flow::develop
