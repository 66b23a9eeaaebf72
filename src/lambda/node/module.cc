#include "lambda/node/module.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <string_view>

#include <fmt/format.h>

#include "base/files.h"
#include "lambda/node/cache.h"
#include "lambda/node/process.h"

namespace flow::lambda {
namespace node {
namespace {

// Whether `word` occurs in `text` as an identifier (not within a longer one).
bool HasIdentifier(std::string_view text, std::string_view word) {
  auto part = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '$' || static_cast<unsigned char>(c) >= 0x80;
  };
  for (size_t at = text.find(word); at != std::string_view::npos; at = text.find(word, at + 1)) {
    size_t end = at + word.size();
    if ((at == 0 || !part(text[at - 1])) && (end == text.size() || !part(text[end]))) return true;
  }
  return false;
}

// esbuild (--log-level=error --color=false) prints each error as "✘ [ERROR] message", a blank
// line, then "    file:line:column:" with a 0-based column, then the source line.
struct CompileError {
  std::string message;
  uint32_t line = 0, column = 0;  // 1-based; 0 when esbuild named no position
};

// A decimal number of at most 9 digits.
bool ParseNumber(std::string_view d, uint32_t* v) {
  if (d.empty() || d.size() > 9) return false;
  *v = 0;
  for (char c : d) {
    if (c < '0' || c > '9') return false;
    *v = *v * 10 + static_cast<uint32_t>(c - '0');
  }
  return true;
}

std::vector<CompileError> ParseEsbuildErrors(std::string_view out) {
  std::vector<CompileError> errors;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t end = out.find('\n', pos);
    if (end == std::string_view::npos) end = out.size();
    std::string_view line = out.substr(pos, end - pos);
    pos = end + 1;
    if (size_t at = line.find("[ERROR] "); at != std::string_view::npos) {
      errors.push_back({std::string(line.substr(at + 8)), 0, 0});
      continue;
    }
    if (errors.empty() || errors.back().line) continue;
    // "    file.ts:12:4:" (the first such line after the message)
    while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() < 2 || line.back() != ':' || line.front() != ' ') continue;
    line.remove_suffix(1);
    size_t c2 = line.rfind(':');
    if (c2 == std::string_view::npos || c2 == 0) continue;
    size_t c1 = line.rfind(':', c2 - 1);
    if (c1 == std::string_view::npos) continue;
    uint32_t l, c;
    if (ParseNumber(line.substr(c1 + 1, c2 - c1 - 1), &l) && ParseNumber(line.substr(c2 + 1), &c)) {
      errors.back().line = l;
      errors.back().column = c + 1;
    }
  }
  return errors;
}

std::mutex esbuild_versions_mu;
std::map<std::string, std::string> esbuild_versions;  // by path

// What identifies esbuild: its package.json (found from the real path of its executable,
// <package>/bin/esbuild), else `esbuild --version` (a process start, 20 ms or more).
Result<std::string> EsbuildVersion(const std::string& esbuild) {
  std::lock_guard lock(esbuild_versions_mu);
  if (auto it = esbuild_versions.find(esbuild); it != esbuild_versions.end()) return it->second;
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path real = fs::canonical(esbuild, ec);
  if (!ec) {
    auto package = ReadFile((real.parent_path().parent_path() / "package.json").string());
    if (package.ok() && package->find("\"name\": \"esbuild\"") != std::string::npos) {
      return esbuild_versions[esbuild] = real.string() + " " + HashKey(*package);
    }
  }
  auto run = RunTool(esbuild, {"--version"});
  if (!run.ok()) return run.error();
  if (run->status != 0) {
    return Error::Env(fmt::format("`{} --version` failed ({}): {}", esbuild,
                                  ExitDescription(run->status), Tail(run->output, 2000)));
  }
  std::string version = Tail(run->output, 100);
  esbuild_versions[esbuild] = version;
  return version;
}

// The error of an esbuild run on module `m` that failed with `run`.
Error CompileFailure(const Module& m, const std::vector<NodeLambdaSpec>& lambdas,
                     const std::string& esbuild, const ToolRun& run) {
  auto errors = ParseEsbuildErrors(run.output);
  if (errors.empty()) {
    return Error::Env(fmt::format("esbuild ({}) failed ({}) on the nodeJS lambdas: {}", esbuild,
                                  ExitDescription(run.status), Tail(run.output, 2000)));
  }
  // esbuild stops at the first syntax error of a file: report it.
  const CompileError& e = errors.front();
  int i = BodyOf(m, e.line);
  if (i < 0 || lambdas.empty()) {
    return Error::User(fmt::format("the nodeJS lambdas do not compile: {}", e.message));
  }
  return Error::User(fmt::format("{} does not compile: {} {}", Label(lambdas[i]), e.message,
                                 BodyPosition(m, lambdas, i, e.line, e.column, true)));
}

}  // namespace

std::string Label(const NodeLambdaSpec& l) {
  if (l.bootstrap) {
    return fmt::format(
        "bootstrap lambda {}{}", l.bootstrap,
        l.derivation.empty() ? "" : fmt::format(" of derivation `{}`", l.derivation));
  }
  return fmt::format("lambda of transform `{}`{} ({})", l.transform,
                     l.derivation.empty() ? "" : fmt::format(" of derivation `{}`", l.derivation),
                     l.publish ? "publish" : "update");
}

size_t Arity(const NodeLambdaSpec& l) {
  if (l.bootstrap) return 0;
  if (!l.publish) return 1;
  if (HasIdentifier(l.body, "eval") || HasIdentifier(l.body, "previous")) return 3;
  return HasIdentifier(l.body, "register") ? 2 : 1;
}

Module Generate(const std::vector<NodeLambdaSpec>& lambdas, const std::string& prelude) {
  Module m;
  m.text =
      "// Generated by flowctl from the nodeJS lambdas of one derivation: element i of the\n"
      "// exported array is lambda i.\n";
  m.text += prelude;
  m.text += "module.exports = [\n";
  uint32_t line = 4;  // the line the next text starts on
  for (char c : prelude) line += c == '\n';
  auto type = [](const std::string& t) -> std::string { return t.empty() ? "any" : t; };
  for (const auto& l : lambdas) {
    std::string label = Label(l);
    for (char& c : label) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    m.text +=
        l.bootstrap
            ? fmt::format("// {}\nasync (): Promise<any> => {{\n", label)
            : fmt::format("// {}\n(source: {}, register: {}, previous: {}): {} => {{\n", label,
                          type(l.source_type), type(l.register_type), type(l.register_type),
                          l.output_type.empty() ? "any" : l.output_type + "[]");
    line += 2;
    m.first_line.push_back(line);
    uint32_t lines = 0;
    for (char c : l.body) lines += c == '\n';
    m.text += l.body;
    if (l.body.empty() || l.body.back() != '\n') {
      m.text += '\n';
      ++lines;
    }
    m.line_count.push_back(lines);
    line += lines;
    m.text += "},\n";
    ++line;
  }
  m.text += "];\n";
  return m;
}

int BodyOf(const Module& m, uint32_t line) {
  int found = -1;
  for (size_t i = 0; i < m.first_line.size(); ++i) {
    if (m.first_line[i] <= line) found = static_cast<int>(i);
  }
  return found;
}

std::string BodyPosition(const Module& m, const std::vector<NodeLambdaSpec>& lambdas, size_t i,
                         uint32_t line, uint32_t column, bool quote) {
  uint32_t rel = line - m.first_line[i] + 1;
  if (rel > m.line_count[i]) return "after the end of its body (are its braces balanced?)";
  std::string out = column ? fmt::format("at line {}, column {} of its body", rel, column)
                           : fmt::format("at line {} of its body", rel);
  if (quote) {
    std::string_view body = lambdas[i].body;
    size_t start = 0;
    for (uint32_t k = 1; k < rel; ++k) start = body.find('\n', start) + 1;
    std::string_view text = body.substr(start, body.find('\n', start) - start);
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
    if (!text.empty()) out += fmt::format(": `{}`", Tail(text, 200));
  }
  return out;
}

Result<std::string> EsbuildOf(const NodeOptions& options) {
  if (options.esbuild.empty()) return FindEsbuild();
  if (!IsExecutable(options.esbuild)) {
    return Error::Env(
        fmt::format("esbuild is not installed at {}: run scripts/setup.sh (it installs esbuild "
                    "into .deps/npm-runtime)",
                    options.esbuild));
  }
  return options.esbuild;
}

Result<std::string> Transpile(const Module& m, const std::vector<NodeLambdaSpec>& lambdas,
                              const std::string& esbuild, const std::string& cache_dir,
                              std::string* ts_name) {
  namespace fs = std::filesystem;
  auto version = EsbuildVersion(esbuild);
  if (!version.ok()) return version.error();
  // Flags are part of the key: a flowctl that transpiles differently uses other entries.
  const std::vector<std::string> flags{"--format=cjs",       "--platform=node",
                                       "--sourcemap=inline", "--sources-content=false",
                                       "--log-level=error",  "--color=false"};
  std::string key_text = "esbuild " + *version;
  for (const auto& f : flags) key_text += " " + f;
  std::string dir = cache_dir + "/node/modules";
  std::string key = HashKey(key_text + "\n" + m.text);
  std::string ts = dir + "/" + key + ".ts", js = dir + "/" + key + ".js";
  *ts_name = key + ".ts";
  std::error_code ec;
  if (fs::exists(js, ec)) {
    auto cached = ReadFile(ts);
    if (cached.ok() && *cached == m.text) return js;
  }
  if (auto ok = CreateDir(dir); !ok.ok()) return ok.error();
  if (auto ok = WriteFileAtomic(ts, m.text); !ok.ok()) return ok.error();
  std::string tmp = js + TempSuffix();
  std::vector<std::string> args{ts, "--outfile=" + tmp};
  args.insert(args.end(), flags.begin(), flags.end());
  auto run = RunTool(esbuild, args);
  if (!run.ok()) return run.error();
  if (run->status != 0) {
    fs::remove(tmp, ec);
    return CompileFailure(m, lambdas, esbuild, *run);
  }
  if (rename(tmp.c_str(), js.c_str()) != 0) {
    int err = errno;
    fs::remove(tmp, ec);
    return Error::Env(fmt::format("cannot rename {} to {}: {}", tmp, js, std::strerror(err)));
  }
  return js;
}

}  // namespace node

Result<std::string> FindEsbuild() {
  return FindNpmTool("esbuild", "FLOWCTL_ESBUILD", "transpiles the TypeScript of nodeJS lambdas");
}

}  // namespace flow::lambda
