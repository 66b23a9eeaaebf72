// Journals: append-only byte logs with committed heads, stored as a spool (the fragment
// being written, under `<data-dir>/spool/`) and immutable fragment files in the lake
// (`<data-dir>/lake/`, SPEC 3.3). This layer knows bytes and offsets, not JSON; the one
// thing it knows about content is that fragments are cut after a '\n'.
//
// Atomicity: a transaction appends to any number of journals, then `Commit` syncs every
// touched spool and appends one record (the new heads, plus any task checkpoints) to the
// ledger, `<data-dir>/ledger`, and syncs it. That record is the commit point: recovery
// (`Store::Open`) truncates each spool to the head the ledger names, so bytes of a
// transaction that never committed vanish, and readers only ever read below a head taken
// from the ledger. Ledger records carry a CRC; a torn or corrupt tail is discarded, but a
// record that fails its CRC with intact records after it is damage: the directory is
// refused, never truncated (so is a missing or empty ledger beside fragments or spools).
// A new ledger starts with a record naming no heads, so that an emptied ledger is told
// from one that never had a commit.
//
// A Store is used by one thread of the process holding the data directory's lock
// (store/lock.h). Readers (`ReadLedger`, `JournalReader`) need no lock and may run in other
// processes while a writer is active.
#pragma once

#include <cstdint>
#include <ctime>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/io.h"
#include "base/result.h"
#include "store/naming.h"
#include "store/persist.h"

namespace flow::store {

// How a journal's spool becomes fragments.
struct JournalSpec {
  Codec codec = Codec::kGzip;
  uint64_t fragment_size = 64ull << 20;  // uncommitted bytes per fragment, cut at a line end
  int64_t flush_interval = 0;            // seconds; a spool this old is persisted; 0: never
};

// A journal's generation: 1 until it is first reset; each reset (Store::Reset) starts the
// next, whose content begins at the head the journal had then. Offsets never go back: a
// reset journal reads as empty from `begin` on, and the bytes before `begin` are gone.
struct Generation {
  uint64_t number = 1;
  uint64_t begin = 0;
};

// What the ledger says: the data directory's identity, committed heads, generations of the
// journals ever reset, and task checkpoints (opaque text).
struct LedgerState {
  // A random identity, given when the directory is created (or, for a directory of an
  // earlier flowctl, when it is first opened for writing): a checkpoint recording another
  // was taken over another directory. Empty only in a directory not yet opened by a writer.
  std::string id;
  std::map<std::string, uint64_t> heads;
  std::map<std::string, Generation> generations;  // journals never reset are absent
  std::map<std::string, std::string> checkpoints;
};

// The generation of `journal` in `state` (number 1, begin 0 when it was never reset).
Generation GenerationOf(const LedgerState& state, const std::string& journal);

// Reads the committed state of a data directory (empty when there is none yet). A torn or
// corrupt final record is ignored, as recovery would discard it. Damage is an environment
// error naming the file, the offset and what to do: a record failing its CRC with intact
// records after it, or a ledger without an intact record beside fragments or spools.
// `check_files` also lists the lake and the spools and checks that no fragment ends, and no
// spool begins, beyond its journal's committed head (either means the ledger lost
// committed records); it costs a directory walk, so a poller does it once.
Result<LedgerState> ReadLedger(const std::string& dir, bool check_files = false);

// What a scan of the ledger found.
struct LedgerScan {
  bool exists = false;
  uint64_t size = 0;     // of the file
  uint64_t valid = 0;    // end of the intact prefix; bytes after it are a tail or damage
  uint64_t records = 0;  // intact records in that prefix
  // Damage: an invalid record at `damaged_at` (= valid) with an intact record at `resumes_at`.
  bool damaged = false;
  uint64_t damaged_at = 0, resumes_at = 0;
  uint64_t records_after = 0;  // intact records from `resumes_at` on
  LedgerState after;           // what they name
};

// `flowctl fsck`: verifies a data directory without modifying it.
struct FsckReport {
  LedgerScan ledger;
  LedgerState committed;  // what the ledger's intact prefix names
  uint64_t fragments = 0, fragments_ok = 0, fragment_bytes_ok = 0, spools = 0;
  std::vector<std::string> damage;  // each names a file and an offset or range
  std::vector<std::string> notes;   // harmless: a torn tail, uncommitted spool bytes, unknown files
  std::vector<std::string> salvage;  // what is intact and how to get at it
  bool clean() const { return damage.empty(); }
};
// Reads the ledger, every spool and every fragment (decompressing it and checking the
// SHA-1 in its name). Fails only when the directory cannot be read at all.
Result<FsckReport> Verify(const std::string& dir);

// The journals of `collection` among `heads`: names `<collection>/<f>=<v>/.../pivot=00`.
std::vector<std::string> CollectionJournals(const LedgerState& state, std::string_view collection);

struct StoreStats {
  uint64_t commits = 0;
  uint64_t fragments = 0;          // fragment files persisted
  uint64_t fragment_raw_bytes = 0;  // their uncompressed size
  uint64_t fragment_bytes = 0;      // their size on disk
};

class Store {
 public:
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Opens (creating) the data directory `dir` and recovers it to its last committed state:
  // torn ledger records are dropped, spools are truncated to their committed heads, spools
  // already persisted as fragments and temporary files are removed. The caller holds the
  // directory's lock.
  static Result<std::unique_ptr<Store>> Open(const std::string& dir);

  const LedgerState& committed() const { return committed_; }
  const std::string& dir() const { return dir_; }
  const StoreStats& stats() const { return stats_; }
  // True after an I/O error: the store refuses further work until reopened.
  bool failed() const { return failed_; }

  // Appends `bytes` to `journal` within the current transaction. `spec` applies from the
  // journal's next spool on (the spool's codec is fixed when it is created, and recorded in
  // its name so that recovery persists it the same way).
  Result<bool> Append(const std::string& journal, const JournalSpec& spec, std::string_view bytes);

  // Commits the current transaction: every append since the last Commit/Abort, and
  // `checkpoints` (merged into the ledger's; an empty value removes its key). Returns the
  // new heads of the journals it touched. After a failure the store refuses further work;
  // reopening recovers.
  Result<std::map<std::string, uint64_t>> Commit(const std::map<std::string, std::string>& checkpoints = {});

  // Empties the data directory `dir`, whose lock the caller holds: its lake, spools and
  // ledger go, and the next Open starts it afresh with a new identity, so that checkpoints
  // taken over what it held are never applied to what it will hold. Re-running it after an
  // interruption finishes it.
  static Result<bool> Wipe(const std::string& dir);

  // Resets `journals` to empty, with the checkpoints in `cleared` removed and those in `set`
  // set, in one commit (no transaction may be open): each journal starts its next
  // generation at its current head, so no offset is ever reused, and what it held is
  // deleted from the lake and the spools once the reset is committed (by recovery, if the
  // process dies first).
  Result<bool> Reset(const std::vector<std::string>& journals, const std::vector<std::string>& cleared,
                     const std::map<std::string, std::string>& set = {});

  // Discards the current transaction's appends.
  Result<bool> Abort();

  // Starts persisting, in the background, the spools whose committed content reached their
  // fragment size, or whose age reached their flush interval, and records those started
  // earlier that are done: a fragment takes seconds to compress, and the caller goes on
  // committing meanwhile. Call between transactions; an error of a persist started earlier
  // is returned by a later call (the store then refuses further work).
  Result<bool> PersistDue(std::time_t now);
  // Waits for the persists PersistDue started, and records them.
  Result<bool> WaitPersisting() { return Reap(true); }
  // Persists every spool holding committed content (clean shutdown).
  Result<bool> PersistAll();

 private:
  struct Journal;
  explicit Store(std::string dir);
  Result<bool> Recover();
  Result<bool> RecoverSpool(const std::string& journal, const std::string& path, uint64_t begin,
                            std::time_t created, Codec codec);
  Result<bool> OpenSpool(Journal* j);
  Result<bool> FlushBuffer(Journal* j);
  // Persists [persisted_end, head) of `j` now, compressing fragments on up to threads_.
  Result<bool> Persist(Journal* j);
  PersistRange RangeOf(Journal* j);
  // Records fragments written of `j`, and removes its spool once it holds nothing else.
  Result<bool> Persisted(Journal* j, const std::vector<WrittenFragment>& fragments);
  // Records the background persists that are done (with `wait`, all of them).
  Result<bool> Reap(bool wait);
  Result<bool> AppendLedger(const std::string& record);
  Result<bool> CompactLedger();
  // Deletes the fragments and spools of `journal` that end before its generation's begin.
  Result<bool> RemoveObsolete(const std::string& journal);
  Journal* Get(const std::string& journal);
  Error Poisoned() const;

  std::string dir_;
  LedgerState committed_;
  std::map<std::string, std::unique_ptr<Journal>, std::less<>> journals_;
  std::vector<Journal*> touched_;  // journals appended to in the current transaction
  io::File ledger_;
  uint64_t ledger_size_ = 0;
  uint64_t tmp_counter_ = 0;
  int threads_;  // compressing fragments at once, in Persist
  // Spools being persisted in the background (PersistDue), one at most per journal.
  struct PersistJob {
    std::string journal;
    std::future<Result<std::vector<WrittenFragment>>> done;
  };
  std::vector<PersistJob> jobs_;
  bool failed_ = false;
  StoreStats stats_;
};

// One fragment file of the lake.
struct Fragment {
  uint64_t begin = 0, end = 0;
  Codec codec = Codec::kGzip;
  std::string path;  // absolute or relative to the working directory
  std::string sha1;  // of the uncompressed content, from the name (40 lowercase hex digits)
};

// The fragments of `journal` in `dir`'s lake, ordered by begin offset.
Result<std::vector<Fragment>> ListFragments(const std::string& dir, const std::string& journal);

// Reads a journal's committed bytes from `offset` on: from fragments, then the spool.
// Every fragment is checked against the length and SHA-1 in its name as it is decoded; a
// mismatch is an error naming the fragment (checked before the fragment's last block is
// returned, so a fragment of one block is verified before any of it is).
class JournalReader {
 public:
  JournalReader(std::string dir, std::string journal, uint64_t offset = 0);
  ~JournalReader();
  JournalReader(JournalReader&&) noexcept;

  // Replaces `out` with the next bytes below `head` (a committed head read from the
  // ledger); empty once the reader is at `head`.
  Result<bool> Read(uint64_t head, std::string* out);
  // Read, appending the bytes to `out` (a line cursor's buffer: one copy fewer); returns
  // how many it appended, 0 once the reader is at `head`.
  Result<size_t> Append(uint64_t head, std::string* out);
  uint64_t offset() const { return offset_; }
  const std::string& journal() const { return journal_; }

 private:
  struct Source;
  Result<bool> OpenSource();
  std::string dir_, journal_;
  uint64_t offset_;
  std::unique_ptr<Source> source_;
};

}  // namespace flow::store
