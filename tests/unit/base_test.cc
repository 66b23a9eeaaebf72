#include <doctest/doctest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "base/diagnostics.h"
#include "base/files.h"
#include "base/memory.h"
#include "base/strings.h"
#include "base/url.h"
#include "catalog/parse.h"
#include "catalog/spec.h"
#include "doc/pointer.h"
#include "scratch.h"

using namespace flow;

TEST_CASE("JSON pointers parse RFC 6901 escapes and reject malformed input") {
  std::string why;
  auto p = doc::Pointer::Parse("/a~1b/c~0d/0", &why);
  REQUIRE(p);
  CHECK(p->tokens() == std::vector<std::string>{"a/b", "c~d", "0"});
  CHECK(p->ToString() == "/a~1b/c~0d/0");
  CHECK(doc::Pointer::Parse("", &why)->empty());
  CHECK_FALSE(doc::Pointer::Parse("a/b", &why));
  CHECK(why.find("start with") != std::string::npos);
  CHECK_FALSE(doc::Pointer::Parse("/a~2", &why));
  CHECK_FALSE(doc::Pointer::Parse("/a~", &why));
  CHECK(doc::Pointer::AsIndex("12") == 12u);
  CHECK_FALSE(doc::Pointer::AsIndex("012"));
  CHECK_FALSE(doc::Pointer::AsIndex("-"));
}

TEST_CASE("errors carry their context chain, each context said once") {
  Error e = Error::Env("disk full").In("target `db`");
  CHECK(e.message == "target `db`: disk full");
  e = std::move(e).In("materialization `m`");
  CHECK(e.message == "materialization `m`: target `db`: disk full");
  CHECK(e.context == std::vector<std::string>{"materialization `m`", "target `db`"});
  // Once only: a caller adding what the error already says changes nothing.
  e = std::move(e).In("materialization `m`");
  CHECK(e.message == "materialization `m`: target `db`: disk full");
  // About: the message names it already, as written.
  Error named = Error::User("materialization `m`, table `t`: a bad row").About("materialization `m`");
  CHECK(named.Within("materialization `m`"));
  CHECK(std::move(named).In("materialization `m`").message == "materialization `m`, table `t`: a bad row");
  CHECK(e.code == Error::Code::kEnvironment);
}

TEST_CASE("URLs resolve per RFC 3986") {
  CHECK(ResolveUrl("file:///a/b/c.yaml", "d.yaml") == "file:///a/b/d.yaml");
  CHECK(ResolveUrl("file:///a/b/c.yaml", "../d.yaml#/x") == "file:///a/d.yaml#/x");
  CHECK(ResolveUrl("file:///a/b/c.yaml", "#anchor") == "file:///a/b/c.yaml#anchor");
  CHECK(ResolveUrl("file:///a/b/c.yaml", "/abs.yaml") == "file:///abs.yaml");
  CHECK(ResolveUrl("https://x.com/s/a.json", "b.json") == "https://x.com/s/b.json");
  CHECK(ResolveUrl("https://x.com/s/a.json", "https://y.org/z") == "https://y.org/z");
  CHECK(ResolveUrl("https://x.com/s/a.json", "./sub/../c.json") == "https://x.com/s/c.json");
  // An inline schema's URL carries its pointer as a query (SPEC 1.4): a fragment keeps the
  // query, a reference with a path of its own drops it.
  CHECK(ResolveUrl("file:///a/b.yaml?ptr=/x", "#/$defs/y") == "file:///a/b.yaml?ptr=/x#/$defs/y");
  CHECK(ResolveUrl("file:///a/b.yaml?ptr=/x", "other.yaml") == "file:///a/other.yaml");
  CHECK(ResolveUrl("file:///a/b.yaml?ptr=/x", "../c.yaml#/z") == "file:///c.yaml#/z");
  std::string base, frag;
  SplitFragment("file:///a.yaml#/$defs/x%20y", &base, &frag);
  CHECK(base == "file:///a.yaml");
  CHECK(frag == "/$defs/x y");
  CHECK(FilePathOfUrl(FileUrl("/tmp/with space.yaml")) == "/tmp/with space.yaml");
}

TEST_CASE("UTF-8 validation finds the first bad byte") {
  CHECK_FALSE(FindInvalidUtf8("plain ascii"));
  CHECK_FALSE(FindInvalidUtf8("h\xC3\xA9llo \xE2\x82\xAC"));
  CHECK(FindInvalidUtf8("ab\xFFz") == 2u);
  CHECK(FindInvalidUtf8("ab\xC3") == 2u);          // truncated sequence
  CHECK(FindInvalidUtf8("\xC0\xAF") == 0u);        // overlong encoding
  CHECK(FindInvalidUtf8("\xED\xA0\x80") == 0u);    // surrogate
  uint32_t line, col;
  OffsetToLineCol("ab\nc\xC3\xA9" "d", 6, &line, &col);
  CHECK(line == 2);
  CHECK(col == 3);
}

TEST_CASE("did-you-mean suggests close names only") {
  std::vector<std::string> keys = {"name", "schema", "key", "projections", "derivation"};
  CHECK(DidYouMean("projection", keys) == "did you mean `projections`?");
  CHECK(DidYouMean("shema", keys) == "did you mean `schema`?");
  CHECK(DidYouMean("derivaiton", keys) == "did you mean `derivation`?");
  CHECK(DidYouMean("zzzzzz", keys).empty());
}

TEST_CASE("readDelay durations combine units") {
  int64_t s = 0;
  CHECK(catalog::ParseDuration("2h", &s));
  CHECK(s == 7200);
  CHECK(catalog::ParseDuration("1h30m", &s));
  CHECK(s == 5400);
  CHECK(catalog::ParseDuration("1d2h3m4s", &s));
  CHECK(s == 86400 + 7200 + 180 + 4);
  CHECK_FALSE(catalog::ParseDuration("", &s));
  CHECK_FALSE(catalog::ParseDuration("2", &s));
  CHECK_FALSE(catalog::ParseDuration("h", &s));
  CHECK_FALSE(catalog::ParseDuration("2 hours", &s));
  CHECK_FALSE(catalog::ParseDuration("5w", &s));
}

TEST_CASE("collection names are slash-separated segments") {
  std::string why;
  CHECK(catalog::IsValidCollectionName("acme/orders", &why));
  CHECK(catalog::IsValidCollectionName("a-b_c.d/e1", &why));
  CHECK_FALSE(catalog::IsValidCollectionName("", &why));
  CHECK_FALSE(catalog::IsValidCollectionName("/acme", &why));
  CHECK_FALSE(catalog::IsValidCollectionName("acme//orders", &why));
  CHECK_FALSE(catalog::IsValidCollectionName("acme/orders/", &why));
  CHECK_FALSE(catalog::IsValidCollectionName("acme orders", &why));
  CHECK_FALSE(catalog::IsValidCollectionName("acme/../x", &why));
}

TEST_CASE("line offsets invert line numbers") {
  std::string_view s = "ab\ncd\n\nef";
  CHECK(LineOffset(s, 1) == 0u);
  CHECK(LineOffset(s, 2) == 3u);
  CHECK(LineOffset(s, 3) == 6u);
  CHECK(LineOffset(s, 4) == 7u);
  CHECK(LineOffset(s, 9) == s.size());
}

TEST_CASE("CompareBytes orders like std::string_view::compare") {
  std::mt19937_64 rng(99);
  auto sign = [](int c) { return (c > 0) - (c < 0); };
  // Lengths around the 8-byte steps, bytes from a small alphabet (so prefixes are shared)
  // including NUL and bytes above 0x7f (compared unsigned).
  const char alphabet[] = {'a', 'b', '\0', '\x7f', '\x80', '\xff'};
  for (int i = 0; i < 20000; ++i) {
    std::string a, b;
    size_t la = rng() % 20, lb = rng() % 20;
    for (size_t k = 0; k < la; ++k) a.push_back(alphabet[rng() % sizeof alphabet]);
    b = a.substr(0, std::min(la, lb));
    for (size_t k = b.size(); k < lb; ++k) b.push_back(alphabet[rng() % sizeof alphabet]);
    if (rng() % 3 == 0 && !b.empty()) b[rng() % b.size()] = alphabet[rng() % sizeof alphabet];
    CAPTURE(a);
    CAPTURE(b);
    REQUIRE(sign(CompareBytes(a, b)) == sign(std::string_view(a).compare(b)));
  }
}

TEST_CASE("ReadRegularFile reads regular files under the limit, nothing else") {
  testing::TempDir dir;
  std::string file = dir.path + "/f.yaml";
  REQUIRE(WriteFileAtomic(file, "0123456789"));
  auto ok = ReadRegularFile(file, 10, "catalog source");
  REQUIRE(ok);
  CHECK(ok.value() == "0123456789");
  auto big = ReadRegularFile(file, 9, "catalog source");
  REQUIRE_FALSE(big);
  CHECK(big.error().message ==
        "cannot read " + file +
            ": it holds 10 bytes, more than the limit of 9 bytes for a catalog source");
  auto zero = ReadRegularFile("/dev/zero", 1 << 20, "catalog source");
  REQUIRE_FALSE(zero);
  CHECK(zero.error().message ==
        "cannot read /dev/zero: it is a character device, not a regular file");
  std::string fifo = dir.path + "/pipe";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto pipe = ReadRegularFile(fifo, 1 << 20, "catalog source");  // does not block
  REQUIRE_FALSE(pipe);
  CHECK(pipe.error().message.find("it is a FIFO, not a regular file") != std::string::npos);
  auto d = ReadRegularFile(dir.path, 1 << 20, "catalog source");
  REQUIRE_FALSE(d);
  CHECK(d.error().message.find("it is a directory") != std::string::npos);
  auto missing = ReadRegularFile(dir.path + "/nope", 1 << 20, "catalog source");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("No such file") != std::string::npos);
}

namespace flow {
namespace {

TEST_CASE("huge pages: a region is rounded up to 2 MiB, aligned, zeroed and writable") {
  auto r = HugePages::Map(3u << 20);
  REQUIRE(r);
  CHECK(r->size() == (4u << 20));
  CHECK(reinterpret_cast<uintptr_t>(r->data()) % HugePages::kPage == 0);
  auto* bytes = static_cast<unsigned char*>(r->data());
  CHECK(bytes[0] == 0);
  CHECK(bytes[r->size() - 1] == 0);
  bytes[0] = 1;
  bytes[r->size() - 1] = 2;
  CHECK(bytes[0] + bytes[r->size() - 1] == 3);
  CHECK_FALSE(HugePages::Map(0));
  // Released pages read as zeros again; kept ones keep their bytes.
  bytes[HugePages::kPage] = 3;  // the second page
  r->Release(1);                // keeps the page of the first byte
  CHECK(bytes[0] == 1);
  CHECK(bytes[HugePages::kPage] == 0);
  CHECK(bytes[r->size() - 1] == 0);
  bytes[r->size() - 1] = 4;  // backed again when touched
  CHECK(bytes[r->size() - 1] == 4);
}

}  // namespace
}  // namespace flow
