#include "store/layout.h"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

namespace flow::store {
namespace fs = std::filesystem;

namespace {

bool ParseHex16(std::string_view s, uint64_t* out) {
  if (s.size() != 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    v = v << 4 | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

}  // namespace

std::string LedgerPath(const std::string& dir) { return dir + "/ledger"; }
std::string SpoolDir(const std::string& dir, std::string_view journal) {
  return fmt::format("{}/spool/{}", dir, journal);
}
std::string SpoolName(uint64_t begin, std::time_t created, Codec codec) {
  return fmt::format("{:016x}-{}{}.spool", begin, static_cast<int64_t>(created),
                     CodecExtension(codec));
}

bool ParseSpoolName(std::string_view name, uint64_t* begin, std::time_t* created, Codec* codec) {
  constexpr std::string_view kExt = ".spool";
  if (name.size() < 18 + kExt.size() || name.substr(name.size() - kExt.size()) != kExt)
    return false;
  if (name[16] != '-' || !ParseHex16(name.substr(0, 16), begin)) return false;
  name.remove_suffix(kExt.size());
  size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot < 17) return false;
  std::string_view ext = name.substr(dot);
  if (ext == ".gz")
    *codec = Codec::kGzip;
  else if (ext == ".zst")
    *codec = Codec::kZstd;
  else if (ext == ".raw")
    *codec = Codec::kNone;
  else
    return false;
  std::string_view secs = name.substr(17, dot - 17);
  if (secs.empty()) return false;
  int64_t v = 0;
  for (char c : secs) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *created = static_cast<std::time_t>(v);
  return true;
}

bool ParseFragmentName(std::string_view name, Fragment* f) {
  if (name.size() < 16 + 1 + 16 + 1 + 40 + 3) return false;
  if (name[16] != '-' || name[33] != '-') return false;
  if (!ParseHex16(name.substr(0, 16), &f->begin) || !ParseHex16(name.substr(17, 16), &f->end))
    return false;
  std::string_view ext = name.substr(74);
  if (ext == ".gz")
    f->codec = Codec::kGzip;
  else if (ext == ".zst")
    f->codec = Codec::kZstd;
  else if (ext == ".raw")
    f->codec = Codec::kNone;
  else
    return false;
  std::string_view sha = name.substr(34, 40);
  for (char c : sha) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  f->sha1 = std::string(sha);
  return f->begin < f->end;
}

Result<bool> WalkLake(const std::string& dir, std::vector<LakeFragment>* out,
                      std::vector<std::string>* unknown) {
  std::error_code ec;
  fs::path root = fs::path(dir) / "lake";
  if (!fs::exists(root, ec)) return true;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    fs::path hour = it->path().parent_path(), date = hour.parent_path();
    LakeFragment lf;
    if (ParseFragmentName(it->path().filename().string(), &lf.fragment) &&
        hour.filename().string().rfind("utc_hour=", 0) == 0 &&
        date.filename().string().rfind("utc_date=", 0) == 0) {
      lf.journal = fs::relative(date.parent_path(), root).string();
      lf.fragment.path = it->path().string();
      out->push_back(std::move(lf));
    } else if (unknown) {
      unknown->push_back(it->path().string());
    }
  }
  if (ec) return Error::Env(fmt::format("cannot list {}: {}", root.string(), ec.message()));
  return true;
}

Result<bool> WalkSpools(const std::string& dir, std::vector<SpoolFile>* out,
                        std::vector<std::string>* unknown) {
  std::error_code ec;
  fs::path root = fs::path(dir) / "spool";
  if (!fs::exists(root, ec)) return true;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    SpoolFile sf;
    std::time_t created = 0;
    Codec codec = Codec::kGzip;
    if (ParseSpoolName(it->path().filename().string(), &sf.begin, &created, &codec)) {
      sf.journal = fs::relative(it->path().parent_path(), root).string();
      sf.path = it->path().string();
      sf.size = static_cast<uint64_t>(it->file_size(ec));
      out->push_back(std::move(sf));
    } else if (unknown) {
      unknown->push_back(it->path().string());
    }
  }
  if (ec) return Error::Env(fmt::format("cannot list {}: {}", root.string(), ec.message()));
  return true;
}

Result<std::vector<Fragment>> ListFragments(const std::string& dir, const std::string& journal) {
  std::vector<Fragment> out;
  std::error_code ec;
  fs::path root = fs::path(dir) / "lake" / journal;
  if (!fs::exists(root, ec)) return out;
  for (const auto& date : fs::directory_iterator(root, ec)) {
    if (!date.is_directory() || date.path().filename().string().rfind("utc_date=", 0) != 0)
      continue;
    for (const auto& hour : fs::directory_iterator(date.path(), ec)) {
      if (!hour.is_directory() || hour.path().filename().string().rfind("utc_hour=", 0) != 0)
        continue;
      for (const auto& file : fs::directory_iterator(hour.path(), ec)) {
        Fragment f;
        if (ParseFragmentName(file.path().filename().string(), &f)) {
          f.path = file.path().string();
          out.push_back(std::move(f));
        }
      }
    }
  }
  if (ec) return Error::Env(fmt::format("cannot list {}: {}", root.string(), ec.message()));
  std::sort(out.begin(), out.end(), [](const Fragment& a, const Fragment& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end > b.end;
  });
  return out;
}

}  // namespace flow::store
