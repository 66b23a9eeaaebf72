// Dead letters (SPEC 9): a transform or a materialization binding may name a collection
// (`deadLetters`) that receives the documents it cannot process, each with its error,
// instead of halting. A dead letter is an object:
//
//   {"task": "acmeCo/totals", "taskKind": "derivation", "binding": "fromOrders",
//    "collection": "acmeCo/orders", "journal": "acmeCo/orders/pivot=00", "offset": 1234,
//    "error": "...", "document": {...}}
//
// `binding` is the transform's name (derivations) or the table's (materializations);
// `journal` and `offset` locate the document (for a materialization's key, the last
// document of the key read in the transaction). A task writing the same dead letter again
// after a crash writes the same task, binding, journal and offset, so a collection keyed on
// them holds it once (docs/reference/dead-letters.md has the recommended schema).
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"
#include "doc/value.h"
#include "runtime/appends.h"
#include "runtime/collection.h"
#include "runtime/ingest.h"
#include "store/journal.h"

namespace flow::runtime {

struct DeadLetter {
  std::string task;       // the derivation's collection, or the materialization
  std::string task_kind;  // "derivation" or "materialization"
  std::string binding;    // the transform, or the table
  std::string collection;  // the source collection
  std::string journal;
  uint64_t offset = 0;
  std::string error;
  const doc::Value* document = nullptr;  // null: written as null
};

// Appends `letter` to `to` (validated against its schema, partitioned, stamped) in the
// store's open transaction. A dead letter its collection refuses is a user error that
// carries the original error, so that nothing is lost from the message.
Result<bool> AppendDeadLetter(const Collection& to, const DeadLetter& letter, Stamper* stamper,
                              store::Store* store);
// The same, held with a transaction's other appends until they commit.
Result<bool> AppendDeadLetter(const Collection& to, const DeadLetter& letter, Stamper* stamper,
                              HeldAppends* held);

}  // namespace flow::runtime
