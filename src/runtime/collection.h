// A collection compiled for the runtime from its catalog record: schema validator,
// reducer, key, partition fields, CSV fields and journal settings, and the mapping of a
// document to its journal (SPEC 3.2). Immutable once compiled; safe to share across
// threads except for validation, which uses thread-local state (see schema/validator.h).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "catalog/built.h"
#include "doc/pointer.h"
#include "reduce/reduce.h"
#include "runtime/csv.h"
#include "schema/validator.h"
#include "store/journal.h"

namespace flow::runtime {

struct Collection {
  std::string name;
  bool derived = false;
  std::shared_ptr<schema::Validator> validator;
  std::shared_ptr<const schema::Annotations> annotations;
  std::shared_ptr<const reduce::Reducer> reducer;
  std::vector<doc::Pointer> key;
  struct Partition {
    std::string field;
    doc::Pointer pointer;
  };
  std::vector<Partition> partitions;  // sorted by field name
  std::vector<CsvField> fields;       // every projection
  store::JournalSpec journal;

  // Compiles `record`. `codec` overrides the collection's own codec setting when given.
  static Result<std::shared_ptr<const Collection>> Compile(const catalog::CollectionRecord& record,
                                                           std::optional<store::Codec> codec = std::nullopt);

  // Validates `doc` (owned by `alloc`): a user error listing the problems, else ok. Besides
  // the schema, each partition value must fit in its journal name (kMaxPartitionValueBytes).
  Result<bool> Validate(doc::Value& doc, doc::Allocator& alloc) const;

  // The longest partition value, in bytes once percent-encoded for the journal name (SPEC
  // 3.2). Each partition is a directory `<field>=<value>` in the lake and the spool, and
  // file systems refuse names over NAME_MAX (255 bytes): 128 leaves room for the field name
  // and keeps the whole path far below PATH_MAX. A longer value is a data error, refused
  // before anything is appended: it must never reach the file system as ENAMETOOLONG.
  static constexpr size_t kMaxPartitionValueBytes = 128;
  // The longest directory name `<field>=<value>` of a partition.
  static constexpr size_t kMaxPartitionSegmentBytes = 240;

  // The name of the journal `doc` belongs to. A user error when a partition value is not a
  // string, integer or boolean (the schema should have prevented it).
  Result<bool> JournalOf(const doc::Value& doc, std::string* out) const;
};

// Parses "gzip", "zstd" (or "zstandard") and "none".
std::optional<store::Codec> ParseCodec(std::string_view text);

// Compiles every collection of a catalog, by name.
Result<std::map<std::string, std::shared_ptr<const Collection>>> CompileAll(
    const std::vector<catalog::CollectionRecord>& records, std::optional<store::Codec> codec = std::nullopt);

}  // namespace flow::runtime
