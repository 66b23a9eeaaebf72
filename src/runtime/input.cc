#include "runtime/input.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "doc/parse.h"

namespace flow::runtime {

Result<Input> Input::Open(const std::string& path) {
  if (path.empty() || path == "-") return Input(stdin, "<stdin>");
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Error::User(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  return Input(f, path);
}

Input::~Input() {
  if (f_ && f_ != stdin) std::fclose(f_);
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
