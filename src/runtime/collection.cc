#include "runtime/collection.h"

#include <fmt/format.h>

#include <algorithm>

#include "store/naming.h"

namespace flow::runtime {

std::optional<store::Codec> ParseCodec(std::string_view text) {
  if (text == "gzip") return store::Codec::kGzip;
  if (text == "zstd" || text == "zstandard") return store::Codec::kZstd;
  if (text == "none") return store::Codec::kNone;
  return std::nullopt;
}

Result<std::shared_ptr<const Collection>> Collection::Compile(const catalog::CollectionRecord& record,
                                                              std::optional<store::Codec> codec) {
  auto c = std::make_shared<Collection>();
  c->name = record.name;
  c->derived = record.derived;
  rapidjson::Document bundle;
  bundle.Parse(record.bundle.c_str());
  if (bundle.HasParseError()) {
    return Error::Internal(fmt::format("collection `{}` has a malformed schema bundle", record.name));
  }
  auto validator = schema::Validator::Compile(bundle);
  if (!validator) {
    return Error::User(fmt::format("the schema of collection `{}` cannot be compiled: {}", record.name,
                                   validator.error().message));
  }
  auto annotations = schema::Annotations::Compile(bundle);
  if (!annotations) {
    return Error::User(fmt::format("the schema of collection `{}` cannot be compiled: {}", record.name,
                                   annotations.error().message));
  }
  c->validator = validator.value();
  c->annotations = annotations.value();
  c->reducer = std::make_shared<reduce::Reducer>(c->annotations);
  auto pointer = [&](const std::string& text, doc::Pointer* out) -> Result<bool> {
    std::string why;
    auto p = doc::Pointer::Parse(text, &why);
    if (!p) return Error::User(fmt::format("collection `{}` has a malformed pointer `{}`: {}", record.name, text, why));
    *out = *p;
    return true;
  };
  for (const auto& k : record.key) {
    doc::Pointer p;
    auto r = pointer(k, &p);
    if (!r) return r.error();
    c->key.push_back(std::move(p));
  }
  for (const auto& p : record.projections) {
    CsvField f;
    f.field = p.field;
    f.types = p.types;
    auto r = pointer(p.location, &f.pointer);
    if (!r) return r.error();
    if (p.partition) c->partitions.push_back({p.field, f.pointer});
    c->fields.push_back(std::move(f));
  }
  std::sort(c->partitions.begin(), c->partitions.end(),
            [](const Partition& a, const Partition& b) { return a.field < b.field; });
  if (!record.fragment_codec.empty()) {
    auto parsed = ParseCodec(record.fragment_codec);
    if (parsed) c->journal.codec = *parsed;
  }
  if (codec) c->journal.codec = *codec;
  if (record.fragment_length) c->journal.fragment_size = record.fragment_length;
  c->journal.flush_interval = record.flush_interval;
  return std::shared_ptr<const Collection>(std::move(c));
}

Result<bool> Collection::Validate(doc::Value& doc, doc::Allocator& alloc) const {
  auto errors = validator->Validate(doc, alloc);
  if (!errors.empty()) {
    return Error::User(
        fmt::format("document does not validate against the schema of collection `{}`: {}", name,
                    schema::FormatValidationErrors(errors, doc, 3, annotations.get())));
  }
  std::string encoded;
  for (const auto& p : partitions) {
    const doc::Value* v = doc::Lookup(doc, p.pointer);
    encoded.clear();
    if (!v || !store::EncodePartitionValue(*v, &encoded)) continue;  // JournalOf names the problem
    size_t room = p.field.size() + 1 < kMaxPartitionSegmentBytes
                      ? kMaxPartitionSegmentBytes - 1 - p.field.size()
                      : 0;
    size_t allowed = std::min(kMaxPartitionValueBytes, room);
    if (encoded.size() > allowed) {
      return Error::User(
          fmt::format("collection `{}`: partition field `{}` ({}) has a value of {} bytes once "
                      "percent-encoded for its journal "
                      "name; at most {} are allowed (the value names a directory of the lake)",
                      name, p.field, p.pointer.ToString(), encoded.size(), allowed));
    }
  }
  return true;
}

Result<bool> Collection::JournalOf(const doc::Value& doc, std::string* out) const {
  std::vector<std::pair<std::string, const doc::Value*>> fields;
  fields.reserve(partitions.size());
  for (const auto& p : partitions) fields.emplace_back(p.field, doc::Lookup(doc, p.pointer));
  if (store::JournalName(name, std::move(fields), out)) return true;
  for (const auto& p : partitions) {
    const doc::Value* v = doc::Lookup(doc, p.pointer);
    std::string ignored;
    if (!v || !store::EncodePartitionValue(*v, &ignored)) {
      return Error::User(fmt::format("collection `{}`: partition field `{}` ({}) is {}; partition values must be "
                                     "strings, integers or booleans",
                                     name, p.field, p.pointer.ToString(), v ? doc::KindName(*v) : "absent"));
    }
  }
  return Error::Internal(fmt::format("collection `{}`: cannot name the journal of a document", name));
}

Result<std::map<std::string, std::shared_ptr<const Collection>>> CompileAll(
    const std::vector<catalog::CollectionRecord>& records, std::optional<store::Codec> codec) {
  std::map<std::string, std::shared_ptr<const Collection>> out;
  for (const auto& r : records) {
    auto c = Collection::Compile(r, codec);
    if (!c) return c.error();
    out[r.name] = c.value();
  }
  return out;
}

}  // namespace flow::runtime
