// Baseline of the `flowctl combine` benchmark (bench/combine_bench.sh): the cost of only
// reading a JSON-lines file and parsing every line into a RapidJSON DOM, as a realistic
// reader would (large reads, lines split in place, one reused allocator). Whatever combine
// does on top (validation, reduction, sorting, spilling, printing) is measured against it.
//
//   json_parse_baseline FILE
//   parse: 1000000 docs, 1234567 docs/s, 345.6 MB/s        (MB = 10^6 bytes of input)
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace {

using rapidjson::Document;

// Something derived from every parsed document, so no parse can be optimised away.
std::size_t Weigh(const Document& d) {
  return d.IsObject() ? d.MemberCount() : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FILE.jsonl\n", argv[0]);
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  const int fd = open(argv[1], O_RDONLY);
  if (fd < 0) {
    std::fprintf(stderr, "json_parse_baseline: cannot open %s: %s\n", argv[1], std::strerror(errno));
    return 1;
  }

  // DOM values go to one pool that starts in a fixed buffer and is cleared after each line,
  // so values allocate nothing in steady state (a Document reused as is would grow its pool
  // without bound). The parser's small stacks use malloc/free, as in any plain Document.
  constexpr std::size_t kValueBuffer = 64 << 10;
  auto value_buffer = std::make_unique<char[]>(kValueBuffer);
  Document::AllocatorType value_allocator(value_buffer.get(), kValueBuffer);

  constexpr std::size_t kRead = 1 << 20;
  std::vector<char> buf(kRead + 1);  // +1: room for the terminating NUL of a last line
  std::size_t have = 0;               // bytes in buf[0, have), starting at a line start
  std::size_t docs = 0, bytes = 0, weight = 0, line_no = 0;
  bool eof = false;
  while (!eof) {
    if (buf.size() - 1 - have < kRead / 2) buf.resize(2 * buf.size());  // a very long line
    const ssize_t n = read(fd, buf.data() + have, buf.size() - 1 - have);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "json_parse_baseline: read %s: %s\n", argv[1], std::strerror(errno));
      return 1;
    }
    eof = n == 0;
    have += static_cast<std::size_t>(n);
    bytes += static_cast<std::size_t>(n);
    if (eof && have > 0 && buf[have - 1] != '\n') buf[have++] = '\n';  // unterminated last line

    char* line = buf.data();
    char* const end = buf.data() + have;
    while (char* nl = static_cast<char*>(std::memchr(line, '\n', end - line))) {
      ++line_no;
      *nl = '\0';  // parse the line in place as a NUL-terminated string (RapidJSON's fast path)
      if (nl != line && !(nl - line == 1 && line[0] == '\r')) {
        Document doc(&value_allocator);
        doc.Parse(line);
        if (doc.HasParseError()) {
          std::fprintf(stderr, "json_parse_baseline: %s:%zu:%zu: %s\n", argv[1], line_no,
                       doc.GetErrorOffset() + 1, rapidjson::GetParseError_En(doc.GetParseError()));
          return 1;
        }
        weight += Weigh(doc);
        ++docs;
      }
      value_allocator.Clear();
      line = nl + 1;
    }
    have = static_cast<std::size_t>(end - line);
    std::memmove(buf.data(), line, have);  // keep the partial line for the next read
  }
  close(fd);

  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("parse: %zu docs, %.0f docs/s, %.1f MB/s\n", docs, docs / secs, bytes / 1e6 / secs);
  return weight >= docs ? 0 : 1;  // always true; keeps `weight` observable
}
