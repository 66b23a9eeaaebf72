#include "schema/validator.h"

#include <fmt/format.h>
#include <rapidjson/pointer.h>

#include <valijson/adapters/rapidjson_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "base/strings.h"
#include "base/url.h"
#include "doc/node.h"
#include "doc/pointer.h"
#include "schema/annotations.h"
#include "schema/bundle.h"
#include "schema/fast_check.h"

namespace flow::schema {

struct Validator::Impl {
  valijson::Schema schema;
  // The fast path (fast_check.h), null when the bundle is beyond it, and the valijson
  // schemas of the subschemas it delegates.
  std::unique_ptr<FastCheck> fast;
  std::vector<std::unique_ptr<valijson::Schema>> delegated;
};

Validator::Validator() : impl_(std::make_unique<Impl>()) {}
Validator::~Validator() = default;

namespace {

// Removes `format` keywords from a schema, recursing through subschema keywords only (a
// property that happens to be named "format" stays).
void StripFormat(rapidjson::Value& s) {
  if (!s.IsObject()) return;
  s.RemoveMember("format");
  for (auto& m : s.GetObject()) {
    std::string_view k(m.name.GetString(), m.name.GetStringLength());
    rapidjson::Value& v = m.value;
    if (k == "properties" || k == "patternProperties" || k == "$defs" || k == "definitions" ||
        k == "dependencies" || k == "dependentSchemas") {
      if (v.IsObject()) {
        for (auto& p : v.GetObject()) StripFormat(p.value);
      }
    } else if (k == "allOf" || k == "anyOf" || k == "oneOf" || (k == "items" && v.IsArray())) {
      for (auto& i : v.GetArray()) StripFormat(i);
    } else if (k == "items" || k == "additionalItems" || k == "additionalProperties" || k == "not" ||
               k == "if" || k == "then" || k == "else" || k == "contains" || k == "propertyNames") {
      StripFormat(v);
    }
  }
}

// One valijson validator per thread: it caches compiled `pattern` regexes by pattern.
valijson::Validator& ThreadValidator() {
  thread_local valijson::Validator validator(valijson::Validator::kStrongTypes);
  return validator;
}

}  // namespace

Result<std::shared_ptr<Validator>> Validator::Compile(const rapidjson::Value& bundle) {
  if (std::string cycle = FindInPlaceRefCycle(bundle); !cycle.empty()) {
    return Error::User(
        fmt::format("a $ref cycle consumes no input ({}), so validating would never end; build the "
                    "catalog again with this version of flowctl, which reports where",
                    cycle));
  }
  std::shared_ptr<Validator> v(new Validator());
  try {
    rapidjson::Document copy;
    copy.CopyFrom(bundle, copy.GetAllocator());
    StripFormat(copy);
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::RapidJsonAdapter adapter(copy);
    parser.populateSchema(adapter, v->impl_->schema);
    // The fast path delegates a subschema to valijson compiled from the same copy, its root
    // pointing at that subschema for the time of the parse.
    Impl* impl = v->impl_.get();
    auto delegate = [&](const std::string& pointer) -> FastCheck::Delegate {
      const valijson::Schema* whole = &impl->schema;
      if (pointer.empty()) {  // the root itself: the whole schema
        return [whole](const rapidjson::Value& value) {
          valijson::adapters::RapidJsonAdapter a(value);
          return ThreadValidator().validate(*whole, a, nullptr);
        };
      }
      if (!copy.IsObject()) return {};
      std::string ref = "#";
      for (char c : pointer) ref += c == '%' ? std::string("%25") : std::string(1, c);
      rapidjson::Value saved;
      auto it = copy.FindMember("$ref");
      bool had = it != copy.MemberEnd();
      if (had) {
        saved = std::move(it->value);
        it->value.SetString(ref.c_str(), static_cast<rapidjson::SizeType>(ref.size()),
                            copy.GetAllocator());
      } else {
        copy.AddMember("$ref", rapidjson::Value(ref.c_str(), copy.GetAllocator()),
                       copy.GetAllocator());
      }
      auto schema = std::make_unique<valijson::Schema>();
      bool ok = true;
      try {
        valijson::SchemaParser sub(valijson::SchemaParser::kDraft7);
        valijson::adapters::RapidJsonAdapter root(copy);
        sub.populateSchema(root, *schema);
      } catch (const std::exception&) {
        ok = false;
      }
      if (had) {
        copy["$ref"] = std::move(saved);
      } else {
        copy.RemoveMember("$ref");
      }
      if (!ok) return {};
      const valijson::Schema* s = schema.get();
      impl->delegated.push_back(std::move(schema));
      return [s](const rapidjson::Value& value) {
        valijson::adapters::RapidJsonAdapter a(value);
        return ThreadValidator().validate(*s, a, nullptr);
      };
    };
    impl->fast = FastCheck::Compile(copy, delegate);
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
  // The fast path answers for most valid documents, without moving `_meta` aside.
  if (impl_->fast && impl_->fast->Accepts(doc, true)) return {};
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
  valijson::ValidationResults results;
  valijson::adapters::RapidJsonAdapter adapter(target);
  std::vector<ValidationError> out;
  // Valid documents are the common case: check without collecting errors first.
  if (!ThreadValidator().validate(impl_->schema, adapter, nullptr) &&
      !ThreadValidator().validate(impl_->schema, adapter, &results)) {
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

bool Validator::IsValid(const rapidjson::Value& v) const {
  return (impl_->fast && impl_->fast->Accepts(v, false)) || ValijsonAccepts(v);
}

bool Validator::ValijsonAccepts(const rapidjson::Value& v) const {
  valijson::adapters::RapidJsonAdapter adapter(v);
  return ThreadValidator().validate(impl_->schema, adapter, nullptr);
}

bool Validator::FastPathAccepts(const rapidjson::Value& v, bool skip_meta) const {
  return impl_->fast && impl_->fast->Accepts(v, skip_meta);
}

bool Validator::HasFastPath() const { return impl_->fast != nullptr; }

std::string KeywordOfMessage(const std::string& m) {
  static const std::pair<const char*, const char*> kPrefixes[] = {
      {"Value type not permitted", "type"},
      {"Missing required property", "required"},
      {"Object contains a property that could not be validated", "additionalProperties"},
      {"Failed to validate against additional properties", "additionalProperties"},
      {"Failed to match against any enum", "enum"},
      {"Failed to match expected value set by 'const'", "const"},
      {"Target value and comparison value are not equal", "const"},
      {"Failed to match regex specified by 'pattern'", "pattern"},
      {"Failed to validate against any schemas allowed by anyOf", "anyOf"},
      {"Failed to validate against exactly one child schema", "oneOf"},
      {"Failed to validate against a conditional schema", "if"},
      {"Failed to validate against dependent schema", "dependencies"},
      {"Missing dependency", "dependencies"},
      {"Failed to validate against schema associated with pattern", "patternProperties"},
      {"Failed to validate against schema associated with property name", "properties"},
      {"Array contains more items than allowed", "additionalItems"},
      {"Cannot validate item", "items"},
      {"Failed to validate item", "items"},
      {"Array should contain no fewer", "minItems"},
      {"Array should contain no more", "maxItems"},
      {"Elements at indexes", "uniqueItems"},
      {"Failed to any values against subschema in 'contains'", "contains"},
      {"Expected number greater than or equal", "minimum"},
      {"Expected number greater than", "exclusiveMinimum"},
      {"Expected number less than or equal", "maximum"},
      {"Expected number less than", "exclusiveMaximum"},
      {"String should be no fewer", "minLength"},
      {"String should be no more", "maxLength"},
      {"Object should have no fewer", "minProperties"},
      {"Object should have no more", "maxProperties"},
      {"Value should be a multiple of", "multipleOf"},
      {"Value could not be converted", "multipleOf"},
  };
  for (const auto& [prefix, keyword] : kPrefixes) {
    if (m.rfind(prefix, 0) == 0) return keyword;
  }
  if (m.find("'not'") != std::string::npos || m.find("not constraint") != std::string::npos) return "not";
  if (m.find("child schema") != std::string::npos) return "allOf";
  return "";
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
                                   const rapidjson::Value& doc, size_t max,
                                   const Annotations* annotations) {
  auto specific = MostSpecific(errors);
  std::string out;
  for (size_t i = 0; i < specific.size() && i < max; ++i) {
    const auto& e = specific[i];
    std::string value;
    rapidjson::Pointer ptr(e.pointer.c_str(), e.pointer.size());
    if (const rapidjson::Value* v = ptr.IsValid() ? ptr.Get(doc) : nullptr) {
      value = fmt::format(" (value {})", Truncate(doc::JsonText(*v), 60));
    }
    std::string message = e.message;
    while (!message.empty() && message.back() == '.') message.pop_back();
    if (!message.empty()) message[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(message[0])));
    std::string keyword = KeywordOfMessage(e.message);
    std::string where;
    if (!keyword.empty()) {
      std::string location;
      const rapidjson::Value* keyword_value = nullptr;
      std::string why;
      auto ptr = doc::Pointer::Parse(e.pointer, &why);
      if (annotations && ptr) location = annotations->KeywordLocation(*ptr, keyword, &keyword_value);
      if (keyword == "type" && keyword_value) {
        message += fmt::format(" (expected {})", Truncate(doc::JsonText(*keyword_value), 60));
      }
      std::string resource, fragment;
      SplitFragment(location, &resource, &fragment);
      where = location.empty() ? fmt::format(" [`{}`]", keyword)
                               : fmt::format(" [`{}` at {}#{}]", keyword, DisplayName(resource), fragment);
    }
    if (i) out += "; ";
    out += fmt::format("at {}{}: {}{}", e.pointer.empty() ? "/" : e.pointer, value, message, where);
  }
  if (specific.size() > max) out += fmt::format(" (and {} more)", specific.size() - max);
  return out;
}

}  // namespace flow::schema
