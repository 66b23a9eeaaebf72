// The commands' messages to stderr (SPEC 8), in one of two forms: human text (the default,
// with colour on a terminal), or with `--log-format json` one JSON record per line, the
// same records `base/log.h` writes for operational logs. Commands print their errors and
// summaries through these functions instead of writing stderr themselves, so that in JSON
// mode stderr holds nothing but records. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
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

// The progress of long work (`ingest`, `combine`, `run`), in one form for every command. On a
// terminal: one line on stderr, redrawn twice a second by a thread of its own, so that it
// keeps moving (elapsed time) through phases that report nothing, such as writing fragments:
//   ingesting: 412,345 documents, 173.2 of 418.9 MB (41%), 95.1k documents/s, 2 s left
// The percentage and time left appear when the total is known (SetTotal). With
// `--log-format json`: an info record "progress" every 5 s with the same figures as fields
// (verb, documents, bytes, total_bytes, percent, rate, eta_seconds, phase, elapsed).
// Otherwise (a pipe, a file): nothing. Thread-safe.
class Progress {
 public:
  explicit Progress(std::string verb);
  ~Progress();  // Clear()
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  bool enabled() const;
  // The input's size in bytes, when known (a file, not a pipe or compressed input).
  void SetTotal(uint64_t bytes);
  // Documents and bytes done so far.
  void Update(uint64_t documents, uint64_t bytes);
  // A phase without counts ("writing fragments"), shown with its elapsed time; "" ends it.
  void Phase(std::string text);
  // Replaces the figures with a free text (`run`'s tasks).
  void Text(std::string text);
  // Erases the line (before other output, and at the end); the next redraw draws it again.
  void Clear();
  // Runs `print` (which writes lines to stderr) with the line erased; it is drawn again below.
  void Above(const std::function<void()>& print);
  // Stops redrawing, and erases the line.
  void Stop();

  // The line as drawn at `elapsed` seconds (for tests).
  std::string Render(double elapsed) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// A command's summary or report line, as written (text), or an info record with `fields`.
void PrintNote(std::string_view line, const std::vector<LogField>& fields = {});

// A line of a running command's log (`run`, `develop`): as written (text), or a record whose
// level is error or warn when the line starts `error: ` or `warning: ` (the prefix dropped),
// else info.
void PrintLine(std::string_view line);


}  // namespace flow::cli
