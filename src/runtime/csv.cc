#include "runtime/csv.h"

#include <csv.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <optional>

#include <fmt/format.h>

#include "base/strings.h"
#include "doc/parse.h"
#include "schema/shape.h"

// Non-obvious details:
// - CSV goes through libcsv (strict; whitespace is data, as RFC 4180 says, so its default
//   trimming of spaces and tabs around unquoted cells is turned off). libcsv reports no
//   positions, so lines are counted from what it reports: the line feeds inside cells, and
//   every row terminator (CSV_REPALL_NL reports blank lines too, and the LF of a CRLF is
//   not counted twice).
// - TSV has no quoting, so it is split here: a line is a row, a tab separates cells.
// - Cells of a row are applied in location order, not column order: the whole document
//   (`flow_document`) first, then parents before children, array indices in numeric order.
// - Numbers are read by RapidJSON, as in JSON documents: `5` is the integer 5 even where only
//   `number` is allowed, and an integer beyond 64 bits is a double.

namespace flow::runtime {
namespace {

using schema::kArray;
using schema::kBoolean;
using schema::kInteger;
using schema::kNull;
using schema::kNumber;
using schema::kObject;
using schema::kString;
constexpr std::pair<uint8_t, const char*> kTypeNames[] = {
    {kNull, "null"},     {kBoolean, "boolean"}, {kInteger, "integer"}, {kNumber, "number"},
    {kString, "string"}, {kObject, "object"},   {kArray, "array"}};

constexpr std::string_view kBom = "\xEF\xBB\xBF";
// Cell values quoted in messages are cut to this many bytes.
constexpr size_t kMaxQuoted = 64;
// libcsv grows its cell buffer by a fixed step (bytes), not geometrically: 64 KiB keeps a
// 16 MiB cell (a whole document) at 256 reallocations.
constexpr size_t kCsvBlockSize = 64 << 10;
// A row is one document: at most the document limit (SPEC 9) and a line end.
const size_t kMaxRow = doc::ParseLimits{}.max_bytes + 2;
constexpr size_t kRowCheckSlice = 1 << 20;  // CSV bytes parsed between checks of the row's length

// libcsv's "space" predicate: nothing is a space, so no cell is trimmed.
int NoSpace(unsigned char) { return 0; }

// True if `s` is a JSON number (RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?);
// `*integral` tells whether it has neither a fraction nor an exponent.
bool IsJsonNumber(std::string_view s, bool* integral) {
  size_t i = 0, n = s.size();
  auto digits = [&] {
    size_t start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  };
  if (i < n && s[i] == '-') ++i;
  if (i < n && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  *integral = i == n;
  if (i < n && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == n;
}

// TSV cells escape what would otherwise end them, as PostgreSQL's text COPY format and the
// "linear TSV" convention do: `\t`, `\n`, `\r` and `\\` decode to a tab, a line feed, a
// carriage return and a backslash. Any other backslash is kept as it is (so a Windows path
// reads unchanged), as is a backslash that ends the cell.
void AppendTsvCell(std::string_view raw, std::string* out) {
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '\\' && i + 1 < raw.size()) {
      switch (raw[i + 1]) {
        case 't': c = '\t'; ++i; break;
        case 'n': c = '\n'; ++i; break;
        case 'r': c = '\r'; ++i; break;
        case '\\': ++i; break;
        default: break;
      }
    }
    out->push_back(c);
  }
}

// Line breaks within a cell: LF, CRLF and a lone CR each count once.
uint64_t CountLineBreaks(std::string_view s) {
  uint64_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' || (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n'))) ++n;
  }
  return n;
}

// Index tokens first, in numeric order, then other tokens by bytes: a total order.
bool TokenBefore(const std::string& a, const std::string& b) {
  auto x = doc::Pointer::AsIndex(a), y = doc::Pointer::AsIndex(b);
  if (x && y) return *x < *y;
  if (x || y) return x.has_value();
  return a < b;
}

// Parents before children and array elements by index, so that doc::Create finds each
// location's parents in place (it appends to an array only at its end).
bool LocationBefore(const doc::Pointer& a, const doc::Pointer& b) {
  const auto &x = a.tokens(), &y = b.tokens();
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    if (x[i] != y[i]) return TokenBefore(x[i], y[i]);
  }
  return x.size() < y.size();
}

std::string TypeList(uint8_t types) {
  std::string out;
  for (const auto& [bit, name] : kTypeNames) {
    if (!(types & bit)) continue;
    if (!out.empty()) out += " | ";
    out += name;
  }
  return out;
}

std::string Quoted(std::string_view cell) { return fmt::format("`{}`", Truncate(cell, kMaxQuoted)); }

}  // namespace

struct CsvConverter::Impl {
  Impl(CsvDialect d, std::string c, std::vector<CsvField> f);
  ~Impl() { csv_free(&parser_); }

  // Strips a byte order mark at the start of the input, which may arrive split across
  // blocks, and passes everything else on to Parse.
  void Input(std::string_view bytes);
  void Parse(std::string_view bytes);
  void End();
  void TsvLine(std::string_view line, bool terminated);
  void RowTooLong(size_t size);

  // libcsv callbacks (`data` is the Impl).
  static void OnCell(void* bytes, size_t size, void* data);
  static void OnRowEnd(int terminator, void* data);

  // Handles the row in cells_/ends_ (the header, a data row, or nothing if it is empty).
  void EndRow();
  void ReadHeader();
  void ConvertRow();
  // Converts a cell for a location of `types` into `*out`, or explains in `*why` why not.
  bool Convert(std::string_view cell, uint8_t types, doc::Value* out, std::string* why);

  std::string_view Cell(size_t i) const {
    size_t begin = i ? ends_[i - 1] : 0;
    return std::string_view(cells_).substr(begin, ends_[i] - begin);
  }
  // "row N (line L)", or "the header (line L)" before the header is read.
  std::string Where() const;
  void Fail(std::string message) { Fail(Error::User(std::move(message))); }
  void Fail(Error e) {
    if (!error_) error_ = std::move(e);
  }
  void FailField(const CsvField& f, std::string_view cause);

  const CsvDialect dialect_;
  const std::string collection_;
  std::vector<CsvField> fields_;
  bool any_header_ = false;  // unknown header columns become top-level fields
  std::map<std::string, size_t, std::less<>> by_name_;  // field name -> index in fields_
  std::vector<std::string> names_;                      // for "did you mean"

  csv_parser parser_;
  size_t bom_seen_ = 0;  // bytes of a BOM matched so far
  bool bom_decided_ = false;
  std::string tsv_line_;  // TSV: the start of a line whose end has not arrived

  uint64_t line_ = 1;        // physical line at the point parsed so far
  int last_terminator_ = 0;  // the byte that ended the last row (libcsv), -1 at the end
  // The current row: its cells back to back in cells_, their end offsets in ends_.
  std::string cells_;
  std::vector<size_t> ends_;
  uint64_t row_line_ = 1;  // the line where the current row starts

  bool has_header_ = false;
  std::vector<size_t> columns_;  // header column -> index in fields_
  std::vector<size_t> order_;    // header columns in the order their cells are applied
  uint64_t rows_ = 0;            // data rows converted (the current one is rows_ + 1)

  // Set for the duration of Feed and Finish.
  doc::Allocator* allocator_ = nullptr;
  const Emit* emit_ = nullptr;
  std::optional<Error> error_;  // the first error; once set, nothing more is converted
  bool finished_ = false;
};

CsvConverter::Impl::Impl(CsvDialect d, std::string c, std::vector<CsvField> f)
    : dialect_(d), collection_(std::move(c)), fields_(std::move(f)) {
  for (size_t i = 0; i < fields_.size(); ++i) {
    by_name_.emplace(fields_[i].field, i);
    names_.push_back(fields_[i].field);
  }
  csv_init(&parser_, CSV_STRICT | CSV_STRICT_FINI | CSV_REPALL_NL);
  csv_set_space_func(&parser_, NoSpace);
  csv_set_blk_size(&parser_, kCsvBlockSize);
}

void CsvConverter::Impl::Input(std::string_view bytes) {
  if (!bom_decided_) {
    while (!bytes.empty() && bom_seen_ < kBom.size() && bytes[0] == kBom[bom_seen_]) {
      ++bom_seen_;
      bytes.remove_prefix(1);
    }
    if (bom_seen_ < kBom.size() && bytes.empty()) return;  // undecided: wait for more
    bom_decided_ = true;
    // A partial match was data after all.
    if (bom_seen_ < kBom.size()) Parse(kBom.substr(0, bom_seen_));
  }
  Parse(bytes);
}

void CsvConverter::Impl::Parse(std::string_view bytes) {
  if (dialect_ == CsvDialect::kCsv) {
    // In slices, so that a row that never ends is refused once it passes the document limit
    // (its complete cells plus the cell libcsv is reading), not when memory runs out.
    while (bytes.size() > kRowCheckSlice && !error_) {
      Parse(bytes.substr(0, kRowCheckSlice));
      bytes.remove_prefix(kRowCheckSlice);
    }
    if (error_) return;
    size_t parsed = csv_parse(&parser_, bytes.data(), bytes.size(), OnCell, OnRowEnd, this);
    if (!error_ && cells_.size() + parser_.entry_pos > kMaxRow) return RowTooLong(cells_.size() + parser_.entry_pos);
    if (parsed == bytes.size() || error_) return;
    if (csv_error(&parser_) == CSV_EPARSE) {
      Fail(fmt::format("{}: malformed quoting: a quote inside an unquoted cell, or text after "
                       "the closing quote of a cell (a quote within a quoted cell is doubled)",
                       Where()));
    } else {
      Fail(Error::Env(fmt::format("{}: {}", Where(), csv_strerror(csv_error(&parser_)))));
    }
    return;
  }
  while (!bytes.empty() && !error_) {
    size_t nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      tsv_line_.append(bytes);
      if (tsv_line_.size() > kMaxRow) RowTooLong(tsv_line_.size());
      return;
    }
    std::string_view line = bytes.substr(0, nl);
    if (!tsv_line_.empty()) line = tsv_line_.append(line);
    TsvLine(line, /*terminated=*/true);
    tsv_line_.clear();
    bytes.remove_prefix(nl + 1);
  }
}

void CsvConverter::Impl::RowTooLong(size_t size) {
  Fail(fmt::format("{} is longer than the document limit of {} MiB ({} bytes so far)", Where(),
                   doc::ParseLimits{}.max_bytes >> 20, size));
}

void CsvConverter::Impl::End() {
  if (!bom_decided_) {
    bom_decided_ = true;
    Parse(kBom.substr(0, bom_seen_));
  }
  if (error_) return;
  if (dialect_ == CsvDialect::kCsv) {
    if (csv_fini(&parser_, OnCell, OnRowEnd, this) != 0 && !error_) {
      Fail(fmt::format("{}: a quoted cell is not closed before the end of the input", Where()));
    }
  } else if (!tsv_line_.empty()) {
    TsvLine(tsv_line_, /*terminated=*/false);
    tsv_line_.clear();
  }
  if (!error_ && !has_header_) {
    Fail(fmt::format("no header row in the input of collection `{}`", collection_));
  }
}

void CsvConverter::Impl::TsvLine(std::string_view line, bool terminated) {
  if (terminated && !line.empty() && line.back() == '\r') line.remove_suffix(1);
  row_line_ = line_;
  if (terminated) ++line_;
  if (line.empty()) return;  // a blank line: no cells
  for (;;) {
    size_t tab = line.find('\t');
    AppendTsvCell(line.substr(0, tab), &cells_);
    ends_.push_back(cells_.size());
    if (tab == std::string_view::npos) break;
    line.remove_prefix(tab + 1);
  }
  EndRow();
}

void CsvConverter::Impl::OnCell(void* bytes, size_t size, void* data) {
  auto* m = static_cast<Impl*>(data);
  if (m->error_) return;
  std::string_view cell(static_cast<const char*>(bytes), size);
  if (m->ends_.empty()) m->row_line_ = m->line_;
  m->line_ += CountLineBreaks(cell);
  m->cells_.append(cell);
  m->ends_.push_back(m->cells_.size());
}

void CsvConverter::Impl::OnRowEnd(int terminator, void* data) {
  auto* m = static_cast<Impl*>(data);
  if (m->error_) return;
  // The LF of a CRLF arrives as a blank row after the row that the CR ended.
  bool crlf = terminator == '\n' && m->last_terminator_ == '\r' && m->ends_.empty();
  if (terminator >= 0 && !crlf) ++m->line_;
  m->last_terminator_ = terminator;
  m->EndRow();
}

void CsvConverter::Impl::EndRow() {
  if (ends_.empty()) return;  // a blank line
  if (cells_.size() > kMaxRow) return RowTooLong(cells_.size());
  if (!has_header_) {
    ReadHeader();
  } else {
    ConvertRow();
    ++rows_;
  }
  cells_.clear();
  ends_.clear();
}

void CsvConverter::Impl::ReadHeader() {
  has_header_ = true;
  std::vector<size_t> column_of(fields_.size(), SIZE_MAX);
  for (size_t col = 0; col < ends_.size() && !error_; ++col) {
    std::string_view name = Cell(col);
    if (FindInvalidUtf8(name)) {
      return Fail(fmt::format("column {} of the header of collection `{}` is not valid UTF-8",
                              col + 1, collection_));
    }
    auto it = by_name_.find(name);
    if (it == by_name_.end() && any_header_) {
      fields_.push_back({std::string(name), doc::Pointer().Push(std::string(name)), 127});
      column_of.push_back(SIZE_MAX);
      it = by_name_.emplace(std::string(name), fields_.size() - 1).first;
    }
    if (it == by_name_.end()) {
      std::string hint = DidYouMean(name, names_);
      return Fail(fmt::format("unknown field `{}` in the header of collection `{}`{}{}",
                              Truncate(name, kMaxQuoted), collection_, hint.empty() ? "" : "; ",
                              hint));
    }
    if (column_of[it->second] != SIZE_MAX) {
      return Fail(fmt::format("field `{}` appears twice in the header of collection `{}` "
                              "(columns {} and {})",
                              name, collection_, column_of[it->second] + 1, col + 1));
    }
    column_of[it->second] = col;
    columns_.push_back(it->second);
  }
  order_.resize(columns_.size());
  std::iota(order_.begin(), order_.end(), 0);
  auto pointer = [&](size_t col) -> const doc::Pointer& { return fields_[columns_[col]].pointer; };
  std::stable_sort(order_.begin(), order_.end(), [&](size_t a, size_t b) {
    return LocationBefore(pointer(a), pointer(b));
  });
  for (size_t i = 1; i < order_.size(); ++i) {
    if (pointer(order_[i - 1]) == pointer(order_[i])) {
      return Fail(fmt::format("fields `{}` and `{}` in the header of collection `{}` both name "
                              "the location `{}`",
                              fields_[columns_[order_[i - 1]]].field,
                              fields_[columns_[order_[i]]].field, collection_,
                              pointer(order_[i]).ToString()));
    }
  }
}

void CsvConverter::Impl::ConvertRow() {
  if (ends_.size() > columns_.size()) {
    return Fail(fmt::format("{} has {} cells but the header has {}", Where(), ends_.size(),
                            columns_.size()));
  }
  doc::Value document(rapidjson::kObjectType);
  std::string why;
  for (size_t col : order_) {
    if (col >= ends_.size()) continue;  // a short row: the location stays absent
    const CsvField& field = fields_[columns_[col]];
    std::string_view cell = Cell(col);
    if (auto bad = FindInvalidUtf8(cell)) {
      return FailField(field, fmt::format("the cell is not valid UTF-8 (at byte offset {})", *bad));
    }
    if (field.pointer.empty()) {
      // The whole document: the base that the other cells are applied to.
      if (cell.empty()) continue;
      rapidjson::Document parsed(allocator_);
      doc::ParseError error;
      if (!doc::ParseDocument(cell, &parsed, &error)) {
        return FailField(field, fmt::format("{} is not a JSON object ({})", Quoted(cell),
                                            error.message));
      }
      if (!parsed.IsObject()) {
        return FailField(field, fmt::format("{} is not a JSON object", Quoted(cell)));
      }
      document.Swap(parsed);
      continue;
    }
    doc::Value value;
    if (!Convert(cell, field.types, &value, &why)) return FailField(field, why);
    doc::Value* location = doc::Create(document, field.pointer, *allocator_);
    if (!location) {
      return FailField(field, "the location cannot be created: a parent is not an object, or "
                              "an array index is past the end");
    }
    *location = value;  // moves
  }
  Result<bool> emitted = (*emit_)(rows_ + 1, document);
  if (!emitted.ok()) {
    Error e = emitted.error();
    // A problem with the document (validation, reduction) is located like ours.
    if (e.code == Error::Code::kUser) e.message = fmt::format("{}: {}", Where(), e.message);
    Fail(std::move(e));
  }
}

bool CsvConverter::Impl::Convert(std::string_view cell, uint8_t types, doc::Value* out,
                                 std::string* why) {
  if (cell.empty()) {
    if (types & kNull) {
      out->SetNull();
    } else if (types & kString) {
      out->SetString("", 0, *allocator_);
    } else {
      *why = "the cell is empty but the field does not allow null or string";
      return false;
    }
    return true;
  }
  bool integral = false;
  bool number = (types & (kInteger | kNumber)) && IsJsonNumber(cell, &integral);
  bool in_range = number && doc::ReadNumber(cell, out);  // false beyond the range of a double
  if (in_range && ((types & kNumber) || doc::IsInteger(*out))) return true;
  bool too_big_integer = in_range && integral;  // ReadNumber made a double of it
  out->SetNull();
  if ((types & kBoolean) && (cell == "true" || cell == "false")) {
    out->SetBool(cell == "true");
    return true;
  }
  if (types & kString) {
    out->SetString(cell.data(), static_cast<rapidjson::SizeType>(cell.size()), *allocator_);
    return true;
  }
  std::string json_error;
  if (types & (kObject | kArray)) {
    rapidjson::Document parsed(allocator_);
    doc::ParseError error;
    if (!doc::ParseDocument(cell, &parsed, &error)) {
      json_error = " (" + error.message + ")";
    } else if ((parsed.IsObject() && (types & kObject)) || (parsed.IsArray() && (types & kArray))) {
      out->Swap(parsed);
      return true;
    }
  }
  uint8_t allowed = types & ~kNull;
  std::string quoted = Quoted(cell);
  if (allowed == kInteger) {
    *why = too_big_integer ? quoted + " is outside the 64-bit integer range"
                           : quoted + " is not an integer";
  } else if (allowed == kNumber || allowed == (kInteger | kNumber)) {
    *why = number ? quoted + " is outside the range of a double" : quoted + " is not a number";
  } else if (allowed == kBoolean) {
    *why = quoted + " is not a boolean";
  } else if (allowed == kObject) {
    *why = quoted + " is not a JSON object" + json_error;
  } else if (allowed == kArray) {
    *why = quoted + " is not a JSON array" + json_error;
  } else if (allowed == 0) {
    *why = types ? quoted + " is not empty but the field allows only null"
                 : quoted + " is not allowed: the field's location can hold no value";
  } else {
    *why = fmt::format("{} is not one of the allowed types ({}){}", quoted, TypeList(allowed),
                       json_error);
  }
  return false;
}

std::string CsvConverter::Impl::Where() const {
  // Before the first cell of a row arrives, the row starts at the current line.
  uint64_t line = ends_.empty() ? line_ : row_line_;
  if (!has_header_) return fmt::format("the header (line {})", line);
  return fmt::format("row {} (line {})", rows_ + 1, line);
}

void CsvConverter::Impl::FailField(const CsvField& f, std::string_view cause) {
  std::string location = f.pointer.empty() ? "the whole document" : f.pointer.ToString();
  Fail(fmt::format("{}, field `{}` ({}): {}", Where(), f.field, location, cause));
}

CsvConverter::CsvConverter(CsvDialect dialect, std::string collection, std::vector<CsvField> fields)
    : impl_(std::make_unique<Impl>(dialect, std::move(collection), std::move(fields))) {}

std::unique_ptr<CsvConverter> CsvConverter::AcceptingAnyHeader(CsvDialect dialect, std::string origin,
                                                               std::vector<CsvField> fields) {
  auto c = std::make_unique<CsvConverter>(dialect, std::move(origin), std::move(fields));
  c->impl_->any_header_ = true;
  return c;
}

CsvConverter::~CsvConverter() = default;

Result<bool> CsvConverter::Feed(std::string_view bytes, doc::Allocator& allocator,
                                const Emit& emit) {
  Impl& m = *impl_;
  if (m.finished_) return Error::Internal("CsvConverter::Feed called after Finish");
  if (m.error_) return *m.error_;
  m.allocator_ = &allocator;
  m.emit_ = &emit;
  m.Input(bytes);
  m.allocator_ = nullptr;
  m.emit_ = nullptr;
  if (m.error_) return *m.error_;
  return true;
}

Result<bool> CsvConverter::Finish(doc::Allocator& allocator, const Emit& emit) {
  Impl& m = *impl_;
  if (m.finished_) return Error::Internal("CsvConverter::Finish called twice");
  if (m.error_) return *m.error_;
  m.allocator_ = &allocator;
  m.emit_ = &emit;
  m.End();
  m.finished_ = true;
  m.allocator_ = nullptr;
  m.emit_ = nullptr;
  if (m.error_) return *m.error_;
  return true;
}

std::string CsvConverter::place() const { return impl_->Where(); }

}  // namespace flow::runtime
