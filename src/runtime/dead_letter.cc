#include "runtime/dead_letter.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

namespace flow::runtime {

Result<bool> AppendDeadLetter(const Collection& to, const DeadLetter& letter, Stamper* stamper,
                              store::Store* store) {
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
  std::string journal;
  if (auto j = to.JournalOf(v, &journal); !j) return refused(j.error().message);
  std::string line;
  AppendStamped(v, stamper->Next(), &line);
  return store->Append(journal, to.journal, line);
}

}  // namespace flow::runtime
