// Fuzz target: the parser of untrusted JSON documents and its limits (src/doc/parse.h).
// Invariants: the length-delimited and NUL-terminated entry points agree on every text
// without a NUL byte, and both refuse one with; an accepted document is within the limits, writes
// back to JSON that parses to an equal document, and is accepted by the stored-document parser too.
// Values are compared as written back (member order and repeated names included: `==`
// of RapidJSON looks members up by name). And the simdjson path and RapidJSON alone
// (doc::SetFastParse) agree: ParseDocument on every text (the same verdict, message, offset
// and values), and ParseStoredDocument on every text ParseDocument accepts and on what is
// written back of it (ParseDocument's values).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "doc/parse.h"
#include "fuzz.h"

using flow::fuzz::Check;
namespace doc = flow::doc;

namespace {

int Depth(const rapidjson::Value& v) {
  int deepest = 0;
  if (v.IsObject()) {
    for (const auto& m : v.GetObject()) deepest = std::max(deepest, Depth(m.value));
    return deepest + 1;
  }
  if (v.IsArray()) {
    for (const auto& e : v.GetArray()) deepest = std::max(deepest, Depth(e));
    return deepest + 1;
  }
  return 0;
}

std::string Write(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  Check(v.Accept(w), "an accepted document cannot be written back");
  return std::string(sb.GetString(), sb.GetSize());
}

void Run(std::string_view text, const doc::ParseLimits& limits) {
  rapidjson::Document d;
  doc::ParseError e;
  bool ok = doc::ParseDocument(text, &d, &e, limits);
  if (!ok) {
    Check(!e.message.empty(), "a refusal without a message");
    Check(e.offset <= text.size(), "a refusal's offset is past the end of the text");
  }
  bool has_nul = text.find('\0') != std::string_view::npos;
  std::string terminated(text);  // std::string keeps a NUL after its last byte
  rapidjson::Document t;
  doc::ParseError te;
  bool tok = doc::ParseTerminatedDocument(std::string_view(terminated), &t, &te, limits);
  if (has_nul) {
    Check(!ok && !tok, "a text holding a NUL byte was accepted");
  } else {
    Check(ok == tok, "ParseDocument and ParseTerminatedDocument disagree");
    if (ok)
      Check(Write(d) == Write(t),
            "ParseDocument and ParseTerminatedDocument parse different values");
  }
  if (!ok) return;
  Check(text.size() <= limits.max_bytes, "a document over the size limit was accepted");
  Check(Depth(d) <= limits.max_depth, "a document nested deeper than the limit was accepted");

  std::string json = Write(d);
  rapidjson::Document again;
  doc::ParseError ae;
  Check(doc::ParseDocument(json, &again, &ae), "a written-back document does not parse again");
  Check(Write(again) == json, "a written-back document parses to a different value");
  rapidjson::Document stored;
  Check(doc::ParseStoredDocument(json, &stored, &ae),
        "ParseStoredDocument refuses an accepted document");
  Check(Write(stored) == json, "ParseStoredDocument parses an accepted document differently");
}

struct Verdict {
  bool ok;
  size_t offset;
  std::string message, json;
};

Verdict Parsed(std::string_view text, bool fast, bool stored) {
  doc::SetFastParse(fast);
  std::string terminated(text);  // ParseStoredDocument wants a NUL after the text
  rapidjson::Document d;
  doc::ParseError e;
  bool ok =
      stored ? doc::ParseStoredDocument(terminated, &d, &e) : doc::ParseDocument(text, &d, &e);
  doc::SetFastParse(true);
  return {ok, ok ? 0 : e.offset, ok ? "" : e.message, ok ? Write(d) : ""};
}

void SameBothWays(std::string_view text) {
  Verdict slow = Parsed(text, false, false), fast = Parsed(text, true, false);
  Check(slow.ok == fast.ok && slow.offset == fast.offset && slow.message == fast.message,
        "ParseDocument accepts or refuses a text differently with simdjson");
  Check(slow.json == fast.json, "ParseDocument reads a text differently with simdjson");
  if (!slow.ok) return;
  // The stored-document parser, on what flowctl accepts (simdjson also reads some texts
  // RapidJSON refuses, such as 0e400, which is zero) and on what it writes of it.
  Verdict raw_slow = Parsed(text, false, true), raw_fast = Parsed(text, true, true);
  Check(raw_slow.ok && raw_fast.ok, "ParseStoredDocument refuses an accepted document");
  Check(raw_slow.json == slow.json && raw_fast.json == slow.json,
        "ParseStoredDocument reads an accepted document differently");
  Verdict stored_slow = Parsed(slow.json, false, true), stored_fast = Parsed(slow.json, true, true);
  Check(stored_slow.ok && stored_fast.ok, "ParseStoredDocument refuses a written-back document");
  Check(stored_slow.json == slow.json && stored_fast.json == slow.json,
        "ParseStoredDocument reads a written-back document differently");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  Run(text, {});
  // Tight limits, so that short inputs reach the limit checks.
  doc::ParseLimits tight;
  tight.max_bytes = 64;
  tight.max_depth = 4;
  Run(text, tight);
  SameBothWays(text);
  return 0;
}
