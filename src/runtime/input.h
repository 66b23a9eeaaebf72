// Reading an input (`flowctl ingest`, `flowctl combine`): a file or stdin, as lines in large
// blocks (JSON lines) or as raw blocks (CSV/TSV).
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"

namespace flow::runtime {

// A file opened for reading, or stdin for "" and "-". Closes what it opened. Compressed
// input is decompressed as it is read, whatever its name: gzip (any number of members) and
// zstd (any number of frames) are recognised by their first bytes; a name ending in `.gz`
// or `.zst` whose bytes are not so is refused.
class Input {
 public:
  static Result<Input> Open(const std::string& path);
  Input(Input&& o) noexcept;
  ~Input();
  FILE* file() const { return f_; }
  const std::string& name() const { return name_; }  // the path, or `<stdin>`
  // The size in bytes of an uncompressed regular file; 0 when unknown (stdin, a pipe,
  // compressed input).
  uint64_t size() const;
  // "gzip", "zstd", or "" for uncompressed input.
  const char* compression() const { return compression_; }
  // Why reading failed (ferror of file()), after errno `err`: a decompression error's own
  // message (corrupt or truncated data), else strerror(err).
  std::string ReadErrorMessage(int err) const;

  struct Stream;  // the state of a decompressing (or pushed-back) stream

 private:
  Input(FILE* f, std::string name, std::unique_ptr<Stream> stream, const char* compression);
  FILE* f_;
  std::string name_;
  std::unique_ptr<Stream> stream_;
  const char* compression_ = "";
};

// Reads a file as lines, in large blocks. A line is one document, so it may be at most the
// document limit long (16 MiB, SPEC 9, plus a '\r' before its '\n'): a longer one ends the
// reading with too_long() set, after at most that many bytes are held (`/dev/zero` does
// not fill the memory).
class LineReader {
 public:
  explicit LineReader(FILE* f, size_t max_line = kMaxLine) : f_(f), max_line_(max_line) {}
  // The next line without its '\n' (a final line may lack one), followed in memory by a
  // NUL byte (see doc::ParseTerminatedDocument). A UTF-8 byte order mark at the start of
  // the input is skipped. False at the end, on a read error (failed()), and at a line
  // longer than the limit (too_long(), number() is then that line's).
  bool Next(std::string_view* line);
  size_t number() const { return number_; }  // of the line last returned, 1-based
  uint64_t bytes() const { return bytes_; }  // read so far
  bool failed() const { return std::ferror(f_) != 0; }
  bool too_long() const { return too_long_; }
  // "a line longer than 16 MiB (no line end in its first N bytes): split the input..."
  std::string TooLongMessage() const;
  // The same about line `number`, after `held` bytes of it were read.
  static std::string TooLongMessage(size_t number, size_t max_line, size_t held);

  static const size_t kMaxLine;  // the document limit, plus one byte for a '\r'

 private:
  static void SkipBom(std::string_view* line);
  static constexpr size_t kBlock = 4 << 20;
  FILE* f_;
  std::string buf_;
  size_t off_ = 0, number_ = 0;
  uint64_t bytes_ = 0;
  size_t max_line_;
  bool eof_ = false, too_long_ = false;
};

}  // namespace flow::runtime
