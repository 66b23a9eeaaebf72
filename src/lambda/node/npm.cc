#include "lambda/node/npm.h"

#include <cstdio>
#include <filesystem>

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "base/files.h"
#include "lambda/node.h"
#include "lambda/node/cache.h"
#include "lambda/node/process.h"

namespace flow::lambda {
namespace node {
namespace {

// The package.json of an install of `deps`; its text is also the install's cache key.
std::string PackageJson(const std::map<std::string, std::string>& deps) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("name");
  w.String("flowctl-node-dependencies");
  w.Key("private");
  w.Bool(true);
  w.Key("dependencies");
  w.StartObject();
  for (const auto& [name, version] : deps) {
    w.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    w.String(version.data(), static_cast<rapidjson::SizeType>(version.size()));
  }
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + '\n';
}

}  // namespace

Result<std::string> InstallDependencies(const std::map<std::string, std::string>& deps,
                                        const std::string& npm_name, const std::string& cache_dir) {
  namespace fs = std::filesystem;
  std::string package_json = PackageJson(deps);
  std::string dir = cache_dir + "/node/deps/" + HashKey(package_json);
  std::error_code ec;
  if (fs::exists(dir + "/.flowctl-installed", ec)) {
    auto cached = ReadFile(dir + "/package.json");
    if (cached.ok() && *cached == package_json) return dir;
  }
  std::string list;
  for (const auto& [name, version] : deps) {
    list += fmt::format("{}{}@{}", list.empty() ? "" : " ", name, version);
  }
  auto npm = FindProgram(npm_name);
  if (!npm) {
    return Error::Env(
        fmt::format("npm (`{}`) is not installed; install it (e.g. apt install npm) to install the "
                    "nodeDependencies {}",
                    npm_name, list));
  }
  std::string tmp = dir + TempSuffix();
  if (auto ok = CreateDir(tmp); !ok.ok()) return ok.error();
  if (auto ok = WriteFileAtomic(tmp + "/package.json", package_json); !ok.ok()) return ok.error();
  auto run = RunTool(*npm, {"install", "--prefix", tmp, "--no-audit", "--no-fund",
                            "--no-update-notifier", "--loglevel=error"});
  if (!run.ok() || run->status != 0) {
    fs::remove_all(tmp, ec);
    if (!run.ok()) return run.error();
    return Error::Env(fmt::format("npm install of the nodeDependencies {} failed ({}): {}", list,
                                  ExitDescription(run->status), Tail(run->output, 2000)));
  }
  if (auto ok = WriteFileAtomic(tmp + "/.flowctl-installed", ""); !ok.ok()) return ok.error();
  if (rename(tmp.c_str(), dir.c_str()) != 0) {
    // Another process installed the same set meanwhile (or a stale copy is there): use it
    // when complete, else replace it.
    bool theirs = fs::exists(dir + "/.flowctl-installed", ec);
    if (!theirs) {
      fs::remove_all(dir, ec);
      if (rename(tmp.c_str(), dir.c_str()) == 0) return dir;
    }
    fs::remove_all(tmp, ec);
    if (!fs::exists(dir + "/.flowctl-installed", ec)) {
      return Error::Env(fmt::format("cannot move the npm install of {} into {}", list, dir));
    }
  }
  return dir;
}

}  // namespace node

std::string NodeGlobalName(std::string_view package) {
  if (!package.empty() && package.front() == '@') {
    if (size_t slash = package.find('/'); slash != std::string_view::npos) {
      package.remove_prefix(slash + 1);
    }
  }
  std::string name;
  for (char c : package) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '$';
    name += ok ? c : '_';
  }
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) name.insert(0, "_");
  return name;
}

}  // namespace flow::lambda
