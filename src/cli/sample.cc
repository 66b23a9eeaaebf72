#include "cli/sample.h"

#include <fmt/format.h>

#include "doc/parse.h"
#include "runtime/input.h"

namespace flow::cli {

std::optional<runtime::IngestFormat> SampleFormat(const std::string& path,
                                                  const std::string& format) {
  if (!format.empty()) return runtime::ParseIngestFormat(format);
  return runtime::IngestFormatOfName(path);
}

Result<bool> ReadSample(const std::string& path, runtime::IngestFormat format,
                        std::vector<runtime::CsvField> fields,
                        const std::function<void(const doc::Value&)>& each, std::string* where) {
  auto input = runtime::Input::Open(path);
  if (!input) return input.error();
  const std::string& name = input->name();
  if (format == runtime::IngestFormat::kJson) {
    runtime::LineReader lines(input->file());
    std::string_view line;
    while (lines.Next(&line)) {
      if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;  // a blank line
      rapidjson::Document d;
      doc::ParseError e;
      if (!doc::ParseTerminatedDocument(line, &d, &e)) {
        *where = fmt::format("{}:{}:{}", name, lines.number(), e.offset + 1);
        return Error::User(e.message);
      }
      if (!d.IsObject()) {
        *where = fmt::format("{}:{}", name, lines.number());
        return Error::User(
            fmt::format("the document is a JSON {}, not an object: each line must hold one object",
                        doc::KindName(d)));
      }
      each(d);
    }
    if (lines.too_long()) {
      *where = name;
      return Error::User(lines.TooLongMessage());
    }
    if (lines.failed())
      return Error::Env(fmt::format("reading {}: {}", name, std::strerror(errno)));
    return true;
  }
  auto csv = runtime::CsvConverter::AcceptingAnyHeader(
      format == runtime::IngestFormat::kCsv ? runtime::CsvDialect::kCsv : runtime::CsvDialect::kTsv,
      name, std::move(fields));
  doc::Allocator allocator;
  runtime::CsvConverter::Emit emit = [&](uint64_t, doc::Value& d) -> Result<bool> {
    each(d);
    return true;
  };
  std::vector<char> block(1 << 20);
  for (;;) {
    size_t n = std::fread(block.data(), 1, block.size(), input->file());
    if (n > 0) {
      auto fed = csv->Feed(std::string_view(block.data(), n), allocator, emit);
      allocator.Clear();  // the documents of the block are done with
      if (!fed) {
        *where = name;
        return fed.error();
      }
    }
    if (n < block.size()) break;
  }
  if (std::ferror(input->file()))
    return Error::Env(fmt::format("reading {}: {}", name, std::strerror(errno)));
  auto finished = csv->Finish(allocator, emit);
  if (!finished) {
    *where = name;
    return finished.error();
  }
  return true;
}

}  // namespace flow::cli
