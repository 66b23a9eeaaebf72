#include "runtime/dead_letter.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

namespace flow::runtime {

namespace {

// The dead letter's stamped line and journal.
Result<bool> DeadLetterLine(const Collection& to, const DeadLetter& letter, Stamper* stamper,
                            std::string* journal, std::string* line) {
  rapidjson::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  auto str = [&](const std::string& s) { return doc::Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a); };
  d.AddMember("task", str(letter.task), a);
  d.AddMember("taskKind", str(letter.task_kind), a);
  d.AddMember("binding", str(letter.binding), a);
  d.AddMember("collection", str(letter.collection), a);
  d.AddMember("journal", str(letter.journal), a);
  d.AddMember("offset", doc::Value(letter.offset), a);
  d.AddMember("error", str(letter.error), a);
  doc::Value document;
  if (letter.document) document.CopyFrom(*letter.document, a);
  // A stored document's own `_meta` (its UUID) stays: it says which document this was.
  d.AddMember("document", document, a);
  doc::Value& v = d;
  auto refused = [&](const std::string& why) {
    return Error::User(fmt::format("{}; and its dead letter could not be written to collection `{}`: {}",
                                   letter.error, to.name, why));
  };
  if (auto ok = to.Validate(v, a); !ok) return refused(ok.error().message);
  if (auto j = to.JournalOf(v, journal); !j) return refused(j.error().message);
  AppendStamped(v, stamper->Next(), line);
  return true;
}

}  // namespace

Result<bool> AppendDeadLetter(const Collection& to, const DeadLetter& letter, Stamper* stamper,
                              store::Store* store) {
  std::string journal, line;
  if (auto l = DeadLetterLine(to, letter, stamper, &journal, &line); !l) return l;
  return store->Append(journal, to.journal, line);
}

Result<bool> AppendDeadLetter(const Collection& to, const DeadLetter& letter, Stamper* stamper,
                              HeldAppends* held) {
  std::string journal, line;
  if (auto l = DeadLetterLine(to, letter, stamper, &journal, &line); !l) return l;
  held->Add(journal, to.journal, line);
  return true;
}

}  // namespace flow::runtime
