// What the fuzz targets share: a failed invariant aborts (libFuzzer then saves the input),
// and a scratch directory for targets that need files, removed when the process exits.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

namespace flow::fuzz {

// Aborts with `what` when `ok` is false: an invariant of the code under test was broken.
inline void Check(bool ok, std::string_view what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz invariant broken: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

// A fresh directory under $TMPDIR (/tmp by default) for the life of the process.
class ScratchDir {
 public:
  ScratchDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/flowctl-fuzz.XXXXXX";
    Check(::mkdtemp(tmpl.data()) != nullptr, "cannot create a scratch directory");
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace flow::fuzz
