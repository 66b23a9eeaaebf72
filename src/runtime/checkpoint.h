// A task's read checkpoint and what it was read from (SPEC 5 and 11): the offset of every
// source journal read, the identity of the data directory, and the generation of each
// journal. A checkpoint is continued only over the directory and generations it names:
// otherwise its offsets point into other data, and the task must be back-filled. Derivations
// keep theirs in the store's ledger, materializations in their target's flow_checkpoints.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "store/journal.h"

namespace flow::runtime {

struct Checkpoint {
  // `<binding key>\t<journal>` → offset, where a binding key names what was read (a
  // transform or a table)
  std::map<std::string, uint64_t> offsets;
  std::string data_dir;                         // its identity; empty: not recorded (an earlier flowctl)
  std::map<std::string, uint64_t> generations;  // journal → generation read
  // What the task's logic was (a derivation's fingerprint); empty when not recorded.
  std::string logic;
};

// `offsets` read over `ledger`, with its identity and the generations of their journals.
Checkpoint CheckpointOf(std::map<std::string, uint64_t> offsets, const store::LedgerState& ledger,
                        std::string logic = "");

// `{"offsets": {...}, "dataDir": "...", "generations": {...}, "logic": "..."}`.
std::string EncodeCheckpoint(const Checkpoint& cp);
// The inverse; false when `text` is not a checkpoint. Checkpoints of earlier versions, with
// offsets only, decode with an empty identity.
bool DecodeCheckpoint(const std::string& text, Checkpoint* out);

// Why `cp` cannot be continued over `ledger`, as a phrase ("its checkpoint was taken over
// another data directory ..."); empty when it can. `unrecorded_ok`: a checkpoint without an
// identity is taken as this directory's (a derivation's, which lives in the ledger itself).
std::string CheckpointMismatch(const Checkpoint& cp, const store::LedgerState& ledger, bool unrecorded_ok);

}  // namespace flow::runtime
