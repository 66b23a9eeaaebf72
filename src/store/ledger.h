// Internal to store/: the ledger's records (a CRC-32 and the JSON of the heads and
// checkpoints a transaction committed, one a line), scans of its content that tell a torn
// tail from damage, and the checks that refuse a damaged data directory, shared by
// `Store::Open`, `ReadLedger` and `Verify`. Not included outside store/.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "store/journal.h"
#include "store/layout.h"

namespace flow::store {

// Ledger records are lines: 8 hex digits of the CRC-32 of the JSON, a space, the JSON:
// `{"id": ..., "heads": {...}, "generations": {journal: [number, begin]}, "checkpoints":
// {...}}`, where only `heads` is always present, and a checkpoint of "" removes its key.
std::string EncodeRecord(const std::map<std::string, uint64_t>& heads,
                         const std::map<std::string, std::string>& checkpoints, const std::string& id = "",
                         const std::map<std::string, Generation>& generations = {});

// A new random identity for a data directory (32 hex digits).
std::string NewIdentity();

// Reads and scans the ledger; a missing ledger scans as empty (`scan->exists` false).
Result<LedgerState> LoadLedger(const std::string& dir, LedgerScan* scan);

// The error for a ledger whose scan found damage: intact records after an invalid one.
Error LedgerDamage(const std::string& dir, const LedgerScan& scan);

// A ledger without an intact record, beside fragments or spools: what committed is lost.
Result<bool> CheckNotOrphaned(const std::string& dir, const LedgerScan& scan);

// No fragment ends, and no spool begins, beyond its journal's committed head in `state`.
Result<bool> CheckFilesWithinHeads(const std::string& dir, const LedgerState& state,
                                   const std::vector<LakeFragment>& frags,
                                   const std::vector<SpoolFile>& spools);

// The committed head of `journal` (0 when the ledger names none), and that as text.
uint64_t HeadOf(const LedgerState& state, const std::string& journal);
std::string HeadText(const LedgerState& state, const std::string& journal);

}  // namespace flow::store
