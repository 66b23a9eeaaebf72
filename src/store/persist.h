// Writing a spool's committed bytes into lake fragments (SPEC 3.3), apart from the Store's
// state, so that it can run on other threads: fragments of one range are compressed in
// parallel, and `Store::PersistDue` runs the whole of it in the background. Internal to
// store/.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

#include "base/result.h"
#include "store/naming.h"

namespace flow::store {

// What to persist: the committed bytes [from, to) of a journal's spool file, which holds
// the journal from `spool_begin` on and is only appended to meanwhile.
struct PersistRange {
  std::string dir;  // the data directory
  std::string journal;
  std::string spool_path;
  uint64_t spool_begin = 0;
  std::time_t spool_created = 0;
  Codec codec = Codec::kGzip;
  uint64_t fragment_size = 0;
  uint64_t from = 0, to = 0;
  std::string tmp_prefix;  // unique per range: temporary files are tmp_prefix + "-N"
};

struct WrittenFragment {
  uint64_t begin = 0, end = 0;
  uint64_t disk_bytes = 0;
};

// Writes the fragments of `range`, cut after the first line end at or beyond the fragment
// size (so their bytes and names do not depend on `threads`), compressing up to `threads`
// of them at once, and moves them into the lake in offset order, each durably. Returns them
// in offset order; on an error, those before the failed one may be in the lake.
Result<std::vector<WrittenFragment>> WriteFragments(const PersistRange& range, int threads);

}  // namespace flow::store
