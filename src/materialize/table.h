// What a materialization binding writes: a table of columns projected from a collection's
// documents (SPEC 5). Pure data; the dialects turn it into DDL and the drivers into rows.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "doc/pointer.h"

namespace flow::materialize {

struct Column {
  std::string field;                  // the column's name
  doc::Pointer location;              // empty for `flow_document`
  uint8_t types = 127;                // schema::Types bits of the location
  bool must_exist = false;            // the location exists in every document
  bool key = false;                   // part of the collection's key
  int key_position = 0;               // 1-based position in the key, when `key`
  std::optional<uint64_t> max_length; // of strings, when the schema says
  bool document = false;              // `flow_document`: the whole document as JSON

  // NOT NULL: a key, the document, or a location that must exist and cannot be null.
  bool NotNull() const;
};

struct Table {
  std::string name;
  std::vector<Column> columns;  // in selection order, `flow_document` last
  bool delta_updates = false;   // rows are appended, never loaded (no primary key)

  // The key columns, in key order (the collection's key order).
  std::vector<const Column*> KeyColumns() const;
};

}  // namespace flow::materialize
