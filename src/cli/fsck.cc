// `flowctl fsck`: verify a data directory without modifying it (SPEC sections 8 and 9).
#include "cli/commands.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/common.h"
#include "cli/output.h"
#include "store/journal.h"

namespace flow::cli {

struct FsckOptions {
  std::string data_dir = kDefaultDataDir;
};

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

Command RegisterFsck(CLI::App& app) {
  auto o = std::make_shared<FsckOptions>();
  auto* cmd =
      app.add_subcommand("fsck", "Verify a data directory: its ledger, spools and fragments");
  AddDataDirOption(*cmd, o->data_dir);
  cmd->footer(
      "Reads the ledger record by record, every spool, and every fragment of the lake "
      "(decompressing it and checking the SHA-1 in its name), and checks that every committed "
      "byte is in a fragment or a spool. Prints what is damaged (file and byte offset) and what "
      "can be salvaged. Modifies nothing and takes no lock. A torn final ledger record or "
      "uncommitted spool bytes, left by a crash, are notes, not damage: opening the directory "
      "discards them.\n"
      "Examples:\n"
      "  flowctl fsck                          # ./flowctl-data\n"
      "  flowctl fsck --data-dir /srv/flow     # another data directory\n"
      "Exit status: 0 clean, 1 damage found, 2 usage error, 3 the directory does not exist or "
      "cannot be read.");
  return {cmd, [o](const GlobalOptions& g) { return RunFsck(g, *o); }};
}

}  // namespace flow::cli
