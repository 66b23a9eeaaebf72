#include "catalog/checker.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "base/strings.h"
#include "doc/uuid.h"
#include "doc/value.h"
#include "schema/validator.h"

namespace flow::catalog::checker {
namespace {

// The dead-letter collection docs/reference/dead-letters.md recommends, for hints.
constexpr const char* kDeadLetterCollection =
    "a dead-letter collection as docs/reference/dead-letters.md recommends has "
    "`key: [/task, /binding, /journal, /offset]` and `schema: {type: object, properties: "
    "{task: {type: string}, taskKind: {enum: [derivation, materialization]}, "
    "binding: {type: string}, collection: {type: string}, journal: {type: string}, "
    "offset: {type: integer}, error: {type: string}, document: {}}, "
    "required: [task, taskKind, binding, collection, journal, offset, error, document]}`";

// The `_meta.uuid` of the sample dead letter's document: a v1 UUID as runtime::Stamper
// writes them, fixed so that diagnostics quoting it do not change from build to build.
std::string SampleUuid() {
  doc::Uuid u;
  u.producer.bytes = {0x6b, 0x3f, 0x1c, 0x2e, 0x95, 0xd4};
  u.clock = doc::ClockFromUnixNanos(int64_t{1704067200} * 1000000000);  // 2024-01-01T00:00Z
  u.flags = doc::kFlagOutsideTxn;
  return doc::FormatUuid(u);
}

}  // namespace

bool Checker::CheckDeadLetters(const std::string& name, const Where& w, const std::string& owner,
                               const DeadLetterUser& user) {
  if (name.empty()) return false;
  const BuiltCollection* c = out_->Collection(name);
  if (!c) {
    if (cat_.Collection(name)) return false;  // exists but failed its own checks
    std::string hint = DidYouMean(name, CollectionNames());
    Error(w, owner, fmt::format("dead-letter collection `{}` does not exist", name),
          hint.empty() ? "declare it under `collections`; " + std::string(kDeadLetterCollection)
                       : hint);
    return false;
  }
  const char* what = user.own.empty() ? "binding" : "transform";
  if (name == user.source) {
    Error(
        w, owner,
        fmt::format("dead-letter collection `{}` is the source collection of this {}", name, what),
        "its dead letters would be read back as source documents; send them to a "
        "collection of their own (docs/reference/dead-letters.md recommends one)");
    return false;
  }
  if (name == user.own || c->spec->derivation) {
    Error(w, owner,
          name == user.own
              ? fmt::format("dead-letter collection `{}` is this derivation's own collection", name)
              : fmt::format("dead-letter collection `{}` is a derived collection", name),
          "a derivation owns its collection's writes; send dead letters to a captured collection "
          "(docs/reference/dead-letters.md recommends one)");
    return false;
  }
  // A sample dead letter, shaped as AppendDeadLetter writes one, with this user's values
  // and a realistic error and document: a document as stored (with its `_meta`) and an
  // error of the runtime's shape and length, so that a schema that refuses every real dead
  // letter (`additionalProperties: false` or `maxProperties: 0` on `document`, a short
  // `maxLength` on `error`) fails here rather than halting the task at its first one.
  std::string journal = user.source + "/pivot=00";
  std::string error =
      user.own.empty()
          ? fmt::format(
                "materialization `{}`, table `{}`: collection `{}`, key [1] (its last document "
                "read: offset 0 of journal {}): cannot reduce into the stored document: sum at "
                "/total: cannot sum a string; left 12.5, right \"12.50\"",
                user.task, user.binding, user.source, journal)
          : fmt::format(
                "derivation `{}`, transform `{}`: the document at offset 0 of journal {} does "
                "not validate against the transform's source schema: at /total (value "
                "\"12.50\"): value type not permitted by 'type' constraint (expected "
                "\"number\") [`type`]",
                user.task, user.binding, journal);
  rapidjson::Document letter(rapidjson::kObjectType);
  auto& a = letter.GetAllocator();
  auto str = [&](const std::string& s) {
    return rapidjson::Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a);
  };
  letter.AddMember("task", str(user.task), a);
  letter.AddMember("taskKind", str(user.task_kind), a);
  letter.AddMember("binding", str(user.binding), a);
  letter.AddMember("collection", str(user.source), a);
  letter.AddMember("journal", str(journal), a);
  letter.AddMember("offset", rapidjson::Value(uint64_t{0}), a);
  letter.AddMember("error", str(error), a);
  rapidjson::Value meta(rapidjson::kObjectType);
  meta.AddMember("uuid", str(SampleUuid()), a);
  rapidjson::Value document(rapidjson::kObjectType);
  document.AddMember("_meta", meta, a);
  letter.AddMember("document", document, a);
  auto v = Compile(c->bundle);
  if (!v) return false;  // a schema that does not compile is reported where it is written
  if (auto errors = v->Validate(letter, a); !errors.empty()) {
    // Say what real dead letters hold where the sample's realistic parts are refused.
    std::string hint;
    auto at = [&](const char* prefix) {
      return std::any_of(errors.begin(), errors.end(), [&](const schema::ValidationError& e) {
        return e.pointer == prefix || e.pointer.rfind(std::string(prefix) + "/", 0) == 0;
      });
    };
    if (at("/document")) {
      hint +=
          "a dead letter's `document` is a document as its source collection stores it, "
          "`_meta` (its UUID) included; ";
    }
    if (at("/error")) {
      hint +=
          "a dead letter's `error` is the error the task would have halted with: it names "
          "the task, the journal and the offset, and often runs to hundreds of "
          "characters; ";
    }
    Error(w, owner,
          fmt::format("dead-letter collection `{}` does not accept a dead letter: {}", name,
                      schema::FormatValidationErrors(errors, letter)),
          hint + kDeadLetterCollection);
    return false;
  }
  bool ok = true;
  for (const auto& key : c->spec->key) {
    std::string why;
    auto p = doc::Pointer::Parse(key, &why);
    // `document` is the source's document (or null): no location inside it is in every
    // dead letter, whatever the sample holds.
    bool inside_document = p && p->tokens().size() > 1 && p->tokens()[0] == "document";
    if (p && !inside_document && doc::Lookup(letter, *p)) continue;
    Error(w, owner,
          fmt::format("key `{}` of dead-letter collection `{}` is not a location of a dead letter",
                      key, name),
          kDeadLetterCollection);
    ok = false;
  }
  return ok;
}

void Checker::CheckDeadLetterCycles() {
  struct Edge {
    const std::string* from;
    const std::string* to;
    const Where* where;       // its `deadLetters` value; null for a transform's derived collection
    std::string owner;        // the scope of a diagnostic at `where`
    std::string task;         // e.g. "transform `a` of `acme/x`"
    std::string label;        // in a cycle, e.g. "dead letters of `a` of `acme/x`"
    std::string short_label;  // in its own diagnostic, e.g. "dead letters of `a`"
  };
  std::vector<Edge> edges;
  auto captured = [&](const std::string& name) {
    const CollectionSpec* c = cat_.Collection(name);
    return c && !c->derivation;
  };
  for (const auto& c : cat_.collections) {
    if (!c.derivation) continue;
    for (const auto& t : c.derivation->transforms) {
      if (!cat_.Collection(t.source)) continue;
      edges.push_back(
          {&t.source, &c.name, nullptr, "", "", fmt::format("transform `{}`", t.name), ""});
      if (!captured(t.dead_letters) || t.dead_letters == t.source) continue;
      std::string owner = fmt::format("transform `{}` of `{}`", t.name, c.name);
      edges.push_back({&t.source, &t.dead_letters, &t.dead_letters_where, owner, owner,
                       fmt::format("dead letters of `{}` of `{}`", t.name, c.name),
                       fmt::format("dead letters of `{}`", t.name)});
    }
  }
  for (const auto& m : cat_.materializations) {
    for (const auto& b : m.bindings) {
      if (!cat_.Collection(b.source) || !captured(b.dead_letters) || b.dead_letters == b.source) {
        continue;
      }
      edges.push_back({&b.source, &b.dead_letters, &b.dead_letters_where,
                       fmt::format("materialization `{}`", m.name),
                       fmt::format("table `{}` of materialization `{}`", b.table, m.name),
                       fmt::format("dead letters of table `{}` of `{}`", b.table, m.name),
                       fmt::format("dead letters of table `{}`", b.table)});
    }
  }
  std::map<std::string, std::vector<size_t>> out;  // collection → edges from it
  for (size_t i = 0; i < edges.size(); ++i) out[*edges[i].from].push_back(i);
  // For each dead-letter edge, in catalog order, the shortest way back to its source; a
  // cycle found again from another of its dead-letter edges is not reported again.
  std::set<std::vector<size_t>> reported;
  for (size_t e = 0; e < edges.size(); ++e) {
    const Edge& start = edges[e];
    if (!start.where) continue;
    std::map<std::string, size_t> via;  // collection → the edge that reached it first
    std::vector<std::string> queue{*start.to};
    via.emplace(*start.to, e);
    for (size_t q = 0; q < queue.size() && !via.count(*start.from); ++q) {
      for (size_t i : out[queue[q]]) {
        if (via.emplace(*edges[i].to, i).second) queue.push_back(*edges[i].to);
      }
    }
    if (!via.count(*start.from)) continue;
    std::vector<size_t> cycle;  // from `start`, in order
    for (std::string at = *start.from; cycle.empty() || cycle.back() != e;) {
      cycle.push_back(via.at(at));
      at = *edges[cycle.back()].from;
    }
    std::reverse(cycle.begin(), cycle.end());
    std::vector<size_t> key = cycle;
    std::sort(key.begin(), key.end());
    if (!reported.insert(key).second) continue;
    std::string path = *start.from;
    size_t dead_letter_edges = 0;
    for (size_t i : cycle) {
      const Edge& x = edges[i];
      dead_letter_edges += x.where != nullptr;
      path += fmt::format(" → {} ({})", *x.to, i == e ? x.short_label : x.label);
    }
    Error(*start.where, start.owner,
          fmt::format("dead letters of {} would come back to it: {}", start.task, path),
          fmt::format("a document that fails at every step would go round forever, each dead "
                      "letter wrapping the last; send {} to a collection that no transform "
                      "reads and no binding with `deadLetters` reads",
                      dead_letter_edges > 1 ? "the dead letters of one of them" : "them"));
  }
}

}  // namespace flow::catalog::checker
