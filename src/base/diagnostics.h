// Diagnostics: user-facing errors and warnings that carry a source location, a scope and a
// hint. Catalog checks accumulate Diagnostics and report all of them at once, sorted by file
// and line. Errors fail a build; warnings do not (unless the user denies them). A
// Diagnostics collector is not thread-safe; use one per build.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace flow {

// A position in a source file. Lines and columns are 1-based; 0 means "unknown".
struct Mark {
  uint32_t line = 0;
  uint32_t col = 0;
};

struct Diagnostic {
  enum class Severity { kError, kWarning };
  Severity severity = Severity::kError;
  std::string file;     // display path or URL of the source
  Mark mark;
  std::string message;  // what is wrong, one line
  std::string scope;    // e.g. "collection `acme/orders` at /key/0"
  std::string hint;     // what to do, or empty

  // Formats as `file:line:col: error: message` (or `warning:`, in yellow when `color`), then
  // indented scope and hint lines.
  std::string Format(bool color) const;
  bool is_warning() const { return severity == Severity::kWarning; }
};

class Diagnostics {
 public:
  // Records an error. `file` is the display name of the source.
  void Error(std::string file, Mark mark, std::string message, std::string scope = {},
             std::string hint = {});
  // Records a warning: something that builds but is probably not what the author meant.
  void Warning(std::string file, Mark mark, std::string message, std::string scope = {},
               std::string hint = {});
  void Add(Diagnostic d) { items_.push_back(std::move(d)); }

  // Whether nothing at all, errors or warnings, was recorded.
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  size_t errors() const;
  size_t warnings() const { return items_.size() - errors(); }
  const std::vector<Diagnostic>& items() const { return items_; }
  // "2 errors and 1 warning", "1 error", "3 warnings": what was recorded, as a summary says it.
  std::string CountText() const;

  // Sorts by (file, line, col, message) and drops exact duplicates.
  void SortAndDedupe();

 private:
  std::vector<Diagnostic> items_;
};

// Exit codes of SPEC section 8.
enum ExitCode : int {
  kExitOk = 0,
  kExitUserError = 1,    // catalog errors, failed tests, invalid documents
  kExitUsage = 2,        // bad flags
  kExitEnvironment = 3,  // unreachable database, missing Node.js, I/O failures
};

// Error for runtime paths: a code, the message a user reads, and the chain of what it
// happened in.
struct Error {
  // kFenced: an environment error that retrying cannot fix, because another instance took
  // over what this one wrote to (a materialization's target).
  enum class Code { kUser, kEnvironment, kFenced, kInternal };
  Code code = Code::kUser;
  // The whole text, contexts included: "materialization `m`: target `db`: disk full".
  std::string message;
  // What the error is about, outermost first, each once: "materialization `m`", "lambda of
  // transform `t` (publish)": who failed, without reading the text. A context added with In
  // is also said in the message; one added with About is said there by whoever wrote it.
  std::vector<std::string> context = {};

  static Error User(std::string m) { return {Code::kUser, std::move(m)}; }
  static Error Env(std::string m) { return {Code::kEnvironment, std::move(m)}; }
  static Error Fenced(std::string m) { return {Code::kFenced, std::move(m)}; }
  static Error Internal(std::string m) { return {Code::kInternal, std::move(m)}; }
  int ExitCode() const {
    return code == Code::kEnvironment || code == Code::kFenced ? kExitEnvironment : kExitUserError;
  }

  // Whether `where` is in the chain.
  bool Within(std::string_view where) const {
    for (const auto& c : context) {
      if (c == where) return true;
    }
    return false;
  }
  // Records `where` in the chain, leaving the message as it is (it names `where` already).
  Error About(std::string where) && {
    if (!Within(where)) context.push_back(std::move(where));
    return std::move(*this);
  }
  // `where` as the outermost context: the message gets "<where>: " in front, unless the
  // chain holds it already (then the error is returned as it is, never named twice).
  Error In(std::string where) && {
    if (Within(where)) return std::move(*this);
    message = where + ": " + message;
    context.insert(context.begin(), std::move(where));
    return std::move(*this);
  }
};

}  // namespace flow
