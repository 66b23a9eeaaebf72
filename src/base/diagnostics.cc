#include "base/diagnostics.h"

#include <algorithm>
#include <fmt/format.h>
#include <tuple>

namespace flow {

std::string Diagnostic::Format(bool color) const {
  const char* bold = color ? "\033[1m" : "";
  const char* red = color ? "\033[1;31m" : "";
  const char* cyan = color ? "\033[36m" : "";
  const char* reset = color ? "\033[0m" : "";
  std::string out;
  if (mark.line > 0) {
    out = fmt::format("{}{}:{}:{}:{} {}error:{} {}", bold, file, mark.line, mark.col, reset,
                      red, reset, message);
  } else if (!file.empty()) {
    out = fmt::format("{}{}:{} {}error:{} {}", bold, file, reset, red, reset, message);
  } else {
    out = fmt::format("{}error:{} {}", red, reset, message);
  }
  if (!scope.empty()) out += fmt::format("\n    in {}", scope);
  if (!hint.empty()) out += fmt::format("\n    {}hint:{} {}", cyan, reset, hint);
  return out;
}

void Diagnostics::Error(std::string file, Mark mark, std::string message, std::string scope,
                        std::string hint) {
  items_.push_back(Diagnostic{std::move(file), mark, std::move(message), std::move(scope),
                              std::move(hint)});
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

}  // namespace flow
