// Tests of src/runtime/csv: CSV/TSV rows to documents (SPEC section 7). Every conversion is
// run twice, with the whole input in one block and one byte per block, and must agree.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "runtime/csv.h"

using namespace flow;
using runtime::CsvConverter;
using runtime::CsvDialect;
using runtime::CsvField;

namespace {

// schema::Types bits.
constexpr uint8_t kNull = 1, kBoolean = 2, kInteger = 4, kNumber = 8, kString = 16,
                  kObject = 32, kArray = 64;

CsvField Field(const char* name, const char* pointer, uint8_t types) {
  std::string why;
  auto ptr = doc::Pointer::Parse(pointer, &why);
  REQUIRE(ptr);
  return CsvField{name, *ptr, types};
}

struct Output {
  std::string json;   // one JSON line per document, prefixed by its row number
  std::string error;  // the error that ended the conversion, if any
};

// Feeds `input` in blocks of `block` bytes (0: all at once), then finishes.
Output ConvertIn(CsvDialect dialect, const std::vector<CsvField>& fields, std::string_view input,
                 size_t block) {
  CsvConverter converter(dialect, "acme/orders", fields);
  rapidjson::Document arena;
  Output out;
  CsvConverter::Emit emit = [&](uint64_t row, doc::Value& document) -> Result<bool> {
    out.json += std::to_string(row) + ": ";
    doc::AppendJson(document, &out.json);
    out.json += "\n";
    return true;
  };
  size_t step = block ? block : std::max<size_t>(input.size(), 1);
  for (size_t i = 0; i < input.size(); i += step) {
    auto fed = converter.Feed(input.substr(i, step), arena.GetAllocator(), emit);
    if (!fed) {
      out.error = fed.error().message;
      return out;
    }
  }
  auto finished = converter.Finish(arena.GetAllocator(), emit);
  if (!finished) out.error = finished.error().message;
  return out;
}

// Converts whole and byte by byte, checks that both agree, and returns the result.
Output Convert(const std::vector<CsvField>& fields, std::string_view input,
               CsvDialect dialect = CsvDialect::kCsv) {
  Output whole = ConvertIn(dialect, fields, input, 0);
  Output bytewise = ConvertIn(dialect, fields, input, 1);
  CHECK(whole.json == bytewise.json);
  CHECK(whole.error == bytewise.error);
  return whole;
}

// The JSON of a conversion that must succeed.
std::string Json(const std::vector<CsvField>& fields, std::string_view input,
                 CsvDialect dialect = CsvDialect::kCsv) {
  Output out = Convert(fields, input, dialect);
  CHECK_MESSAGE(out.error.empty(), out.error);
  return out.json;
}

// The error of a conversion that must fail.
std::string ErrorOf(const std::vector<CsvField>& fields, std::string_view input,
                    CsvDialect dialect = CsvDialect::kCsv) {
  Output out = Convert(fields, input, dialect);
  CHECK_MESSAGE(!out.error.empty(), out.json);
  return out.error;
}

std::vector<CsvField> OrderFields() {
  return {Field("id", "/id", kInteger), Field("name", "/name", kString),
          Field("total", "/total", kNumber), Field("paid", "/paid", kBoolean)};
}

}  // namespace

TEST_CASE("csv: rows become documents, converted by each location's types") {
  const std::vector<CsvField> orders = OrderFields();
  CHECK(Json(orders, "id,name,total,paid\n1,Ann,9.5,true\n2,Bob,10,false\n") ==
        "1: {\"id\":1,\"name\":\"Ann\",\"paid\":true,\"total\":9.5}\n"
        "2: {\"id\":2,\"name\":\"Bob\",\"paid\":false,\"total\":10}\n");
  // Members follow location order, not column order: every column order gives the same bytes.
  CHECK(Json(orders, "total,paid,name,id\n9.5,true,Ann,1\n") ==
        "1: {\"id\":1,\"name\":\"Ann\",\"paid\":true,\"total\":9.5}\n");
  // Columns in any order; a header alone gives no documents; no final line terminator.
  CHECK(Json(orders, "paid,id\ntrue,7") == "1: {\"id\":7,\"paid\":true}\n");
  CHECK(Json(orders, "id,name\n").empty());
  // Spaces are data (RFC 4180): a string keeps them, an integer refuses them.
  CHECK(Json(orders, "name\n  Ann \n") == "1: {\"name\":\"  Ann \"}\n");
  CHECK(ErrorOf(orders, "id\n 1\n") == "row 1 (line 2), field `id` (/id): ` 1` is not an integer");
}

TEST_CASE("csv: nested locations are created, parents before children") {
  std::vector<CsvField> fields = {
      Field("b", "/a/b", kInteger), Field("c", "/a/c", kString),
      Field("deep", "/x/y/z", kBoolean), Field("a", "/a", kObject),
      Field("first", "/list/0", kInteger), Field("second", "/list/1", kInteger),
      Field("tenth", "/list/10", kInteger)};
  CHECK(Json(fields, "b,c,deep\n1,x,true\n") ==
        "1: {\"a\":{\"b\":1,\"c\":\"x\"},\"x\":{\"y\":{\"z\":true}}}\n");
  // A parent's own column is applied before its children's, whatever the column order.
  CHECK(Json(fields, "c,a,b\nx,\"{\"\"k\"\":0}\",1\n") ==
        "1: {\"a\":{\"k\":0,\"b\":1,\"c\":\"x\"}}\n");
  // Array elements are created in index order.
  CHECK(Json(fields, "second,first\n2,1\n") == "1: {\"list\":[1,2]}\n");
  CHECK(ErrorOf(fields, "first,tenth\n1,2\n") ==
        "row 1 (line 2), field `tenth` (/list/10): the location cannot be created: a parent is "
        "not an object, or an array index is past the end");
}

TEST_CASE("csv: integers, numbers, booleans and strings by the allowed types") {
  std::vector<CsvField> fields = {
      Field("i", "/i", kInteger),
      Field("n", "/n", kNumber),
      Field("in", "/in", kInteger | kNumber),
      Field("is", "/is", kInteger | kString),
      Field("b", "/b", kBoolean),
      Field("bs", "/bs", kBoolean | kString),
      Field("ib", "/ib", kInteger | kBoolean),
      Field("s", "/s", kString),
      Field("any", "/any", 127),
  };
  CHECK(Json(fields, "i,n,in,is,b,bs,ib,s,any\n"
                     "-42,1.5e3,7,x,false,true,true,123,12\n") ==
        "1: {\"any\":12,\"b\":false,\"bs\":true,\"i\":-42,\"ib\":true,\"in\":7,\"is\":\"x\","
        "\"n\":1500.0,\"s\":\"123\"}\n");
  // Integer text in a number-only field stays an integer, as it would in JSON.
  CHECK(Json(fields, "n,in\n5,2.25\n") == "1: {\"in\":2.25,\"n\":5}\n");
  // The whole unsigned range; JSON syntax (no '+', no leading zeros) or else a string.
  CHECK(Json(fields, "i,is\n18446744073709551615,-9223372036854775808\n") ==
        "1: {\"i\":18446744073709551615,\"is\":-9223372036854775808}\n");
  CHECK(Json(fields, "is\n007\n") == "1: {\"is\":\"007\"}\n");
  CHECK(Json(fields, "is\n+7\n") == "1: {\"is\":\"+7\"}\n");
  CHECK(Json(fields, "bs,any\nTrue,true\n") == "1: {\"any\":true,\"bs\":\"True\"}\n");
  CHECK(Json(fields, "any,s\nnull,null\n") == "1: {\"any\":\"null\",\"s\":\"null\"}\n");

  CHECK(ErrorOf(fields, "i\nabc\n") == "row 1 (line 2), field `i` (/i): `abc` is not an integer");
  CHECK(ErrorOf(fields, "i\n1.0\n") == "row 1 (line 2), field `i` (/i): `1.0` is not an integer");
  CHECK(ErrorOf(fields, "i\n+1\n") == "row 1 (line 2), field `i` (/i): `+1` is not an integer");
  CHECK(ErrorOf(fields, "n\n1.\n") == "row 1 (line 2), field `n` (/n): `1.` is not a number");
  CHECK(ErrorOf(fields, "n\nNaN\n") == "row 1 (line 2), field `n` (/n): `NaN` is not a number");
  CHECK(ErrorOf(fields, "in\n1e999\n") ==
        "row 1 (line 2), field `in` (/in): `1e999` is outside the range of a double");
  CHECK(ErrorOf(fields, "b\nyes\n") == "row 1 (line 2), field `b` (/b): `yes` is not a boolean");
  CHECK(ErrorOf(fields, "ib\nx\n") ==
        "row 1 (line 2), field `ib` (/ib): `x` is not one of the allowed types (boolean | integer)");
  // Errors count data rows from 1 and lines from 1.
  CHECK(ErrorOf(fields, "i\n1\n2\nthree\n") ==
        "row 3 (line 4), field `i` (/i): `three` is not an integer");
  // Long cells are cut in messages.
  std::string long_cell(100, 'x');
  CHECK(ErrorOf(fields, "i\n" + long_cell + "\n") ==
        "row 1 (line 2), field `i` (/i): `" + std::string(64, 'x') + "…` is not an integer");
}

TEST_CASE("csv: integers beyond 64 bits") {
  std::vector<CsvField> fields = {Field("i", "/i", kInteger), Field("n", "/n", kInteger | kNumber),
                                  Field("s", "/s", kInteger | kString)};
  CHECK(Json(fields, "n,s\n18446744073709551616,-9223372036854775809\n") ==
        "1: {\"n\":18446744073709553000.0,\"s\":\"-9223372036854775809\"}\n");
  CHECK(ErrorOf(fields, "i\n18446744073709551616\n") ==
        "row 1 (line 2), field `i` (/i): `18446744073709551616` is outside the 64-bit integer "
        "range");
  CHECK(ErrorOf(fields, "i\n-9223372036854775809\n") ==
        "row 1 (line 2), field `i` (/i): `-9223372036854775809` is outside the 64-bit integer "
        "range");
}

TEST_CASE("csv: numbers RapidJSON 1.1 misreads are read exactly") {
  // `0e-23` became -1.75e-192 (found by fuzz/csv_feed; see doc::ReadNumber).
  std::vector<CsvField> fields = {Field("a", "/a", kNumber), Field("b", "/b", kNumber),
                                  Field("c", "/c", kNumber), Field("d", "/d", kNumber)};
  CHECK(Json(fields, "a,b,c,d\n0e-23,-0e300,0.184467440737095516159,1e-400\n") ==
        "1: {\"a\":0.0,\"b\":-0.0,\"c\":0.1844674407370955,\"d\":0.0}\n");
  // RapidJSON read this one, which rounds past the largest double, as infinity.
  CHECK(
      ErrorOf(fields, "a\n1.7976931348623159e308\n") ==
      "row 1 (line 2), field `a` (/a): `1.7976931348623159e308` is outside the range of a double");
}

TEST_CASE("csv: empty cells are null, else the empty string, else an error") {
  std::vector<CsvField> fields = {
      Field("n", "/n", kNull | kInteger), Field("s", "/s", kString | kInteger),
      Field("ns", "/ns", kNull | kString), Field("i", "/i", kInteger),
      Field("null", "/null", kNull)};
  CHECK(Json(fields, "n,s,ns\n,,\n") == "1: {\"n\":null,\"ns\":null,\"s\":\"\"}\n");
  // A quoted empty cell is empty too.
  CHECK(Json(fields, "s,n\n\"\",\"\"\n") == "1: {\"n\":null,\"s\":\"\"}\n");
  CHECK(ErrorOf(fields, "n,i\n1,\n") ==
        "row 1 (line 2), field `i` (/i): the cell is empty but the field does not allow null or "
        "string");
  // A blank line has no cells and is skipped; `""` is one empty cell.
  CHECK(Json(fields, "null\n\n\"\"\n") == "1: {\"null\":null}\n");
  CHECK(ErrorOf(fields, "null\nx\n") ==
        "row 1 (line 2), field `null` (/null): `x` is not empty but the field allows only null");
}

TEST_CASE("csv: short rows leave locations absent, long rows fail") {
  const std::vector<CsvField> orders = OrderFields();
  CHECK(Json(orders, "id,name,paid\n1\n2,Bob\n3,Cy,true\n") ==
        "1: {\"id\":1}\n2: {\"id\":2,\"name\":\"Bob\"}\n3: {\"id\":3,\"name\":\"Cy\",\"paid\":true}\n");
  CHECK(ErrorOf(orders, "id,name\n1,Ann\n2,Bob,x,y\n") == "row 2 (line 3) has 4 cells but the header has 2");
  // Blank lines are skipped but counted as lines.
  CHECK(Json(orders, "\nid\n\n1\r\n\r\n\n2\n\n") == "1: {\"id\":1}\n2: {\"id\":2}\n");
  CHECK(ErrorOf(orders, "\nid\n\n1\r\n\r\n\nx,y\n") == "row 2 (line 7) has 2 cells but the header has 1");
}

TEST_CASE("csv: the header names projection fields") {
  const std::vector<CsvField> orders = OrderFields();
  CHECK(ErrorOf(orders, "id,nmae\n1,Ann\n") ==
        "unknown field `nmae` in the header of collection `acme/orders`; did you mean `name`?");
  CHECK(ErrorOf(orders, "id,zzzzzz\n") ==
        "unknown field `zzzzzz` in the header of collection `acme/orders`");
  CHECK(ErrorOf(orders, "id,name,id\n") ==
        "field `id` appears twice in the header of collection `acme/orders` (columns 1 and 3)");
  std::vector<CsvField> aliases = {Field("id", "/id", kInteger), Field("key", "/id", kInteger)};
  CHECK(Json(aliases, "key\n5\n") == "1: {\"id\":5}\n");
  CHECK(ErrorOf(aliases, "id,key\n") ==
        "fields `id` and `key` in the header of collection `acme/orders` both name the location "
        "`/id`");
  // A trailing separator names a field without a name.
  CHECK(ErrorOf(orders, "id,\n") == "unknown field `` in the header of collection `acme/orders`");
  CHECK(ErrorOf(orders, "") == "no header row in the input of collection `acme/orders`");
  CHECK(ErrorOf(orders, "\r\n\n") == "no header row in the input of collection `acme/orders`");
  CHECK(ErrorOf(orders, "\xEF\xBB\xBF") == "no header row in the input of collection `acme/orders`");
  CHECK(ErrorOf(orders, "id,\"na\xFFme\"\n") ==
        "column 2 of the header of collection `acme/orders` is not valid UTF-8");
}

TEST_CASE("csv: quoted cells hold separators, line breaks and doubled quotes") {
  std::vector<CsvField> fields = {Field("id", "/id", kInteger), Field("text", "/text", kString)};
  CHECK(Json(fields, "\"id\",text\n1,\"a, b\"\n2,\"say \"\"hi\"\"\"\n3,\"two\nlines\"\n4,\"\"\"\"\n") ==
        "1: {\"id\":1,\"text\":\"a, b\"}\n"
        "2: {\"id\":2,\"text\":\"say \\\"hi\\\"\"}\n"
        "3: {\"id\":3,\"text\":\"two\\nlines\"}\n"
        "4: {\"id\":4,\"text\":\"\\\"\"}\n");
  // Lines count the line breaks inside quoted cells: row 3 starts on line 7.
  CHECK(ErrorOf(fields, "id,text\n1,\"a\nb\"\n2,\"c\r\nd\ne\"\nx,y\n") ==
        "row 3 (line 7), field `id` (/id): `x` is not an integer");
  // A CRLF within a quoted cell is kept as it is.
  CHECK(Json(fields, "text\r\n\"a\r\nb\"\r\n") == "1: {\"text\":\"a\\r\\nb\"}\n");
}

TEST_CASE("csv: malformed and unterminated quoting") {
  std::vector<CsvField> fields = {Field("id", "/id", kInteger), Field("text", "/text", kString)};
  const std::string malformed =
      ": malformed quoting: a quote inside an unquoted cell, or text after the closing quote of "
      "a cell (a quote within a quoted cell is doubled)";
  CHECK(ErrorOf(fields, "id,text\n1,ab\"c\"\n") == "row 1 (line 2)" + malformed);
  CHECK(ErrorOf(fields, "id,text\n1,x\n2,\"ab\"c\n") == "row 2 (line 3)" + malformed);
  CHECK(ErrorOf(fields, "id,text\n1,\"a\nb\" \n") == "row 1 (line 2)" + malformed);
  CHECK(ErrorOf(fields, "\"id\"x,text\n") == "the header (line 1)" + malformed);
  // The documents before the error were emitted.
  Output out = Convert(fields, "id,text\n1,x\n2,\"open\n\nstill open");
  CHECK(out.json == "1: {\"id\":1,\"text\":\"x\"}\n");
  CHECK(out.error == "row 2 (line 3): a quoted cell is not closed before the end of the input");
  CHECK(ErrorOf(fields, "id,text\n\"1") ==
        "row 1 (line 2): a quoted cell is not closed before the end of the input");
}

TEST_CASE("csv: CRLF line endings and a byte order mark") {
  const std::vector<CsvField> orders = OrderFields();
  CHECK(Json(orders, "\xEF\xBB\xBFid,name\r\n1,Ann\r\n2,Bob") ==
        "1: {\"id\":1,\"name\":\"Ann\"}\n2: {\"id\":2,\"name\":\"Bob\"}\n");
  CHECK(ErrorOf(orders, "\xEF\xBB\xBFid\r\n1\r\n\r\nx\r\n") ==
        "row 2 (line 4), field `id` (/id): `x` is not an integer");
  // Only a BOM at the very start is one: elsewhere it is data (U+FEFF).
  CHECK(Json(orders, "name\n\xEF\xBB\xBFx\n") == "1: {\"name\":\"\xEF\xBB\xBFx\"}\n");
}

TEST_CASE("csv: cells must be valid UTF-8") {
  const std::vector<CsvField> orders = OrderFields();
  CHECK(Json(orders, "name\nJosé 😀\n") == "1: {\"name\":\"José 😀\"}\n");
  CHECK(ErrorOf(orders, "id,name\n1,ab\xC3\n") ==
        "row 1 (line 2), field `name` (/name): the cell is not valid UTF-8 (at byte offset 2)");
  CHECK(ErrorOf(orders, "id,name\n1,\xED\xA0\x80\n") ==
        "row 1 (line 2), field `name` (/name): the cell is not valid UTF-8 (at byte offset 0)");
  CHECK(ErrorOf(orders, "\xEF\xBBid\n") ==
        "column 1 of the header of collection `acme/orders` is not valid UTF-8");
}

TEST_CASE("csv: objects and arrays are JSON cells") {
  std::vector<CsvField> fields = {Field("o", "/o", kObject), Field("a", "/a", kArray),
                                  Field("oa", "/oa", kNull | kObject | kArray),
                                  Field("so", "/so", kString | kObject)};
  CHECK(Json(fields, "o,a,oa,so\n\"{\"\"k\"\": [1, 2]}\",[],\"[{}]\",{}\n") ==
        "1: {\"a\":[],\"o\":{\"k\":[1,2]},\"oa\":[{}],\"so\":\"{}\"}\n");
  CHECK(ErrorOf(fields, "o\n[]\n") == "row 1 (line 2), field `o` (/o): `[]` is not a JSON object");
  CHECK(ErrorOf(fields, "a\n\"[1,\"\n") ==
        "row 1 (line 2), field `a` (/a): `[1,` is not a JSON array (invalid JSON: Invalid value.)");
  CHECK(ErrorOf(fields, "oa\n3\n") ==
        "row 1 (line 2), field `oa` (/oa): `3` is not one of the allowed types (object | array)");
  // A NUL byte after the JSON value of a cell is an error, not the end of the cell (the
  // rest was dropped: {"k":1} was read).
  std::string nul = ErrorOf(fields, std::string("o\n\"{\"\"k\"\":1}\0{\"\"j\"\":2}\"\n", 24));
  CHECK(nul.find("row 1 (line 2), field `o` (/o): ") == 0);
  CHECK(nul.find("invalid JSON: a NUL byte") != std::string::npos);
}

TEST_CASE("csv: a flow_document column is the base of the document") {
  std::vector<CsvField> fields = {Field("flow_document", "", kObject),
                                  Field("id", "/id", kInteger), Field("b", "/a/b", kString)};
  // Applied first, whatever its column: the other cells override and extend it.
  CHECK(Json(fields, "id,flow_document,b\n"
                     "7,\"{\"\"id\"\": 1, \"\"a\"\": {\"\"c\"\": true}, \"\"z\"\": null}\",x\n"
                     "8,,y\n") ==
        "1: {\"id\":7,\"a\":{\"c\":true,\"b\":\"x\"},\"z\":null}\n"
        "2: {\"a\":{\"b\":\"y\"},\"id\":8}\n");
  CHECK(ErrorOf(fields, "flow_document\n[1]\n") ==
        "row 1 (line 2), field `flow_document` (the whole document): `[1]` is not a JSON object");
  CHECK(ErrorOf(fields, "flow_document\n{\n") ==
        "row 1 (line 2), field `flow_document` (the whole document): `{` is not a JSON object "
        "(invalid JSON: Missing a name for object member.)");
}

TEST_CASE("csv: tsv cells are split on tabs, with backslash escapes") {
  std::vector<CsvField> fields = {Field("id", "/id", kInteger), Field("text", "/text", kString),
                                  Field("n", "/n", kNull | kNumber)};
  CHECK(Json(fields, "id\ttext\tn\n1\ta\\tb\\nc\\rd\\\\e\t2.5\n", CsvDialect::kTsv) ==
        "1: {\"id\":1,\"n\":2.5,\"text\":\"a\\tb\\nc\\rd\\\\e\"}\n");
  // Quotes are data; other backslashes are kept; a CR before LF is dropped, others are data.
  CHECK(Json(fields, "\xEF\xBB\xBFtext\tn\r\n\"a,b\"\t\r\nC:\\dir\\x\\\r\n\r\nx\ry\n",
             CsvDialect::kTsv) ==
        "1: {\"n\":null,\"text\":\"\\\"a,b\\\"\"}\n"
        "2: {\"text\":\"C:\\\\dir\\\\x\\\\\"}\n"
        "3: {\"text\":\"x\\ry\"}\n");
  CHECK(ErrorOf(fields, "id\ttext\n1\tx\n\n2\tx\ty\n", CsvDialect::kTsv) ==
        "row 2 (line 4) has 3 cells but the header has 2");
  CHECK(ErrorOf(fields, "id\tnope\n", CsvDialect::kTsv) ==
        "unknown field `nope` in the header of collection `acme/orders`");
  CHECK(ErrorOf(fields, "id\n1\nx", CsvDialect::kTsv) ==
        "row 2 (line 3), field `id` (/id): `x` is not an integer");
  CHECK(ErrorOf(fields, "text\n\xFF\n", CsvDialect::kTsv) ==
        "row 1 (line 2), field `text` (/text): the cell is not valid UTF-8 (at byte offset 0)");
  CHECK(ErrorOf(fields, "", CsvDialect::kTsv) ==
        "no header row in the input of collection `acme/orders`");
}

TEST_CASE("csv: an error from emit stops the conversion") {
  const std::vector<CsvField> orders = OrderFields();
  CsvConverter converter(CsvDialect::kCsv, "acme/orders", orders);
  rapidjson::Document arena;
  int calls = 0;
  CsvConverter::Emit emit = [&](uint64_t row, doc::Value&) -> Result<bool> {
    ++calls;
    if (row == 2) return Error::Env("disk full");
    return true;
  };
  auto fed = converter.Feed("id\n1\n2\n3\n", arena.GetAllocator(), emit);
  REQUIRE_FALSE(fed.ok());
  CHECK(fed.error().message == "disk full");
  CHECK(fed.error().code == Error::Code::kEnvironment);
  CHECK(calls == 2);
  // The converter stays failed.
  auto again = converter.Feed("4\n", arena.GetAllocator(), emit);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().message == "disk full");
  CHECK(calls == 2);
}

TEST_CASE("csv: a user error from emit is located by row and line") {
  const std::vector<CsvField> orders = OrderFields();
  CsvConverter converter(CsvDialect::kCsv, "acme/orders", orders);
  rapidjson::Document arena;
  CsvConverter::Emit emit = [&](uint64_t row, doc::Value&) -> Result<bool> {
    if (row == 2) return Error::User("document does not validate");
    return true;
  };
  auto fed = converter.Feed("id\n1\n\"2\"\n3\n", arena.GetAllocator(), emit);
  REQUIRE_FALSE(fed.ok());
  CHECK(fed.error().message == "row 2 (line 3): document does not validate");
  CHECK(fed.error().code == Error::Code::kUser);
}

TEST_CASE("csv: any split of the input gives the same documents") {
  std::vector<CsvField> fields = {
      Field("flow_document", "", kObject), Field("id", "/id", kInteger),
      Field("text", "/x/text", kNull | kString), Field("n", "/x/n", kNumber | kInteger),
      Field("ok", "/ok", kBoolean | kNull)};
  const std::string csv =
      "\xEF\xBB\xBF" "id,text,n,ok,flow_document\r\n"
      "1,\"multi\r\nline, \"\"quoted\"\"\",1.25,true,\"{\"\"y\"\":[1]}\"\r\n"
      "\r\n"
      "2,,18446744073709551616,,\r\n"
      "3,plain,-7\r\n"
      "4,\"ünïcødé\",0,false,{}";
  const std::string expected =
      "1: {\"y\":[1],\"id\":1,\"ok\":true,\"x\":{\"n\":1.25,\"text\":\"multi\\r\\nline, "
      "\\\"quoted\\\"\"}}\n"
      "2: {\"id\":2,\"ok\":null,\"x\":{\"n\":18446744073709553000.0,\"text\":null}}\n"
      "3: {\"id\":3,\"x\":{\"n\":-7,\"text\":\"plain\"}}\n"
      "4: {\"id\":4,\"ok\":false,\"x\":{\"n\":0,\"text\":\"ünïcødé\"}}\n";
  for (size_t block : {0, 1, 2, 3, 5, 7, 64}) {
    CAPTURE(block);
    Output out = ConvertIn(CsvDialect::kCsv, fields, csv, block);
    CHECK(out.error == "");
    CHECK(out.json == expected);
  }
  const std::string tsv = "id\ttext\n1\ta\\tb\r\n2\t\\\\\n3\tlast";
  const std::string tsv_expected =
      "1: {\"id\":1,\"x\":{\"text\":\"a\\tb\"}}\n2: {\"id\":2,\"x\":{\"text\":\"\\\\\"}}\n"
      "3: {\"id\":3,\"x\":{\"text\":\"last\"}}\n";
  for (size_t block : {0, 1, 2, 3}) {
    CAPTURE(block);
    Output out = ConvertIn(CsvDialect::kTsv, fields, tsv, block);
    CHECK(out.error == "");
    CHECK(out.json == tsv_expected);
  }
}
