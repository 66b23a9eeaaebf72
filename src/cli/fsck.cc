#include "cli/fsck.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

#include "cli/output.h"
#include "store/journal.h"

namespace flow::cli {
namespace {

// Whether another process holds the directory's lock. Tested with a read-only descriptor
// and a shared lock released at once, so nothing is written.
bool LockedByAnother(const std::string& dir) {
  int fd = ::open((dir + "/LOCK").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool locked = ::flock(fd, LOCK_SH | LOCK_NB) != 0;
  ::close(fd);  // releases the shared lock, if taken
  return locked;
}

}  // namespace

int RunFsck(const GlobalOptions&, const FsckOptions& o) {
  struct stat st;
  if (::stat(o.data_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    PrintError(fmt::format("data directory {} does not exist; pass --data-dir", o.data_dir));
    return kExitEnvironment;
  }
  if (LockedByAnother(o.data_dir)) {
    PrintNote(fmt::format(
        "warning: data directory {} is in use by another flowctl process; what it is writing "
        "right now may show as a torn tail or uncommitted bytes",
        o.data_dir));
  }
  auto verified = store::Verify(o.data_dir);
  if (!verified) {
    PrintError(verified.error().message);
    return kExitEnvironment;
  }
  const store::FsckReport& r = verified.value();
  std::string out;
  out += fmt::format("data directory {}\n", o.data_dir);
  const store::LedgerScan& l = r.ledger;
  out += fmt::format(
      "ledger: {}\n",
      !l.exists ? std::string("missing")
      : l.damaged
          ? fmt::format("{} byte(s): {} intact record(s), damage at byte offset {}, then {} "
                        "intact record(s)",
                        l.size, l.records, l.damaged_at, l.records_after)
          : fmt::format("{} byte(s), {} intact record(s)", l.size, l.records));
  out += fmt::format("journals committed: {}; fragments: {} ({} verified); spools: {}\n",
                     r.committed.heads.size(), r.fragments, r.fragments_ok, r.spools);
  for (const auto& n : r.notes) out += fmt::format("note: {}\n", n);
  for (const auto& d : r.damage) out += fmt::format("DAMAGED: {}\n", d);
  if (!r.clean()) {
    for (const auto& s : r.salvage) out += fmt::format("salvage: {}\n", s);
    out += fmt::format(
        "result: damaged ({} problem(s)). flowctl refuses to open this directory. Copy it aside, "
        "then restore it from a backup; without one, salvage what verifies (see \"Damage and flowctl fsck\" in "
        "docs/storage.md)\n",
        r.damage.size());
  } else {
    out += "result: clean\n";
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  return r.clean() ? kExitOk : kExitUserError;
}

}  // namespace flow::cli
