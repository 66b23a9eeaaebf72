#include "store/journal.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "store/codec.h"
#include "store/layout.h"

namespace flow::store {
namespace fs = std::filesystem;

struct JournalReader::Source {
  uint64_t begin = 0;                // journal offset of the source's first byte
  uint64_t end = 0;                  // offset where the source ends (UINT64_MAX for a spool)
  std::unique_ptr<Decoder> decoder;  // a fragment
  io::File spool;                    // or the spool
  std::string pending;               // decoded bytes not yet returned
  uint64_t pending_at = 0;           // offset of pending[0]
  // A fragment's content is checked against its name as it is decoded.
  std::string path, sha1;
  std::unique_ptr<Sha1> sha;
  uint64_t decoded = 0;

  // Accounts for a newly decoded block (`pending`); an error once the fragment's content is
  // complete and its length or SHA-1 differs from its name.
  Result<bool> Check(const std::string& journal) {
    decoded += pending.size();
    if (decoded > end - begin) {
      return Error::Env(
          fmt::format("journal {}: fragment {} holds more than the {} bytes its name says; it is "
                      "damaged (run `flowctl fsck`)",
                      journal, path, end - begin));
    }
    sha->Update(pending);
    if (decoded < end - begin) return true;
    std::string got = sha->HexDigest();
    if (got != sha1) {
      return Error::Env(fmt::format(
          "journal {}: fragment {} is damaged: the SHA-1 of its content is {}, its name "
          "says {}; its documents cannot be trusted (run `flowctl fsck`, restore the "
          "file from a backup)",
          journal, path, got, sha1));
    }
    return true;
  }
};

JournalReader::JournalReader(std::string dir, std::string journal, uint64_t offset)
    : dir_(std::move(dir)), journal_(std::move(journal)), offset_(offset) {}
JournalReader::~JournalReader() = default;
JournalReader::JournalReader(JournalReader&&) noexcept = default;

Result<bool> JournalReader::OpenSource() {
  source_.reset();
  auto frags = ListFragments(dir_, journal_);
  if (!frags) return frags.error();
  uint64_t next_fragment = UINT64_MAX;
  for (const auto& f : *frags) {
    if (f.begin <= offset_ && offset_ < f.end) {
      bool missing = false;
      auto file = io::File::OpenRead(f.path, &missing);
      if (!file) return file.error();
      auto s = std::make_unique<Source>();
      s->begin = f.begin;
      s->end = f.end;
      s->decoder = Decoder::Make(f.codec, std::move(file.value()));
      s->pending_at = f.begin;
      s->path = f.path;
      s->sha1 = f.sha1;
      s->sha = std::make_unique<Sha1>();
      source_ = std::move(s);
      return true;
    }
    if (f.begin > offset_) next_fragment = std::min(next_fragment, f.begin);
  }
  // The spool: the newest file in spool/<journal>/ beginning at or before the offset.
  std::error_code ec;
  std::string sdir = SpoolDir(dir_, journal_);
  std::string best;
  uint64_t best_begin = 0;
  for (const auto& e : fs::directory_iterator(sdir, ec)) {
    uint64_t begin = 0;
    std::time_t created = 0;
    Codec codec = Codec::kGzip;
    if (ParseSpoolName(e.path().filename().string(), &begin, &created, &codec) &&
        begin <= offset_ && (best.empty() || begin > best_begin)) {
      best = e.path().string();
      best_begin = begin;
    }
  }
  if (best.empty()) return false;
  bool missing = false;
  auto file = io::File::OpenRead(best, &missing);
  if (!file) {
    if (missing) return false;  // persisted meanwhile
    return file.error();
  }
  auto s = std::make_unique<Source>();
  s->begin = best_begin;
  s->end = next_fragment;
  s->spool = std::move(file.value());
  source_ = std::move(s);
  return true;
}

Result<bool> JournalReader::Read(uint64_t head, std::string* out) {
  out->clear();
  auto n = Append(head, out);
  if (!n) return n.error();
  return true;
}

Result<size_t> JournalReader::Append(uint64_t head, std::string* out) {
  for (int attempt = 0; offset_ < head; ++attempt) {
    if (!source_ || offset_ >= source_->end) {
      auto o = OpenSource();
      if (!o) return o.error();
      if (!o.value()) {
        // A writer may have just moved the spool into a fragment; look once more.
        if (attempt < 3) {
          ::usleep(1000);
          continue;
        }
        return Error::Env(fmt::format("journal {}: no fragment or spool in {} holds offset {}",
                                      journal_, dir_, offset_));
      }
    }
    Source& s = *source_;
    uint64_t limit = std::min(head, s.end);
    if (s.decoder) {
      while (s.pending_at + s.pending.size() <= offset_) {
        s.pending_at += s.pending.size();
        auto r = s.decoder->Read(&s.pending);
        if (!r) return r.error();
        if (s.pending.empty()) {
          return Error::Env(
              fmt::format("journal {}: fragment {} ends at offset {}, before its name says ({})",
                          journal_, s.path, s.pending_at, s.end));
        }
        auto c = s.Check(journal_);
        if (!c) return c.error();
      }
      size_t from = static_cast<size_t>(offset_ - s.pending_at);
      size_t n = static_cast<size_t>(std::min<uint64_t>(s.pending.size() - from, limit - offset_));
      out->append(s.pending, from, n);
      offset_ += n;
      return n;
    } else {
      size_t want = static_cast<size_t>(std::min<uint64_t>(kReadBlock, limit - offset_));
      std::string block;
      auto r = s.spool.ReadAt(offset_ - s.begin, want, &block);
      if (!r) return r.error();
      if (block.empty()) {
        // The spool was truncated or replaced under us: find the source again.
        source_.reset();
        if (attempt < 3) continue;
        return Error::Env(fmt::format("journal {}: the spool ends before committed offset {}",
                                      journal_, offset_));
      }
      out->append(block);
      offset_ += block.size();
      return block.size();
    }
  }
  return size_t{0};
}

}  // namespace flow::store
