#include "base/diagnostics.h"

#include <algorithm>
#include <fmt/format.h>
#include <tuple>

namespace flow {

std::string Diagnostic::Format(bool color) const {
  const char* bold = color ? "\033[1m" : "";
  const bool warning = is_warning();
  const char* red = !color ? "" : warning ? "\033[1;33m" : "\033[1;31m";
  const char* level = warning ? "warning" : "error";
  const char* cyan = color ? "\033[36m" : "";
  const char* reset = color ? "\033[0m" : "";
  std::string out;
  if (mark.line > 0) {
    out = fmt::format("{}{}:{}:{}:{} {}{}:{} {}", bold, file, mark.line, mark.col, reset,
                      red, level, reset, message);
  } else if (!file.empty()) {
    out = fmt::format("{}{}:{} {}{}:{} {}", bold, file, reset, red, level, reset, message);
  } else {
    out = fmt::format("{}{}:{} {}", red, level, reset, message);
  }
  if (!scope.empty()) out += fmt::format("\n    in {}", scope);
  if (!hint.empty()) out += fmt::format("\n    {}hint:{} {}", cyan, reset, hint);
  return out;
}

void Diagnostics::Error(std::string file, Mark mark, std::string message, std::string scope,
                        std::string hint) {
  items_.push_back(Diagnostic{Diagnostic::Severity::kError, std::move(file), mark,
                              std::move(message), std::move(scope), std::move(hint)});
}

void Diagnostics::Warning(std::string file, Mark mark, std::string message, std::string scope,
                          std::string hint) {
  items_.push_back(Diagnostic{Diagnostic::Severity::kWarning, std::move(file), mark,
                              std::move(message), std::move(scope), std::move(hint)});
}

size_t Diagnostics::errors() const {
  return static_cast<size_t>(std::count_if(items_.begin(), items_.end(),
                                           [](const Diagnostic& d) { return !d.is_warning(); }));
}

void Diagnostics::SortAndDedupe() {
  auto key = [](const Diagnostic& d) {
    return std::tie(d.file, d.mark.line, d.mark.col, d.message, d.scope);
  };
  std::stable_sort(items_.begin(), items_.end(),
                   [&](const Diagnostic& a, const Diagnostic& b) { return key(a) < key(b); });
  items_.erase(std::unique(items_.begin(), items_.end(),
                           [&](const Diagnostic& a, const Diagnostic& b) {
                             return key(a) == key(b);
                           }),
               items_.end());
}

std::string Diagnostics::CountText() const {
  auto count = [](size_t n, const char* what) { return fmt::format("{} {}{}", n, what, n == 1 ? "" : "s"); };
  size_t e = errors(), w = warnings();
  if (e == 0) return count(w, "warning");
  if (w == 0) return count(e, "error");
  return count(e, "error") + " and " + count(w, "warning");
}

}  // namespace flow
