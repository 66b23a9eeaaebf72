#include "schema/validator.h"

#include <fmt/format.h>

#include <rapidjson/pointer.h>
#include <valijson/adapters/rapidjson_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "base/strings.h"
#include "doc/node.h"
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
  // Validate without a top-level `_meta`, so that closed schemas (additionalProperties:
  // false) accept stored documents. Members are moved (not copied) aside and back, keeping
  // their order.
  rapidjson::Value rest, meta;
  size_t meta_index = 0;
  bool had_meta = false;
  if (doc.IsObject() && doc.HasMember("_meta")) {
    had_meta = true;
    rest.SetObject();
    size_t i = 0;
    for (auto& m : doc.GetObject()) {
      if (m.name == "_meta") {
        meta = std::move(m.value);
        meta_index = i;
      } else {
        rest.AddMember(m.name, m.value, alloc);
      }
      ++i;
    }
  }
  const rapidjson::Value& target = had_meta ? rest : doc;
  valijson::Validator validator(valijson::Validator::kStrongTypes);
  valijson::ValidationResults results;
  valijson::adapters::RapidJsonAdapter adapter(target);
  std::vector<ValidationError> out;
  if (!validator.validate(impl_->schema, adapter, &results)) {
    valijson::ValidationResults::Error e;
    while (results.popError(e)) {
      out.push_back({ContextToPointer(e.context), e.description});
    }
    if (out.empty()) out.push_back({"", "document does not match the schema"});
  }
  if (had_meta) {
    doc.RemoveAllMembers();  // keeps capacity: re-adding allocates nothing
    size_t i = 0;
    for (auto& m : rest.GetObject()) {
      if (i++ == meta_index) doc.AddMember("_meta", meta, alloc);
      doc.AddMember(m.name, m.value, alloc);
    }
    if (meta_index >= rest.MemberCount()) doc.AddMember("_meta", meta, alloc);
  }
  return out;
}

std::vector<ValidationError> MostSpecific(const std::vector<ValidationError>& errors) {
  std::vector<ValidationError> out;
  for (const auto& e : errors) {
    bool encloses = false;
    for (const auto& o : errors) {
      if (o.pointer.size() > e.pointer.size() && o.pointer.compare(0, e.pointer.size(), e.pointer) == 0 &&
          o.pointer[e.pointer.size()] == '/') {
        encloses = true;
        break;
      }
    }
    bool duplicate = false;
    for (const auto& k : out) duplicate = duplicate || (k.pointer == e.pointer && k.message == e.message);
    if (!encloses && !duplicate) out.push_back(e);
  }
  return out;
}

std::string FormatValidationErrors(const std::vector<ValidationError>& errors,
                                   const rapidjson::Value& doc, size_t max) {
  auto specific = MostSpecific(errors);
  std::string out;
  for (size_t i = 0; i < specific.size() && i < max; ++i) {
    const auto& e = specific[i];
    std::string value;
    rapidjson::Pointer ptr(e.pointer.c_str(), e.pointer.size());
    if (const rapidjson::Value* v = ptr.IsValid() ? ptr.Get(doc) : nullptr) {
      value = fmt::format(" (value {})", Truncate(doc::JsonText(*v), 60));
    }
    if (i) out += "; ";
    out += fmt::format("at {}{}: {}", e.pointer.empty() ? "/" : e.pointer, value, e.message);
  }
  if (specific.size() > max) out += fmt::format(" (and {} more)", specific.size() - max);
  return out;
}

}  // namespace flow::schema
