#include "store/persist.h"

#include <fmt/format.h>

#include <algorithm>
#include <future>

#include "base/io.h"
#include "store/codec.h"
#include "store/layout.h"
#include "store/naming.h"

namespace flow::store {
namespace {

// One fragment [begin, end) of `range`, written to `tmp`: its SHA-1 and size on disk.
struct Encoded {
  std::string tmp, sha1;
  uint64_t disk_bytes = 0;
};

Result<Encoded> Encode(const PersistRange& range, uint64_t begin, uint64_t end, std::string tmp) {
  auto in = io::File::OpenRead(range.spool_path);
  if (!in) return in.error();
  auto out = io::File::OpenAppend(tmp, true);
  if (!out) return out.error();
  auto t = out->Truncate(0);
  if (!t) return t.error();
  auto enc = Encoder::Make(range.codec, &out.value());
  Sha1 sha;
  std::string block;
  for (uint64_t pos = begin; pos < end;) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(kReadBlock, end - pos));
    auto r = in->ReadAt(pos - range.spool_begin, want, &block);
    if (!r) return r.error();
    if (block.empty())
      return Error::Env(fmt::format("spool {} ends before offset {}", range.spool_path, pos));
    sha.Update(block);
    auto w = enc->Write(block);
    if (!w) return w.error();
    out->StartWriteback();
    pos += block.size();
  }
  auto fin = enc->Finish();
  if (!fin) return fin.error();
  auto s = out->Sync();
  if (!s) return s.error();
  auto disk = out->Size();
  out->Close();
  return Encoded{std::move(tmp), sha.HexDigest(), disk ? *disk : 0};
}

// Where the fragments of [from, to) end: after the first line end at or beyond the
// fragment size from each one's beginning, or at `to`.
Result<std::vector<uint64_t>> CutPoints(const PersistRange& range) {
  std::vector<uint64_t> ends;
  auto in = io::File::OpenRead(range.spool_path);
  if (!in) return in.error();
  std::string block;
  uint64_t size = std::max<uint64_t>(range.fragment_size, 1);
  for (uint64_t begin = range.from; begin < range.to;) {
    uint64_t end = range.to;
    // The byte at fragment_size - 1 from `begin` on: the first line end there or later.
    for (uint64_t pos = begin + size - 1; pos < range.to;) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(kReadBlock, range.to - pos));
      auto r = in->ReadAt(pos - range.spool_begin, want, &block);
      if (!r) return r.error();
      if (block.empty())
        return Error::Env(fmt::format("spool {} ends before offset {}", range.spool_path, pos));
      size_t nl = block.find('\n');
      if (nl != std::string::npos) {
        end = pos + nl + 1;
        break;
      }
      pos += block.size();
    }
    ends.push_back(end);
    begin = end;
  }
  return ends;
}

}  // namespace

Result<std::vector<WrittenFragment>> WriteFragments(const PersistRange& range, int threads) {
  auto ends = CutPoints(range);
  if (!ends) return ends.error();
  size_t n = ends->size();
  std::vector<uint64_t> begins(n);
  for (size_t i = 0; i < n; ++i) begins[i] = i == 0 ? range.from : (*ends)[i - 1];
  // Encode up to `threads` at once, then move them into the lake in order.
  std::vector<std::future<Result<Encoded>>> running(n);
  std::vector<std::optional<Result<Encoded>>> done(n);
  size_t started = 0, window = static_cast<size_t>(std::max(threads, 1));
  auto start = [&](size_t i) {
    std::string tmp = fmt::format("{}-{}", range.tmp_prefix, i);
    if (window == 1) {
      done[i] = Encode(range, begins[i], (*ends)[i], std::move(tmp));
    } else {
      running[i] = std::async(std::launch::async, Encode, std::cref(range), begins[i], (*ends)[i],
                              std::move(tmp));
    }
  };
  std::vector<WrittenFragment> out;
  std::optional<Error> failed;
  for (size_t i = 0; i < n; ++i) {
    while (started < n && started < i + window) start(started++);
    if (!done[i]) done[i] = running[i].get();
    Result<Encoded>& e = *done[i];
    if (failed) {
      if (e) std::remove(e->tmp.c_str());
      continue;
    }
    if (!e) {
      failed = e.error();
      continue;
    }
    std::string rel = FragmentPath(range.journal, range.spool_created, begins[i], (*ends)[i],
                                   e->sha1, range.codec);
    std::string dest = range.dir + "/lake/" + rel;
    auto made = io::CreateDirs(dest.substr(0, dest.find_last_of('/')));
    auto mv = made ? io::RenameDurably(e->tmp, dest) : Result<bool>(made.error());
    if (!mv) {
      failed = mv.error();
      std::remove(e->tmp.c_str());
      continue;
    }
    out.push_back({begins[i], (*ends)[i], e->disk_bytes});
  }
  if (failed) return *failed;
  return out;
}

}  // namespace flow::store
