#include "cli/input.h"

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace flow::cli {

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
    buf_.resize(have + kBlock);
    size_t n = std::fread(buf_.data() + have, 1, kBlock, f_);
    buf_.resize(have + n);
    bytes_ += n;
    if (n == 0) eof_ = true;
  }
}

void LineReader::SkipBom(std::string_view* line) {
  if (line->substr(0, 3) == "\xEF\xBB\xBF") line->remove_prefix(3);
}

}  // namespace flow::cli
