#include <doctest/doctest.h>

#include "catalog/yaml_reader.h"

using namespace flow;
using doc::Node;

namespace {
Node Read(const std::string& text) {
  Diagnostics d;
  auto n = catalog::ReadYaml(text, "t.yaml", &d);
  REQUIRE_MESSAGE(n.has_value(), (d.empty() ? "" : d.items()[0].Format(false)));
  return *n;
}
Diagnostic Fail(const std::string& text) {
  Diagnostics d;
  auto n = catalog::ReadYaml(text, "t.yaml", &d);
  REQUIRE_FALSE(n.has_value());
  REQUIRE(d.size() == 1);
  return d.items()[0];
}
}  // namespace

TEST_CASE("YAML scalars resolve by the 1.2 core schema") {
  Node n = Read("a: 1\nb: -2.5\nc: true\nd: ~\ne: '1'\nf: 0x1F\ng: hello\nh: 1e3\ni: \"true\"\nj:\n");
  CHECK(n.Find("a")->is_int());
  CHECK(n.Find("a")->as_int() == 1);
  CHECK(n.Find("b")->as_double() == -2.5);
  CHECK(n.Find("c")->as_bool());
  CHECK(n.Find("d")->is_null());
  CHECK(n.Find("e")->is_string());
  CHECK(n.Find("f")->as_int() == 31);
  CHECK(n.Find("g")->as_string() == "hello");
  CHECK(n.Find("h")->as_double() == 1000.0);
  CHECK(n.Find("i")->is_string());
  CHECK(n.Find("j")->is_null());
}

TEST_CASE("positions are 1-based lines and columns of values and keys") {
  Node n = Read("top:\n  inner: [1, 2]\n");
  const auto* m = n.Find("top")->FindMember("inner");
  CHECK(m->key_mark.line == 2);
  CHECK(m->key_mark.col == 3);
  CHECK(m->value.items()[1].mark().line == 2);
  CHECK(m->value.items()[1].mark().col == 14);
}

TEST_CASE("anchors, aliases and merge keys") {
  Node n = Read(
      "base: &b {x: 1, y: 2}\n"
      "other: &o {z: 3}\n"
      "use: *b\n"
      "merged:\n  <<: *b\n  y: 20\n"
      "multi:\n  <<: [*o, *b]\n  w: 0\n");
  CHECK(n.Find("use")->Find("x")->as_int() == 1);
  const Node* m = n.Find("merged");
  CHECK(m->Find("x")->as_int() == 1);
  CHECK(m->Find("y")->as_int() == 20);  // explicit keys win
  CHECK(m->Find("<<") == nullptr);
  const Node* mm = n.Find("multi");
  CHECK(mm->Find("z")->as_int() == 3);
  CHECK(mm->Find("x")->as_int() == 1);
  CHECK(mm->Find("w")->as_int() == 0);
}

TEST_CASE("complex keys") {
  Node n = Read("? acme/orders\n: 1\n? [a, b]\n: 2\n");
  CHECK(n.Find("acme/orders")->as_int() == 1);
  CHECK(n.Find("[\"a\",\"b\"]")->as_int() == 2);
}

TEST_CASE("malformed YAML reports line and column") {
  Diagnostic d = Fail("a: 1\nb: [1, 2\nc: 3\n");
  CHECK(d.mark.line >= 2);
  CHECK(d.message.find("invalid YAML") == 0);
  Diagnostic dup = Fail("a: 1\nb: 2\na: 3\n");
  CHECK(dup.mark.line == 3);
  CHECK(dup.message == "duplicate key `a`");
}

TEST_CASE("bad input is rejected cleanly") {
  Diagnostic utf = Fail("a: 1\nb: \"\xFF\"\n");
  CHECK(utf.mark.line == 2);
  CHECK(utf.mark.col == 5);
  CHECK(utf.message.find("invalid UTF-8") == 0);
  CHECK(Fail("a: 99999999999999999999\n").message.find("does not fit in 64 bits") !=
        std::string::npos);
  CHECK(Fail("a: .nan\n").message.find("not representable in JSON") != std::string::npos);
  std::string deep(10000, '[');
  CHECK(Fail(deep).message.find("nested") != std::string::npos);
  std::string deep_map;
  for (int i = 0; i < 600; ++i) deep_map += "{a: ";
  deep_map += "1";
  for (int i = 0; i < 600; ++i) deep_map += "}";
  CHECK(Fail(deep_map).message.find("nested") != std::string::npos);
  // A "billion laughs" alias bomb is cut off instead of exhausting memory.
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", *" : "*") + static_cast<char>(c - 1);
    bomb += "]\n";
  }
  CHECK(Fail(bomb).message.find("expand to more than 2000000 values") != std::string::npos);
  // So are aliases of long strings (by their bytes) and merge keys repeating big mappings.
  std::string strings = "s: &s \"" + std::string(1 << 20, 'x') +
                        "\"\nl1: &l1 [*s, *s, *s, *s, *s, *s, *s, *s]\n"
                        "l2: &l2 [*l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1]\n"
                        "l3: [*l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2]\n";
  CHECK(Fail(strings).message.find("more than 64 MiB of strings and keys") != std::string::npos);
  std::string merges = "m0: &m0 {";
  for (int i = 0; i < 1000; ++i) merges += (i ? ", k" : "k") + std::to_string(i) + ": 1";
  merges += "}\nq: [";
  for (int i = 0; i < 3000; ++i) merges += i ? ", {<<: *m0}" : "{<<: *m0}";
  merges += "]\n";
  CHECK(Fail(merges).message.find("expand to more than") != std::string::npos);
  Diagnostic multi = Fail("a: 1\n---\nb: 2\n");
  CHECK(multi.message.find("one YAML document") != std::string::npos);
}

TEST_CASE("a token the parser cannot consume is an error, not an endless loop") {
  // yaml-cpp 0.7's LoadAll returned a null document for each turn at a `,` where a
  // document should start, without consuming it: `flowctl build` of a catalog that is
  // `,` allocated without bound (found by fuzz/catalog_build; yaml-cpp issue #1040).
  struct Case {
    const char* text;
    uint32_t line, col;
  };
  for (const Case& c : {Case{",", 1, 1}, Case{"\n,\n", 2, 1}, Case{"[a],", 1, 4},
                        Case{"a: 1\n...\n,", 3, 1}, Case{"a\n---\n,", 3, 1},
                        // After a document that ends early (falcosecurity/falco#3281).
                        Case{"- m: x\n  c:\n    (a in (\n\"b\",\n    \"c\"\n    )\n", 4, 4}}) {
    INFO(c.text);
    Diagnostic d = Fail(c.text);
    CHECK(d.message == "invalid YAML: unexpected `,`");
    CHECK(d.hint == "a `,` separates items only inside `[...]` or `{...}`");
    CHECK(d.mark.line == c.line);
    CHECK(d.mark.col == c.col);
  }
  // Other inputs known to hang yaml-cpp (issues #2 and #499, fixed before 0.7) or
  // reported with #1040 end in an error too.
  for (const char* text : {"[:", "{:", "- !+(.,.)", "bad: [", "bad YAML: [", "{# ke\ny{:"}) {
    INFO(text);
    CHECK(Fail(text).message.find("invalid YAML: ") == 0);
  }
  // Separate documents keep their own error, at the second document's root.
  Diagnostic multi = Fail("a: 1\n---\nb: 2\n");
  CHECK(multi.message == "a catalog source holds one YAML document, but this file has more");
  CHECK(multi.mark.line == 3);
  CHECK(multi.mark.col == 1);
  // No document at all is null, as before.
  CHECK(Read("").is_null());
  CHECK(Read("# nothing\n").is_null());
}

TEST_CASE("JSON sources take the fast path with the same positions and checks") {
  Node n = Read("{\n  \"a\": [1, 2.5, \"x\"],\n  \"b\": {\"c\": null, \"d\": true}\n}\n");
  const auto* a = n.FindMember("a");
  CHECK(a->key_mark.line == 2);
  CHECK(a->key_mark.col == 3);
  CHECK(a->value.items()[2].mark().line == 2);
  CHECK(a->value.items()[2].mark().col == 17);
  CHECK(a->value.items()[1].as_double() == 2.5);
  CHECK(n.Find("b")->Find("d")->as_bool());
  CHECK(Fail("{\"a\": 1,\n \"a\": 2}").mark.line == 2);
  // The whole uint64 range is accepted; beyond it YAML fails (see above).
  Node big = Read("{\"a\": 18446744073709551615}");
  CHECK(big.Find("a")->is_uint());
  CHECK(Fail("{\"a\": 18446744073709551616}").message.find("does not fit in 64 bits") != std::string::npos);
  CHECK(Fail("[-9223372036854775809]").message.find("does not fit in 64 bits") != std::string::npos);
  CHECK(Read("[1e30, 1.5, -2E3]").items().size() == 3);
  std::string deep(10000, '[');
  deep += std::string(10000, ']');
  CHECK(Fail(deep).message.find("nested more than") != std::string::npos);
  // YAML flow mappings are not JSON; they still parse as YAML.
  CHECK(Read("{a: 1, b: [x]}").Find("b")->items()[0].as_string() == "x");
  // Malformed JSON falls back to YAML, which explains the problem with a position.
  CHECK(Fail("{\"a\": [1, 2}\n").message.find("invalid YAML") == 0);
}
