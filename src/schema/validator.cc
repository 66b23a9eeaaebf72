#include "schema/validator.h"

#include <fmt/format.h>

#include <valijson/adapters/rapidjson_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "doc/pointer.h"

namespace flow::schema {

struct Validator::Impl {
  valijson::Schema schema;
};

Validator::Validator() : impl_(std::make_unique<Impl>()) {}
Validator::~Validator() = default;

Result<std::shared_ptr<Validator>> Validator::Compile(const rapidjson::Value& bundle) {
  std::shared_ptr<Validator> v(new Validator());
  try {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::RapidJsonAdapter adapter(bundle);
    parser.populateSchema(adapter, v->impl_->schema);
  } catch (const std::exception& e) {
    return Error::User(fmt::format("invalid JSON schema: {}", e.what()));
  }
  return v;
}

namespace {

// valijson reports context as ["<root>", "[name]", "[0]", ...].
std::string ContextToPointer(const std::vector<std::string>& context) {
  std::string out;
  for (const auto& c : context) {
    if (c == "<root>") continue;
    std::string token = c;
    if (token.size() >= 2 && token.front() == '[' && token.back() == ']') {
      token = token.substr(1, token.size() - 2);
    }
    if (token.size() >= 2 && token.front() == '"' && token.back() == '"') {
      token = token.substr(1, token.size() - 2);
    }
    out += "/" + doc::Pointer::Escape(token);
  }
  return out;
}

}  // namespace

std::vector<ValidationError> Validator::Validate(rapidjson::Value& doc,
                                                 rapidjson::Document::AllocatorType& alloc) const {
  // Take `_meta` out so that closed schemas (additionalProperties: false) accept it.
  rapidjson::Value meta;
  bool had_meta = false;
  if (doc.IsObject()) {
    if (auto it = doc.FindMember("_meta"); it != doc.MemberEnd()) {
      meta = std::move(it->value);
      doc.RemoveMember(it);
      had_meta = true;
    }
  }
  valijson::Validator validator(valijson::Validator::kWeakTypes);
  valijson::ValidationResults results;
  valijson::adapters::RapidJsonAdapter adapter(doc);
  std::vector<ValidationError> out;
  if (!validator.validate(impl_->schema, adapter, &results)) {
    valijson::ValidationResults::Error e;
    while (results.popError(e)) {
      out.push_back({ContextToPointer(e.context), e.description});
    }
    if (out.empty()) out.push_back({"", "document does not match the schema"});
  }
  if (had_meta) {
    doc.AddMember("_meta", meta, alloc);
  }
  return out;
}

std::string FormatValidationErrors(const std::vector<ValidationError>& errors, size_t max) {
  // valijson reports the innermost failure last; show the most specific ones first.
  std::string out;
  size_t shown = 0;
  for (auto it = errors.rbegin(); it != errors.rend() && shown < max; ++it, ++shown) {
    if (shown) out += "; ";
    out += fmt::format("at {}: {}", it->pointer.empty() ? "/" : it->pointer, it->message);
  }
  if (errors.size() > max) out += fmt::format(" (and {} more)", errors.size() - max);
  return out;
}

}  // namespace flow::schema
