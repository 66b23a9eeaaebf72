// Tests of src/schema/infer: schemas inferred from sample documents, key suggestions and
// widenings; and of CSV conversion of a header not known in advance (runtime/csv).
#include "schema/infer.h"

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "doc/value.h"
#include "runtime/csv.h"

using namespace flow;
using schema::SchemaInferrer;

namespace {

void AddJson(SchemaInferrer& inf, const char* json) {
  rapidjson::Document d;
  d.Parse(json);
  REQUIRE(!d.HasParseError());
  inf.Add(d);
}

std::string SchemaText(const SchemaInferrer& inf) {
  rapidjson::Document s;
  inf.WriteSchema(&s);
  std::string out;
  doc::AppendJson(s, &out);
  return out;
}

}  // namespace

TEST_CASE("infer: types, nullability, required properties, nesting") {
  SchemaInferrer inf;
  AddJson(inf, R"({"id": 1, "amount": 5, "note": null, "tags": ["a"], "ship": {"city": "Oslo"}})");
  AddJson(
      inf,
      R"({"id": 2, "amount": 5.5, "note": "x", "tags": [], "ship": {"city": "Rome", "zip": 101}, "gift": true})");
  CHECK(inf.documents() == 2);
  CHECK(
      SchemaText(inf) ==
      R"({"type":"object","properties":{"id":{"type":"integer"},"amount":{"type":"number"},)"
      R"("note":{"type":["string","null"]},"tags":{"type":"array","items":{"type":"string"}},)"
      R"("ship":{"type":"object","properties":{"city":{"type":"string"},"zip":{"type":"integer"}},)"
      R"("required":["city"]},"gift":{"type":"boolean"}},"required":["id","amount","note","tags","ship"]})");
}

TEST_CASE("infer: formats and enums (at most 8 distinct strings over at least 20 values)") {
  SchemaInferrer inf;
  const char* statuses[] = {"placed", "paid", "shipped"};
  for (int i = 0; i < 20; ++i) {
    std::string doc = R"({"id": ")" + std::string("0f8fad5b-d9cb-469f-a165-70867728950") +
                      std::to_string(i % 10) + R"(", "status": ")" + statuses[i % 3] +
                      R"(", "at": "2024-05-01T10:00:0)" + std::to_string(i % 10) +
                      R"(Z", "day": "2024-02-29", "mail": "a.b@example.com", "name": "n)" +
                      std::to_string(i) + R"("})";
    AddJson(inf, doc.c_str());
  }
  std::string s = SchemaText(inf);
  CHECK(s.find(R"("id":{"type":"string","format":"uuid"})") != std::string::npos);
  CHECK(s.find(R"("status":{"type":"string","enum":["paid","placed","shipped"]})") !=
        std::string::npos);
  CHECK(s.find(R"("at":{"type":"string","format":"date-time"})") != std::string::npos);
  CHECK(s.find(R"("day":{"type":"string","format":"date"})") != std::string::npos);
  CHECK(s.find(R"("mail":{"type":"string","format":"email"})") != std::string::npos);
  CHECK(s.find(R"("name":{"type":"string"})") != std::string::npos);  // 20 distinct: no enum

  SchemaInferrer few;  // fewer than 20 values: no enum
  for (int i = 0; i < 19; ++i) AddJson(few, R"({"status": "paid"})");
  CHECK(SchemaText(few).find("enum") == std::string::npos);
}

TEST_CASE("infer: format checks") {
  CHECK(SchemaInferrer::IsDateTime("2024-05-01T10:00:00Z"));
  CHECK(SchemaInferrer::IsDateTime("2024-05-01T10:00:00.123+02:00"));
  CHECK_FALSE(SchemaInferrer::IsDateTime("2024-05-01 10:00:00"));
  CHECK_FALSE(SchemaInferrer::IsDateTime("2024-13-01T10:00:00Z"));
  CHECK(SchemaInferrer::IsDate("2024-02-29"));
  CHECK_FALSE(SchemaInferrer::IsDate("2023-02-29"));
  CHECK(SchemaInferrer::IsUuid("0F8FAD5B-D9CB-469F-A165-70867728950E"));
  CHECK_FALSE(SchemaInferrer::IsUuid("0f8fad5b-d9cb-469f-a165-70867728950"));
  CHECK(SchemaInferrer::IsEmail("first.last+tag@mail.example.org"));
  CHECK_FALSE(SchemaInferrer::IsEmail("user@localhost"));
  CHECK_FALSE(SchemaInferrer::IsEmail("a b@example.com"));
}

TEST_CASE("infer: key suggestion") {
  SUBCASE("a unique id-like integer, explained") {
    SchemaInferrer inf;
    for (int i = 0; i < 2000; ++i) {
      AddJson(inf, (R"({"status": "s", "order_id": )" + std::to_string(i) + "}").c_str());
    }
    auto k = inf.SuggestKey();
    CHECK(k.pointers == std::vector<std::string>{"/order_id"});
    CHECK(k.unique);
    CHECK(k.explanation ==
          "`/order_id`: present in every document, unique over the 2,000 documents, an integer");
  }
  SUBCASE("a compound key when no property is unique") {
    SchemaInferrer inf;
    for (int i = 0; i < 10; ++i) {
      AddJson(inf, (R"({"store": )" + std::to_string(i % 2) + R"(, "day": "d)" +
                    std::to_string(i / 2) + R"("})")
                       .c_str());
    }
    auto k = inf.SuggestKey();
    CHECK(k.pointers == std::vector<std::string>{"/store", "/day"});
    CHECK(k.unique);
  }
  SUBCASE("nothing unique, and nothing present in every document") {
    SchemaInferrer inf;
    AddJson(inf, R"({"a": 1, "b": 1})");
    AddJson(inf, R"({"a": 1, "b": 1})");
    auto k = inf.SuggestKey();
    CHECK(k.pointers == std::vector<std::string>{"/a"});
    CHECK_FALSE(k.unique);
    CHECK(k.explanation.find("no property, nor pair of properties, is unique") !=
          std::string::npos);
    SchemaInferrer none;
    AddJson(none, R"({"a": 1.5})");
    AddJson(none, R"({"b": 1})");
    CHECK(none.SuggestKey().pointers.empty());
  }
}

TEST_CASE("infer: widenings against an existing shape") {
  schema::Shape root;
  root.types = schema::kObject;
  auto amount = std::make_shared<schema::Shape>();
  amount->types = schema::kInteger;
  auto name = std::make_shared<schema::Shape>();
  name->types = schema::kString;
  root.properties = {{"amount", true, amount}, {"name", true, name}};
  root.additional = std::make_shared<schema::Shape>();
  root.additional->types = 0;  // additionalProperties: false

  SchemaInferrer ok;
  AddJson(ok, R"({"amount": 3, "name": "x"})");
  CHECK(ok.Widenings(root).empty());

  SchemaInferrer inf;
  AddJson(inf, R"({"amount": 3.5, "name": "x"})");
  AddJson(inf, R"({"amount": 3, "extra": 1})");
  auto w = inf.Widenings(root);
  REQUIRE(w.size() == 3);
  CHECK(w[0] == "/required: `name` is missing from some documents: drop it (required: [amount])");
  CHECK(w[1] == "/properties/amount/type: integer → number");
  CHECK(w[2] == "/properties/extra: (not allowed) → add the property, type integer");
}

TEST_CASE("csv: a header not known in advance") {
  auto csv = runtime::CsvConverter::AcceptingAnyHeader(runtime::CsvDialect::kCsv, "orders.csv");
  doc::Allocator alloc;
  std::vector<std::string> docs;
  runtime::CsvConverter::Emit emit = [&](uint64_t, doc::Value& d) -> Result<bool> {
    std::string s;
    doc::AppendJson(d, &s);
    docs.push_back(s);
    return true;
  };
  REQUIRE(csv->Feed("id,amount,paid,note\n1,2.5,true,\n2,3,false,hi\n", alloc, emit));
  REQUIRE(csv->Finish(alloc, emit));
  REQUIRE(docs.size() == 2);
  CHECK(docs[0] == R"({"amount":2.5,"id":1,"note":null,"paid":true})");
  CHECK(docs[1] == R"({"amount":3,"id":2,"note":"hi","paid":false})");
}
