// Internal to store/: the data directory's layout as this module writes and reads it: the
// ledger's path, spool and fragment file names, and walks of the lake and the spools that
// sort what they find into ours (by name) and unknown files. Not included outside store/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "store/journal.h"

namespace flow::store {

constexpr size_t kReadBlock = 1 << 20;  // bytes read from a spool at once

std::string LedgerPath(const std::string& dir);
std::string SpoolDir(const std::string& dir, std::string_view journal);
// `<begin>-<created>.<codec>.spool`: the codec is in the name so that a spool recovered after
// a crash is persisted with its journal's codec before anything is appended to it again.
std::string SpoolName(uint64_t begin, std::time_t created, Codec codec);
bool ParseSpoolName(std::string_view name, uint64_t* begin, std::time_t* created, Codec* codec);
// `<begin>-<end>-<sha1><ext>`
bool ParseFragmentName(std::string_view name, Fragment* f);

struct LakeFragment {
  std::string journal;
  Fragment fragment;
};
struct SpoolFile {
  std::string journal, path;
  uint64_t begin = 0, size = 0;
};

// Every fragment in the lake, by name; other regular files go to `unknown` (when not null).
Result<bool> WalkLake(const std::string& dir, std::vector<LakeFragment>* out,
                      std::vector<std::string>* unknown);
// Every spool, by name; other regular files go to `unknown` (when not null).
Result<bool> WalkSpools(const std::string& dir, std::vector<SpoolFile>* out,
                        std::vector<std::string>* unknown);

}  // namespace flow::store
