// Type-checking nodeJS lambdas with the TypeScript compiler (TypeCheckNodeLambdas in
// node.h): the only file that runs tsc. The check's files live in a directory of the cache
// per project (a catalog): flow.d.ts (the declarations), lambdas.ts (the module of the
// lambdas, as module.h generates it, with typed parameters), tsconfig.json, tsc's
// incremental build information, and `result`: the hash of what was checked and tsc's
// output, which a check of the same text reuses without running tsc.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string_view>

#include "base/files.h"
#include "lambda/node.h"
#include "lambda/node/cache.h"
#include "lambda/node/module.h"
#include "lambda/node/process.h"

namespace flow::lambda {
namespace node {
namespace {

// Lenient where JavaScript is (no `strict`: null, undefined and implicit `any` pass; no
// unused-code rules), so that working lambdas keep building; strict about the declared
// types: an undeclared property of a closed object type, a wrong type, a comparison that
// can never be true. `types: []` keeps any @types package near the cache out of the check.
constexpr char kTsconfig[] = R"({
  "compilerOptions": {
    "noEmit": true,
    "strict": false,
    "noImplicitAny": false,
    "strictNullChecks": false,
    "target": "es2022",
    "lib": ["es2022"],
    "module": "es2022",
    "moduleResolution": "bundler",
    "types": [],
    "skipLibCheck": true,
    "allowUnreachableCode": true,
    "allowUnusedLabels": true,
    "incremental": true,
    "tsBuildInfoFile": "./tsc.tsbuildinfo",
    "pretty": false
  },
  "files": ["lambdas.ts"]
}
)";

// What the worker gives a lambda beyond the ES2022 library (lambdas run in Node.js, whose
// own type declarations flowctl does not install): typed where a typo is likely, `any`
// otherwise. Other globals are reached through `globalThis` or `require`.
constexpr char kAmbient[] =
    "declare const module: { exports: unknown };\n"
    "declare const console: { log(...data: any[]): void; info(...data: any[]): void; "
    "warn(...data: any[]): void; error(...data: any[]): void; debug(...data: any[]): void; "
    "trace(...data: any[]): void; dir(item?: any, options?: any): void; table(data: any, "
    "columns?: string[]): void; };\n"
    "declare function require(id: string): any;\n"
    "declare const process: any, Buffer: any, URL: any, URLSearchParams: any, TextEncoder: any, "
    "TextDecoder: any, crypto: any, performance: any, fetch: any, structuredClone: any, "
    "setTimeout: any, clearTimeout: any, setInterval: any, clearInterval: any, setImmediate: "
    "any, clearImmediate: any, queueMicrotask: any, atob: any, btoa: any, global: any;\n";

const std::set<std::string> kAmbientNames = {"module",
                                             "console",
                                             "require",
                                             "process",
                                             "Buffer",
                                             "URL",
                                             "URLSearchParams",
                                             "TextEncoder",
                                             "TextDecoder",
                                             "crypto",
                                             "performance",
                                             "fetch",
                                             "structuredClone",
                                             "setTimeout",
                                             "clearTimeout",
                                             "setInterval",
                                             "clearInterval",
                                             "setImmediate",
                                             "clearImmediate",
                                             "queueMicrotask",
                                             "atob",
                                             "btoa",
                                             "global"};

// One diagnostic of `tsc --pretty false`: "file(line,col): error TS2339: message", with
// elaborations on the following lines, indented.
struct TscDiagnostic {
  std::string file;
  uint32_t line = 0, column = 0;
  std::string code;  // "TS2339"
  std::string message;
};

bool Digits(std::string_view d, uint32_t* v) {
  if (d.empty() || d.size() > 9) return false;
  *v = 0;
  for (char c : d) {
    if (c < '0' || c > '9') return false;
    *v = *v * 10 + static_cast<uint32_t>(c - '0');
  }
  return true;
}

std::vector<TscDiagnostic> ParseTsc(std::string_view out, std::vector<std::string>* unplaced) {
  std::vector<TscDiagnostic> found;
  size_t pos = 0;
  bool continuing = false;  // the last line was a placed diagnostic
  while (pos < out.size()) {
    size_t end = out.find('\n', pos);
    if (end == std::string_view::npos) end = out.size();
    std::string_view line = out.substr(pos, end - pos);
    pos = end + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) continue;
    if (line.front() == ' ') {
      if (continuing) {
        while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
        found.back().message += " ";
        found.back().message += line;
      }
      continue;
    }
    continuing = false;
    size_t err = line.find(": error TS");
    if (err == std::string_view::npos) {
      if (line.starts_with("error TS")) unplaced->emplace_back(line);
      continue;
    }
    std::string_view head = line.substr(0, err);   // file(line,col)
    std::string_view rest = line.substr(err + 8);  // TS2339: message
    size_t colon = rest.find(": ");
    size_t open = head.rfind('(');
    size_t comma = head.rfind(',');
    TscDiagnostic d;
    if (colon == std::string_view::npos || open == std::string_view::npos ||
        comma == std::string_view::npos || comma < open || head.back() != ')' ||
        !Digits(head.substr(open + 1, comma - open - 1), &d.line) ||
        !Digits(head.substr(comma + 1, head.size() - comma - 2), &d.column)) {
      unplaced->emplace_back(line);
      continue;
    }
    d.file = std::string(head.substr(0, open));
    d.code = std::string(rest.substr(0, colon));
    d.message = std::string(rest.substr(colon + 2));
    found.push_back(std::move(d));
    continuing = true;
  }
  return found;
}

// The byte offset in `body` of 1-based `line` and `column` (counted in UTF-16 code units, as
// tsc counts), clamped to the body.
size_t OffsetIn(std::string_view body, uint32_t line, uint32_t column) {
  size_t at = 0;
  for (uint32_t k = 1; k < line; ++k) {
    size_t nl = body.find('\n', at);
    if (nl == std::string_view::npos) return body.size();
    at = nl + 1;
  }
  uint32_t units = 1;
  while (at < body.size() && body[at] != '\n' && units < column) {
    auto c = static_cast<unsigned char>(body[at]);
    size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    units += len == 4 ? 2 : 1;  // beyond the BMP: a surrogate pair
    at = std::min(body.size(), at + len);
  }
  return at;
}

std::mutex versions_mu;
std::map<std::string, std::string> versions;  // by tsc path

// What identifies the compiler: its package.json (found from the real path of its script,
// <package>/bin/tsc), else `tsc --version`.
Result<std::string> TscVersion(const std::string& node_path, const std::string& tsc) {
  std::lock_guard lock(versions_mu);
  if (auto it = versions.find(tsc); it != versions.end()) return it->second;
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path real = fs::canonical(tsc, ec);
  std::string version;
  if (!ec) {
    auto package = ReadFile((real.parent_path().parent_path() / "package.json").string());
    if (package.ok() && package->find("\"typescript\"") != std::string::npos) {
      version = real.string() + " " + HashKey(*package);
    }
  }
  if (version.empty()) {
    auto run = RunTool(node_path, {tsc, "--version"});
    if (!run.ok()) return run.error();
    if (run->status != 0) {
      return Error::Env(fmt::format("`{} --version` failed ({}): {}", tsc,
                                    ExitDescription(run->status), Tail(run->output, 2000)));
    }
    version = tsc + " " + Tail(run->output, 100);
  }
  versions[tsc] = version;
  return version;
}

// Writes `content` to `path` unless it holds that already.
Result<bool> WriteIfChanged(const std::string& path, const std::string& content) {
  auto old = ReadFile(path);
  if (old.ok() && *old == content) return true;
  return WriteFileAtomic(path, content);
}

// An exclusive lock on `dir`, held while it lives: two flowctl processes checking the same
// catalog take turns.
class DirLock {
 public:
  explicit DirLock(const std::string& dir) {
    fd_ = open((dir + "/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ >= 0) {
      while (flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
      }
    }
  }
  ~DirLock() {
    if (fd_ >= 0) close(fd_);
  }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace
}  // namespace node

Result<std::string> FindTsc() {
  return FindNpmTool("tsc", "FLOWCTL_TSC", "type-checks the TypeScript of nodeJS lambdas");
}

Result<NodeTypeCheck> TypeCheckNodeLambdas(const std::vector<NodeLambdaSpec>& lambdas,
                                           const std::string& declarations,
                                           const std::string& project, const NodeOptions& options) {
  using namespace node;
  NodeTypeCheck out;
  if (lambdas.empty()) return out;
  auto node_path = FindProgram(options.node);
  if (!node_path) {
    return Error::Env(fmt::format(
        "Node.js (`{}`) is not installed; it runs the TypeScript compiler that type-checks "
        "nodeJS lambdas: install it (e.g. apt install nodejs), or skip the check with "
        "--no-type-check",
        options.node));
  }
  std::string tsc;
  if (options.tsc.empty()) {
    auto found = FindTsc();
    if (!found.ok()) return found.error();
    tsc = *found;
  } else if (!IsExecutable(options.tsc)) {
    return Error::Env(fmt::format(
        "the TypeScript compiler is not installed at {}: run scripts/setup.sh (it installs it "
        "into .deps/npm-runtime), or skip the check with --no-type-check",
        options.tsc));
  } else {
    tsc = options.tsc;
  }
  auto version = TscVersion(*node_path, tsc);
  if (!version.ok()) return version.error();

  // The prelude: the declarations, what Node.js gives every lambda, and the globals of the
  // nodeDependencies (untyped).
  std::string prelude = "import type * as flow from \"./flow\";\n";
  prelude += kAmbient;
  std::set<std::string> globals = kAmbientNames;
  for (const auto& [package, version_range] : options.dependencies) {
    std::string name = NodeGlobalName(package);
    if (globals.insert(name).second) prelude += fmt::format("declare const {}: any;\n", name);
  }
  Module m = Generate(lambdas, prelude);

  std::string cache_dir = options.cache_dir.empty() ? DefaultNodeCacheDir() : options.cache_dir;
  std::string dir = cache_dir + "/node/typecheck/" + HashKey(project);
  if (auto ok = CreateDir(dir); !ok.ok()) return ok.error();
  DirLock lock(dir);
  const std::string tsconfig = kTsconfig;
  std::string key = HashKey(*version + "\n" + tsconfig + "\n" + declarations + "\n" + m.text);
  std::string output;
  auto previous = ReadFile(dir + "/result");
  if (previous.ok() && previous->starts_with(key + "\n")) {
    output = previous->substr(key.size() + 1);
    out.cached = true;
  } else {
    const std::pair<const char*, const std::string*> files[] = {
        {"tsconfig.json", &tsconfig}, {"flow.d.ts", &declarations}, {"lambdas.ts", &m.text}};
    for (const auto& [name, text] : files) {
      if (auto ok = WriteIfChanged(dir + "/" + name, *text); !ok.ok()) return ok.error();
    }
    auto run = RunTool(*node_path, {tsc, "-p", dir + "/tsconfig.json"});
    if (!run.ok()) return run.error();
    std::vector<std::string> unplaced;
    auto found = ParseTsc(run->output, &unplaced);
    if (run->status != 0 && (found.empty() || !unplaced.empty())) {
      return Error::Env(
          fmt::format("the TypeScript compiler ({}) failed ({}) on the nodeJS lambdas: {}", tsc,
                      ExitDescription(run->status), Tail(run->output, 2000)));
    }
    output = run->output;
    if (auto ok = WriteFileAtomic(dir + "/result", key + "\n" + output); !ok.ok()) {
      return ok.error();
    }
  }

  std::vector<std::string> unplaced;
  for (auto& d : ParseTsc(output, &unplaced)) {
    std::string_view file = d.file;
    if (!file.ends_with("lambdas.ts")) {
      return Error::Internal(fmt::format(
          "the TypeScript declarations flowctl generated for the nodeJS lambdas do not compile "
          "({}:{}:{}): {}",
          dir + "/flow.d.ts", d.line, d.column, d.message));
    }
    // A lambda's header (its parameters and result type) is the line before its body.
    int i = -1;
    bool header = false;
    for (size_t k = 0; k < m.first_line.size(); ++k) {
      if (d.line + 1 == m.first_line[k]) {
        i = static_cast<int>(k), header = true;
        break;
      }
    }
    if (i < 0) i = BodyOf(m, d.line);
    if (i < 0) {
      return Error::Internal(fmt::format(
          "the module flowctl generated for the nodeJS lambdas does not type-check ({}:{}:{}): {}",
          dir + "/lambdas.ts", d.line, d.column, d.message));
    }
    NodeTypeError e;
    e.lambda = static_cast<size_t>(i);
    const std::string& body = lambdas[e.lambda].body;
    if (header) {
      e.line = 1, e.column = 1, e.offset = 0;
      e.message = d.code == "TS2355"
                      ? "it does not return the array of documents it outputs (no `return` "
                        "statement)"
                      : d.message;
    } else {
      uint32_t rel = d.line - m.first_line[e.lambda] + 1;
      if (rel > m.line_count[e.lambda]) {
        e.line = m.line_count[e.lambda], e.offset = body.size();
        e.column = 1;
      } else {
        e.line = rel, e.column = d.column;
        e.offset = OffsetIn(body, rel, d.column);
      }
      e.message = d.message;
    }
    out.errors.push_back(std::move(e));
  }
  return out;
}

}  // namespace flow::lambda
