// CSV and TSV rows to documents (SPEC section 7): the header names projection fields, and
// each cell is converted by the shape of its field's location. Streaming: bytes are fed in
// blocks of any size and documents come out row by row, so input size is unbounded.
// Not thread-safe; one converter per stream.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "doc/pointer.h"
#include "doc/value.h"

namespace flow::runtime {

// A projection of the collection: a field name, its location, and the types its location
// may hold (schema::Types bits: null 1, boolean 2, integer 4, number 8, string 16,
// object 32, array 64).
struct CsvField {
  std::string field;
  doc::Pointer pointer;  // the empty pointer is the whole document (`flow_document`)
  uint8_t types = 127;
};

enum class CsvDialect { kCsv, kTsv };

class CsvConverter {
 public:
  // `fields`: every projection of `collection` (its name is used in messages only).
  CsvConverter(CsvDialect dialect, std::string collection, std::vector<CsvField> fields);
  // For reading a sample whose columns are not known in advance (schema inference): a
  // header column that names none of `fields` becomes a field of its own at the top-level
  // location `/<column>`, allowing every type (an empty cell is then null, `5` an integer,
  // `true` a boolean, anything else a string).
  static std::unique_ptr<CsvConverter> AcceptingAnyHeader(CsvDialect dialect, std::string origin,
                                                          std::vector<CsvField> fields = {});
  ~CsvConverter();
  CsvConverter(const CsvConverter&) = delete;
  CsvConverter& operator=(const CsvConverter&) = delete;

  // Called once per data row with its 1-based row number (the header is row 0) and the
  // document built with `allocator`. An error returned by `emit` stops the conversion and
  // is passed back; a user error's message is prefixed with the row and its line
  // ("row 3 (line 4): ...").
  using Emit = std::function<Result<bool>(uint64_t row, doc::Value& document)>;

  // Feeds the next block of input. Errors (user errors) name the row, its line, the field
  // and the cause, e.g. "row 3 (line 4), field `count` (/count): `abc` is not an integer".
  Result<bool> Feed(std::string_view bytes, doc::Allocator& allocator, const Emit& emit);
  // Ends the input: converts a last row without a line terminator; fails on an
  // unterminated quoted cell or a missing header.
  Result<bool> Finish(doc::Allocator& allocator, const Emit& emit);

  // Where the row being emitted is: "row N (line L)" (valid inside `emit`).
  std::string place() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flow::runtime
