// The commands' messages to stderr (SPEC 8), in one of two forms: human text (the default,
// with colour on a terminal), or with `--log-format json` one JSON record per line, the
// same records `base/log.h` writes for operational logs. Commands print their errors and
// summaries through these functions instead of writing stderr themselves, so that in JSON
// mode stderr holds nothing but records. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/log.h"
#include "base/result.h"

namespace flow::cli {

// Whether stderr carries JSON records (`--log-format json`).
bool JsonOutput();

// `error: message` (text), or an error record with `fields`.
void PrintError(std::string_view message, const std::vector<LogField>& fields = {});

// `where: error: message` (text; `where` is e.g. `file:line:col`), or an error record with
// a `where` field.
void PrintErrorAt(std::string_view where, std::string_view message,
                  const std::vector<LogField>& fields = {});

// PrintErrorAt(where, e.message) when `where` is not empty, else PrintError; returns the
// exit code of `e`.
int PrintErrorAtPlace(std::string_view where, const Error& e);

// PrintError(e.message); returns the exit code of `e`.
inline int PrintFailure(const Error& e) { return PrintErrorAtPlace({}, e); }

// JSON lines to stdout, written in blocks of 1 MiB.
class StdoutLines {
 public:
  // Appends `line` and a '\n'; after a failed write, an environment error "cannot write the
  // output: ...".
  Result<bool> Add(std::string_view line);
  // Writes what is buffered and flushes stdout.
  void Flush();
  bool failed() const { return failed_; }

 private:
  void Write();
  std::string out_;
  bool failed_ = false;
};

// Asks `question` with [y/N] on the terminal and says whether the answer was yes (else
// notes `declined`); true at once with `yes`. Without a terminal on stdin, prints the error
// `no_terminal` (which asks for --yes) and returns false.
bool Confirm(std::string_view question, bool yes, std::string_view no_terminal, std::string_view declined);

// A progress line on stderr, redrawn at most twice a second ("ingesting: N documents, M MB
// read"); only on a terminal and without --log-format json.
class ProgressLine {
 public:
  explicit ProgressLine(std::string verb);
  bool enabled() const { return enabled_; }
  void Update(uint64_t docs, uint64_t bytes);
  // Erases the line, when it was drawn.
  void Clear();

 private:
  std::string verb_;
  bool enabled_, shown_ = false;
  std::chrono::steady_clock::time_point last_;
};

// A command's summary or report line, as written (text), or an info record with `fields`.
void PrintNote(std::string_view line, const std::vector<LogField>& fields = {});

// A line of a running command's log (`run`, `develop`): as written (text), or a record whose
// level is error or warn when the line starts `error: ` or `warning: ` (the prefix dropped),
// else info.
void PrintLine(std::string_view line);


}  // namespace flow::cli
