// Fuzz target: recovery of a data directory (src/store/journal.h) whose ledger holds
// arbitrary bytes. Each input becomes the ledger of a copy of a real data directory (two
// committed transactions of one journal, in its spool), which is then read and opened.
// The first byte picks the mode: even, the rest is the ledger as is; odd, each line of the
// rest gets its correct CRC prefix (`%08x `), so that mutations of the records' JSON reach
// recovery instead of failing the checksum.
// Invariants: reading and opening end without a crash; when opening succeeds, the ledger
// on disk says what the store says it committed, the journal reads back exactly up to its
// head, and a new commit is durable: reopening finds it, with the same heads.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include <zlib.h>

#include <fmt/format.h>

#include "fuzz.h"
#include "store/journal.h"

using flow::fuzz::Check;
namespace store = flow::store;
namespace fs = std::filesystem;

namespace {

const char* kJournal = "acme/orders/pivot=00";

// The data directory every input starts from, made once by the store itself.
const std::string& Template(const std::string& root) {
  static const std::string dir = [&] {
    std::string d = root + "/template";
    auto s = store::Store::Open(d);
    Check(s.ok(), "cannot create the template data directory");
    store::JournalSpec spec;
    spec.codec = store::Codec::kNone;
    for (const char* lines : {"{\"id\":1}\n{\"id\":2}\n", "{\"id\":3}\n"}) {
      Check((*s)->Append(kJournal, spec, lines).ok(), "template append failed");
      Check((*s)->Commit({{"task", "checkpoint"}}).ok(), "template commit failed");
    }
    return d;
  }();
  return dir;
}

std::string ReadJournal(const std::string& dir, uint64_t head, bool* ok) {
  store::JournalReader reader(dir, kJournal);
  std::string out, block;
  *ok = true;
  for (;;) {
    auto r = reader.Read(head, &block);
    if (!r) {
      *ok = false;
      return out;
    }
    if (block.empty()) return out;
    out += block;
  }
}

}  // namespace

// `text` with each line prefixed by the CRC-32 of its content, as the store writes records.
std::string WithChecksums(std::string_view text) {
  std::string out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    uint32_t crc = static_cast<uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(line.data()), static_cast<uInt>(line.size())));
    out += fmt::format("{:08x} ", crc);
    out += line;
    if (nl == std::string_view::npos) break;  // a torn last record stays torn
    out += '\n';
    text.remove_prefix(nl + 1);
  }
  return out;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static flow::fuzz::ScratchDir scratch;
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string ledger = data[0] & 1 ? WithChecksums(rest) : std::string(rest);
  const std::string& tmpl = Template(scratch.path());
  const std::string dir = scratch.path() + "/data";
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::copy(tmpl, dir, fs::copy_options::recursive, ec);
  Check(!ec, "cannot copy the template data directory");
  {
    std::ofstream out(dir + "/ledger", std::ios::binary | std::ios::trunc);
    out.write(ledger.data(), static_cast<std::streamsize>(ledger.size()));
    Check(out.good(), "cannot write the ledger");
  }

  (void)store::ReadLedger(dir);
  auto opened = store::Store::Open(dir);
  if (!opened) {
    Check(!opened.error().message.empty(), "a refusal to open without a message");
    return 0;
  }
  auto& s = *opened;
  store::LedgerState before = s->committed();
  auto on_disk = store::ReadLedger(dir);
  Check(on_disk.ok(), "the ledger of an opened store cannot be read");
  Check(on_disk->heads == before.heads && on_disk->checkpoints == before.checkpoints,
        "the opened store and its ledger disagree on what was committed");
  uint64_t head = before.heads.count(kJournal) ? before.heads.at(kJournal) : 0;
  bool read_ok = false;
  std::string content = ReadJournal(dir, head, &read_ok);
  if (read_ok) Check(content.size() == head, "the journal does not read back up to its head");

  store::JournalSpec spec;
  spec.codec = store::Codec::kNone;
  const std::string line = "{\"id\":4}\n";
  if (!s->Append(kJournal, spec, line).ok()) return 0;
  auto committed = s->Commit();
  if (!committed) return 0;
  Check(committed->count(kJournal) && committed->at(kJournal) == head + line.size(),
        "a commit did not advance the head by what was appended");
  store::LedgerState after = s->committed();
  s.reset();

  auto reopened = store::Store::Open(dir);
  Check(reopened.ok(), "a data directory the store just committed to does not open again");
  Check((*reopened)->committed().heads == after.heads, "reopening lost or changed committed heads");
  Check((*reopened)->committed().checkpoints == after.checkpoints,
        "reopening changed the checkpoints");
  return 0;
}
