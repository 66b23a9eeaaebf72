#include "runtime/input.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "doc/parse.h"
#include "store/codec.h"

namespace flow::runtime {

// What a FILE* made by fopencookie reads: the bytes read ahead to sniff the format, then
// the file descriptor, through a decoder when the input is compressed.
struct Input::Stream {
  int fd = -1;
  bool owns_fd = false;
  std::string head;  // read ahead, not yet given
  size_t head_off = 0;
  std::unique_ptr<store::StreamDecoder> decoder;
  std::string error;  // the decoder's, when a read failed

  ssize_t ReadRaw(char* buf, size_t n) {
    if (head_off < head.size()) {
      size_t k = std::min(n, head.size() - head_off);
      std::memcpy(buf, head.data() + head_off, k);
      head_off += k;
      return static_cast<ssize_t>(k);
    }
    return ::read(fd, buf, n);
  }
  static ssize_t Read(void* cookie, char* buf, size_t n) {
    auto* s = static_cast<Stream*>(cookie);
    if (!s->decoder) {
      ssize_t r;
      do r = s->ReadRaw(buf, n);
      while (r < 0 && errno == EINTR);
      return r;
    }
    auto r = s->decoder->Read(buf, n);
    if (!r) {
      s->error = r.error().message;
      errno = EIO;
      return -1;
    }
    return static_cast<ssize_t>(*r);
  }
  static int Close(void* cookie) {
    auto* s = static_cast<Stream*>(cookie);
    if (s->owns_fd && s->fd >= 0) ::close(s->fd);
    s->fd = -1;
    return 0;
  }
};

Input::Input(FILE* f, std::string name, std::unique_ptr<Stream> stream, const char* compression)
    : f_(f), name_(std::move(name)), stream_(std::move(stream)), compression_(compression) {}

Input::Input(Input&& o) noexcept
    : f_(o.f_), name_(std::move(o.name_)), stream_(std::move(o.stream_)), compression_(o.compression_) {
  o.f_ = nullptr;
}

Result<Input> Input::Open(const std::string& path) {
  bool is_stdin = path.empty() || path == "-";
  std::string name = is_stdin ? "<stdin>" : path;
  auto stream = std::make_unique<Stream>();
  if (is_stdin) {
    stream->fd = STDIN_FILENO;
  } else {
    stream->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (stream->fd < 0) return Error::User(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
    stream->owns_fd = true;
  }
  auto fail = [&](Error e) {
    Stream::Close(stream.get());
    return e;
  };
  // Sniff the first bytes (a pipe may give them a few at a time).
  stream->head.resize(4);
  size_t have = 0;
  while (have < stream->head.size()) {
    ssize_t n = ::read(stream->fd, stream->head.data() + have, stream->head.size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(Error::User(fmt::format("cannot read {}: {}", name, std::strerror(errno))));
    if (n == 0) break;
    have += static_cast<size_t>(n);
  }
  stream->head.resize(have);
  auto codec = store::SniffCodec(stream->head);
  const char* compression = !codec ? "" : *codec == store::Codec::kGzip ? "gzip" : "zstd";
  for (auto [suffix, want] : {std::pair{".gz", "gzip"}, std::pair{".zst", "zstd"}}) {
    if (!is_stdin && path.ends_with(suffix) && have > 0 && std::strcmp(compression, want) != 0) {
      return fail(Error::User(fmt::format("{} is not {} data, though its name ends in {}", name, want, suffix)));
    }
  }
  if (!codec && !is_stdin && ::lseek(stream->fd, 0, SEEK_SET) == 0) {
    // A plain file: read it directly (the usual case, and the fastest).
    FILE* f = ::fdopen(stream->fd, "rb");
    if (!f) return fail(Error::Env(fmt::format("cannot open {}: {}", path, std::strerror(errno))));
    return Input(f, name, nullptr, "");
  }
  Stream* s = stream.get();
  if (codec) {
    s->decoder = store::StreamDecoder::Make(*codec, [s](char* buf, size_t n) { return s->ReadRaw(buf, n); });
  }
  FILE* f = ::fopencookie(s, "rb", cookie_io_functions_t{Stream::Read, nullptr, nullptr, Stream::Close});
  if (!f) return fail(Error::Env(fmt::format("cannot open {}: {}", name, std::strerror(errno))));
  std::setvbuf(f, nullptr, _IOFBF, 1 << 20);
  return Input(f, name, std::move(stream), compression);
}

Input::~Input() {
  if (f_) std::fclose(f_);  // a cookie stream's Close leaves stdin open
}

uint64_t Input::size() const {
  struct stat st;
  if (stream_ || !f_ || ::fstat(::fileno(f_), &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  return static_cast<uint64_t>(st.st_size);
}

std::string Input::ReadErrorMessage(int err) const {
  if (stream_ && !stream_->error.empty()) return stream_->error;
  return std::strerror(err);
}

bool LineReader::Next(std::string_view* line) {
  if (too_long_) return false;
  for (;;) {
    size_t nl = buf_.find('\n', off_);
    if (nl != std::string::npos) {
      buf_[nl] = '\0';
      *line = std::string_view(buf_).substr(off_, nl - off_);
      off_ = nl + 1;
      if (++number_ == 1) SkipBom(line);
      return true;
    }
    if (eof_) {
      if (off_ >= buf_.size()) return false;
      *line = std::string_view(buf_).substr(off_);
      off_ = buf_.size();
      if (++number_ == 1) SkipBom(line);
      return true;
    }
    buf_.erase(0, off_);
    off_ = 0;
    size_t have = buf_.size();
    if (have > max_line_) {
      number_ += 1;
      too_long_ = true;
      return false;
    }
    // Never more than the limit and a block: a line without an end stops at the limit.
    size_t want = std::min(kBlock, max_line_ + 1 - have);
    buf_.resize(have + want);
    size_t n = std::fread(buf_.data() + have, 1, want, f_);
    buf_.resize(have + n);
    bytes_ += n;
    if (n == 0) eof_ = true;
  }
}

const size_t LineReader::kMaxLine = doc::ParseLimits{}.max_bytes + 1;

std::string LineReader::TooLongMessage() const { return TooLongMessage(number_, max_line_, buf_.size()); }

std::string LineReader::TooLongMessage(size_t number, size_t max_line, size_t held) {
  return fmt::format("line {} is longer than the document limit of {} MiB (no line end in its first {} bytes); "
                     "each line must be one JSON document",
                     number, (max_line - 1) >> 20, held);
}

void LineReader::SkipBom(std::string_view* line) {
  if (line->substr(0, 3) == "\xEF\xBB\xBF") line->remove_prefix(3);
}

}  // namespace flow::runtime
