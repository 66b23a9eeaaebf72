#include "lambda/node.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "base/files.h"
#include "doc/parse.h"
#include "doc/value.h"

extern char** environ;

namespace flow::lambda {
namespace fs = std::filesystem;
namespace {

constexpr size_t kOutputTail = 4096;               // bytes of the worker's output kept for errors
constexpr size_t kToolOutput = 64 << 10;           // bytes of esbuild's or npm's output kept
constexpr uint32_t kMaxFrame = uint32_t{1} << 30;  // bytes: one batch's outputs, not one document
constexpr int kSocketBuffer = 1 << 20;             // bytes; the kernel may cap it (wmem_max)
constexpr size_t kReadChunk = 256 << 10;           // bytes asked of each recv
// A batch goes to the worker in chunks of about this much JSON (rows), a few ahead of the
// responses. Small enough that V8 parses each chunk's text outside its large-object space
// (over 4x faster per row than one text of a 4096-row batch), large enough to amortize the
// system calls (one 64 KiB frame ~ 150 rows of 400 bytes).
constexpr size_t kChunkBytes = 64 << 10;
constexpr size_t kInFlight = 3;
constexpr auto kExitWait = std::chrono::seconds(1);  // for a dying worker to exit by itself
// For the worker to load the module and the dependencies (not a lambda: no lambdaTimeout).
constexpr auto kStartTimeout = std::chrono::seconds(60);
// The longest wait for the worker without checking for a stop request (lambda::RequestStop).
constexpr auto kStopCheck = std::chrono::milliseconds(100);
using Clock = std::chrono::steady_clock;

// The worker: loads the transpiled module (and the dependencies as globals), then answers
// requests until its input ends. Reads and writes are synchronous and whole-request: one
// JSON.parse and one JSON.stringify per request, no per-document system calls. Update and
// publish lambdas are synchronous functions; the event loop runs only while a bootstrap
// lambda (an async function) is awaited. The TypeScript module is <hash>.ts in
// stack traces (through the source map esbuild inlines, and --enable-source-maps): the
// worker reports the innermost frame within it, which flowctl maps to a body's line.
constexpr const char* kWorkerJs = R"JS(
'use strict';
const fs = require('fs');
const FD = 3;
const config = JSON.parse(process.argv[1]);
const header = Buffer.allocUnsafe(8);
let input = Buffer.allocUnsafe(1 << 16);
let output = Buffer.allocUnsafe(1 << 16);

function readExact(buf, n) {
  let off = 0;
  while (off < n) {
    let k;
    try {
      k = fs.readSync(FD, buf, off, n - off, null);
    } catch (e) {
      if (e.code === 'EAGAIN' || e.code === 'EINTR') continue;
      throw e;
    }
    if (k === 0) process.exit(0);  // flowctl is done with us, or gone
    off += k;
  }
}

function send(status, text) {
  // UTF-16 code units take at most 3 bytes of UTF-8 each.
  const max = 5 + (text.length < (1 << 24) ? text.length * 3 : Buffer.byteLength(text));
  if (output.length < max) output = Buffer.allocUnsafe(Math.max(max, output.length * 2));
  const n = output.write(text, 5);
  output.writeUInt32LE(n + 1, 0);
  output[4] = status;
  const total = n + 5;
  let off = 0;
  while (off < total) {
    try {
      off += fs.writeSync(FD, output, off, total - off);
    } catch (e) {
      if (e.code === 'EAGAIN' || e.code === 'EINTR') continue;
      throw e;
    }
  }
}

function fail(row, kind, message, where) {
  const [line, column] = where || [0, 0];
  send(1, JSON.stringify({row, kind, message, line, column}));
}

function describe(v) {
  if (v === null || v === undefined) return String(v);
  if (typeof v.then === 'function') return 'a Promise (lambdas are synchronous)';
  if (typeof v === 'object') return 'an object';
  return (/^[aeiou]/.test(typeof v) ? 'an ' : 'a ') + typeof v;
}

function messageOf(e) {
  if (e instanceof Error || (e && typeof e === 'object' && typeof e.message === 'string')) {
    const name = typeof e.name === 'string' && e.name !== 'Error' ? e.name + ': ' : '';
    return name + e.message;
  }
  if (typeof e === 'string') return e;
  try {
    const json = JSON.stringify(e);
    if (json !== undefined) return json;
  } catch (_) {}
  return String(e);
}

// The line and column in the TypeScript module of the innermost stack frame within it.
function positionOf(e) {
  const stack = e && typeof e === 'object' ? String(e.stack || '') : '';
  const at = stack.indexOf(config.source + ':');
  if (at < 0) return null;
  const m = /^:(\d+):(\d+)/.exec(stack.slice(at + config.source.length));
  return m ? [Number(m[1]), Number(m[2])] : null;
}

function run(fn, rows) {
  const out = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    let o;
    try {
      o = fn(r[0], r.length > 1 ? r[1] : null, r.length > 2 ? r[2] : null);
    } catch (e) {
      return fail(i, 'threw', messageOf(e), positionOf(e));
    }
    if (!Array.isArray(o)) return fail(i, 'notArray', describe(o));
    for (let j = 0; j < o.length; j++) {
      const t = typeof o[j];
      if (t === 'undefined' || t === 'function' || t === 'symbol') {
        return fail(i, 'unserializable', `its element ${j} is ${describe(o[j])}`);
      }
    }
    out[i] = o;
  }
  let text;
  try {
    text = JSON.stringify(out);
  } catch (e) {
    for (let i = 0; i < out.length; i++) {
      try {
        JSON.stringify(out[i]);
      } catch (e2) {
        return fail(i, 'unserializable', messageOf(e2));
      }
    }
    return fail(-1, 'unserializable', messageOf(e));
  }
  send(0, text);
}

// A bootstrap: an async function of no arguments, awaited (so it may use timers and I/O:
// the event loop runs while it is pending); what it returns is ignored.
// A promise that can never settle (nothing left for the event loop to run) ends the
// process; say why.
let awaiting = false;
process.on('exit', () => {
  if (awaiting) process.stderr.write('a bootstrap lambda returned a promise that never settles\n');
});
async function runBootstrap(fn) {
  awaiting = true;
  try {
    await fn();
  } catch (e) {
    return fail(0, 'threw', messageOf(e), positionOf(e));
  } finally {
    awaiting = false;
  }
  send(0, '[[]]');
}

const bootstraps = new Set(config.bootstraps);
let lambdas;
try {
  if (config.deps.length) {
    const path = require('path');
    const req = require('module').createRequire(path.join(config.depsDir, 'package.json'));
    for (const [pkg, name] of config.deps) {
      let m;
      try {
        m = req(pkg);
      } catch (e) {
        throw new Error(`nodeDependencies package \`${pkg}\` cannot be loaded: ${messageOf(e)}`);
      }
      if (!(name in globalThis)) globalThis[name] = m;
    }
  }
  lambdas = require(config.module);
  if (!Array.isArray(lambdas) || lambdas.length !== config.count ||
      !lambdas.every((f) => typeof f === 'function')) {
    throw new Error('the generated module does not hold one function per lambda ' +
                    '(does a lambda body close its function early?)');
  }
} catch (e) {
  fail(-1, 'load', messageOf(e), positionOf(e));
  process.exit(1);
}
send(0, JSON.stringify({node: process.version}));

(async () => {
  for (;;) {
    readExact(header, 8);
    const n = header.readUInt32LE(0) - 4;
    const index = header.readUInt32LE(4);
    if (input.length < n) input = Buffer.allocUnsafe(Math.max(n, input.length * 2));
    readExact(input, n);
    if (bootstraps.has(index)) {
      await runBootstrap(lambdas[index]);
    } else {
      run(lambdas[index], JSON.parse(input.toString('utf8', 0, n)));
    }
  }
})();
)JS";

// ---- Small helpers -------------------------------------------------------------------

// Two independent 64-bit hashes (FNV-1a, and a multiply-rotate hash over 8-byte words) as 32
// hex digits: the names of cache entries. Cached modules are also compared byte for byte.
std::string HashKey(std::string_view s) {
  uint64_t a = 0xcbf29ce484222325ull;
  for (unsigned char c : s) a = (a ^ c) * 0x100000001b3ull;
  uint64_t b = 0x9e3779b97f4a7c15ull ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    b = ((b ^ (w * 0xff51afd7ed558ccdull)) << 27 | (b ^ (w * 0xff51afd7ed558ccdull)) >> 37) *
        0xc4ceb9fe1a85ec53ull;
  }
  for (; i < s.size(); ++i) b = (b ^ static_cast<unsigned char>(s[i])) * 0xc4ceb9fe1a85ec53ull;
  b ^= b >> 33;
  return fmt::format("{:016x}{:016x}", a, b);
}

bool IsExecutable(const std::string& path) {
  std::error_code ec;
  return access(path.c_str(), X_OK) == 0 && !fs::is_directory(path, ec);
}

// `name` itself when it holds a `/`, else its first executable match on PATH.
std::optional<std::string> FindProgram(const std::string& name) {
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string::npos) {
    if (IsExecutable(name)) return name;
    return std::nullopt;
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (IsExecutable(candidate)) return candidate;
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return std::nullopt;
}

std::string ExitDescription(int status) {
  if (WIFEXITED(status)) return fmt::format("exit status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = strsignal(WTERMSIG(status));
    return fmt::format("killed by signal {} ({})", WTERMSIG(status), name ? name : "?");
  }
  return fmt::format("wait status {}", status);
}

// Moves `fd` to a number >= 10, close-on-exec, so that a child's dup2 onto 0..3 never finds
// it already there (dup2 onto itself would keep close-on-exec set).
int HighFd(int fd) {
  int high = fcntl(fd, F_DUPFD_CLOEXEC, 10);
  close(fd);
  return high;
}

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

pid_t WaitPid(pid_t pid, int* status, int flags) {
  pid_t r;
  do {
    r = waitpid(pid, status, flags);
  } while (r < 0 && errno == EINTR);
  return r;
}

// The environment of this process with `name` set to `value` (when `name` is not empty).
std::vector<std::string> ChildEnv(const std::string& name, const std::string& value) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    if (!name.empty() && std::strncmp(*e, name.c_str(), name.size()) == 0 &&
        (*e)[name.size()] == '=') {
      continue;
    }
    env.emplace_back(*e);
  }
  if (!name.empty()) env.push_back(name + "=" + value);
  return env;
}

// Starts `path` with stdin on /dev/null, stdout and stderr on `out_fd`, and `proto_fd` (when
// >= 0) as fd 3, in a process group of its own (a terminal's Ctrl-C is flowctl's to handle),
// with default signal dispositions and mask. `out_fd` and `proto_fd` must be >= 10.
//
// The child is killed when flowctl ends, however it ends (SIGKILL included): it asks the
// kernel for SIGKILL on its parent's death (PR_SET_PDEATHSIG, which posix_spawn cannot set,
// hence fork), and exits if the parent died before it asked. The kernel sends that signal
// when the *thread* that forked ends: workers are started by threads that outlive them (the
// main thread of every command).
Result<pid_t> Spawn(const std::string& path, const std::vector<std::string>& args,
                    const std::vector<std::string>& env, int out_fd, int proto_fd) {
  std::vector<char*> argv, envp;
  argv.push_back(const_cast<char*>(path.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  // The child reports a failed exec through this pipe (closed on a successful exec).
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return Error::Env(fmt::format("pipe: {}", std::strerror(errno)));
  report[0] = HighFd(report[0]);
  report[1] = HighFd(report[1]);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(report[0]);
    close(report[1]);
    return Error::Env(fmt::format("cannot run {}: fork: {}", path, std::strerror(err)));
  }
  if (pid == 0) {
    // The child of a possibly multi-threaded process: async-signal-safe calls only.
    auto die = [&](int err) {
      ssize_t ignored = write(report[1], &err, sizeof err);
      (void)ignored;
      _exit(127);
    };
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) die(errno);
    if (getppid() != parent) _exit(127);  // the parent died before the request took effect
    setpgid(0, 0);
    struct sigaction dfl;
    std::memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD}) sigaction(sig, &dfl, nullptr);
    int in = open("/dev/null", O_RDONLY);
    if (in < 0) die(errno);
    if (in != 0 && (dup2(in, 0) < 0 || close(in) != 0)) die(errno);
    if (dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0) die(errno);
    if (proto_fd >= 0 && dup2(proto_fd, 3) < 0) die(errno);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(path.c_str(), argv.data(), envp.data());
    die(errno);
  }
  close(report[1]);
  int err = 0;
  ssize_t n;
  do {
    n = read(report[0], &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  close(report[0]);
  if (n == static_cast<ssize_t>(sizeof err)) {
    int status;
    WaitPid(pid, &status, 0);
    return Error::Env(fmt::format("cannot run {}: {}", path, std::strerror(err)));
  }
  return pid;
}

// Runs a tool to completion; its stdout and stderr, merged (the last kToolOutput bytes).
struct ToolRun {
  int status = 0;
  std::string output;
};

Result<ToolRun> RunTool(const std::string& path, const std::vector<std::string>& args) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return Error::Env(fmt::format("pipe: {}", std::strerror(errno)));
  int r = HighFd(p[0]), w = HighFd(p[1]);
  auto pid = Spawn(path, args, ChildEnv("", ""), w, -1);
  close(w);
  if (!pid.ok()) {
    close(r);
    return pid.error();
  }
  ToolRun run;
  char buf[16384];
  for (;;) {
    ssize_t n = read(r, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    run.output.append(buf, static_cast<size_t>(n));
    if (run.output.size() > 2 * kToolOutput) run.output.erase(0, run.output.size() - kToolOutput);
  }
  close(r);
  WaitPid(*pid, &run.status, 0);
  return run;
}

std::string Tail(std::string_view s, size_t max) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  if (s.size() <= max) return std::string(s);
  size_t cut = s.size() - max;
  while (cut < s.size() && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80) ++cut;  // UTF-8
  return "…" + std::string(s.substr(cut));
}

std::string Label(const NodeLambdaSpec& l) {
  if (l.bootstrap) {
    return fmt::format("bootstrap lambda {}{}", l.bootstrap,
                       l.derivation.empty() ? "" : fmt::format(" of derivation `{}`", l.derivation));
  }
  return fmt::format("lambda of transform `{}`{} ({})", l.transform,
                     l.derivation.empty() ? "" : fmt::format(" of derivation `{}`", l.derivation),
                     l.publish ? "publish" : "update");
}

// ---- The TypeScript module -----------------------------------------------------------

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

// How many of (source, register, previous) rows of lambda `l` carry: a publish body that
// never names `register` or `previous` (nor `eval`, which could) is sent the source only,
// sparing the serialization and parsing of registers it would not look at. Within a string
// or a comment the name still counts: conservative.
size_t Arity(const NodeLambdaSpec& l) {
  if (l.bootstrap) return 0;
  if (!l.publish) return 1;
  if (HasIdentifier(l.body, "eval") || HasIdentifier(l.body, "previous")) return 3;
  return HasIdentifier(l.body, "register") ? 2 : 1;
}

struct Module {
  std::string text;
  std::vector<uint32_t> first_line;  // of each body, 1-based
  std::vector<uint32_t> line_count;  // of each body
};

Module Generate(const std::vector<NodeLambdaSpec>& lambdas) {
  Module m;
  m.text =
      "// Generated by flowctl from the nodeJS lambdas of one derivation: element i of the\n"
      "// exported array is lambda i.\n"
      "module.exports = [\n";
  uint32_t line = 4;  // the line the next text starts on
  for (const auto& l : lambdas) {
    std::string label = Label(l);
    for (char& c : label) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    m.text += l.bootstrap ? fmt::format("// {}\nasync (): Promise<any> => {{\n", label)
                          : fmt::format("// {}\n(source: any, register: any, previous: any): any => {{\n", label);
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

// The body holding 1-based `line` of the module: the last body starting at or before it
// (a line after that body's end means the body closed its function early). -1 before all.
int BodyOf(const Module& m, uint32_t line) {
  int found = -1;
  for (size_t i = 0; i < m.first_line.size(); ++i) {
    if (m.first_line[i] <= line) found = static_cast<int>(i);
  }
  return found;
}

// "at line 2, column 5 of its body: `text`" for a position of the module within body `i`.
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

// esbuild (--log-level=error --color=false) prints each error as "✘ [ERROR] message", a blank
// line, then "    file:line:column:" with a 0-based column, then the source line.
struct CompileError {
  std::string message;
  uint32_t line = 0, column = 0;  // 1-based; 0 when esbuild named no position
};

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
    auto number = [](std::string_view d, uint32_t* v) {
      if (d.empty() || d.size() > 9) return false;
      *v = 0;
      for (char c : d) {
        if (c < '0' || c > '9') return false;
        *v = *v * 10 + static_cast<uint32_t>(c - '0');
      }
      return true;
    };
    uint32_t l, c;
    if (number(line.substr(c1 + 1, c2 - c1 - 1), &l) && number(line.substr(c2 + 1), &c)) {
      errors.back().line = l;
      errors.back().column = c + 1;
    }
  }
  return errors;
}

std::mutex esbuild_versions_mu;
std::map<std::string, std::string> esbuild_versions;  // by path

Result<std::string> EsbuildVersion(const std::string& esbuild) {
  std::lock_guard lock(esbuild_versions_mu);
  if (auto it = esbuild_versions.find(esbuild); it != esbuild_versions.end()) return it->second;
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

Result<bool> CreateDir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error::Env(fmt::format("cannot create {}: {}", dir, ec.message()));
  return true;
}

std::string TempSuffix() {
  static std::atomic<uint64_t> counter{0};
  return fmt::format(".tmp-{}-{}", getpid(), counter.fetch_add(1));
}

// Transpiles the module into <cache>/node/modules/<key>.js (kept beside <key>.ts, its
// source), unless it is already there. Returns the .js path.
Result<std::string> Transpile(const Module& m, const std::vector<NodeLambdaSpec>& lambdas,
                              const std::string& esbuild, const std::string& cache_dir,
                              std::string* ts_name) {
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
    auto errors = ParseEsbuildErrors(run->output);
    if (errors.empty()) {
      return Error::Env(fmt::format("esbuild ({}) failed ({}) on the nodeJS lambdas: {}", esbuild,
                                    ExitDescription(run->status), Tail(run->output, 2000)));
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
  if (rename(tmp.c_str(), js.c_str()) != 0) {
    int err = errno;
    fs::remove(tmp, ec);
    return Error::Env(fmt::format("cannot rename {} to {}: {}", tmp, js, std::strerror(err)));
  }
  return js;
}

// Installs `deps` with npm into <cache>/node/deps/<key> (node_modules within), unless it is
// already there. Installs into a temporary directory renamed into place, so that concurrent
// flowctl processes never see a partial install.
Result<std::string> InstallDependencies(const std::map<std::string, std::string>& deps,
                                        const std::string& npm_name, const std::string& cache_dir) {
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
  std::string package_json(buf.GetString(), buf.GetSize());
  package_json += '\n';

  std::string dir = cache_dir + "/node/deps/" + HashKey(package_json);
  std::error_code ec;
  if (fs::exists(dir + "/.flowctl-installed", ec)) {
    auto cached = ReadFile(dir + "/package.json");
    if (cached.ok() && *cached == package_json) return dir;
  }
  std::string list;
  for (const auto& [name, version] : deps)
    list += fmt::format("{}{}@{}", list.empty() ? "" : " ", name, version);
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

}  // namespace

// ---- Public helpers ------------------------------------------------------------------

std::string DefaultNodeCacheDir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && xdg[0] == '/') {
    return std::string(xdg) + "/flowctl";
  }
  if (const char* home = std::getenv("HOME"); home && home[0])
    return std::string(home) + "/.cache/flowctl";
  return fmt::format("/tmp/flowctl-cache-{}", getuid());
}

Result<std::string> FindEsbuild() {
  if (const char* env = std::getenv("FLOWCTL_ESBUILD"); env && env[0]) {
    if (IsExecutable(env)) return std::string(env);
    return Error::Env(fmt::format("FLOWCTL_ESBUILD names {}, which is not an executable", env));
  }
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path dir = exe.parent_path();
    for (const fs::path& base : {dir.parent_path(), dir}) {
      std::string candidate = (base / ".deps/npm-runtime/node_modules/.bin/esbuild").string();
      if (IsExecutable(candidate)) return candidate;
    }
  }
  if (auto found = FindProgram("esbuild")) return *found;
  return Error::Env(
      "esbuild, which transpiles the TypeScript of nodeJS lambdas, is not installed: run "
      "scripts/setup.sh (it installs esbuild into .deps/npm-runtime beside the build), or set "
      "FLOWCTL_ESBUILD to an esbuild binary");
}

std::string NodeGlobalName(std::string_view package) {
  if (!package.empty() && package.front() == '@') {
    if (size_t slash = package.find('/'); slash != std::string_view::npos)
      package.remove_prefix(slash + 1);
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

// ---- The worker ----------------------------------------------------------------------

struct NodeWorker::Impl {
  std::mutex mu;
  pid_t pid = -1;
  int socket = -1;  // our end of the protocol socket, non-blocking
  int output = -1;  // read end of the worker's stdout+stderr pipe, non-blocking
  std::string output_tail;
  std::string dead;  // why the worker is gone, once it is
  // How to start the worker (again, after a timeout or a stop killed it: pid is then -1
  // and `dead` empty).
  std::string node;
  std::vector<std::string> args, env;
  std::vector<NodeLambdaSpec> lambdas;
  std::vector<size_t> arity;  // of each lambda's rows: 1 (source), 2 (+ register) or 3 (+ previous)
  Module module;
  rapidjson::StringBuffer sending;  // request frames; [sent, size) is not sent yet
  size_t sent = 0;
  std::string received;  // [received_start, received_size) arrived and is not consumed yet
  size_t received_start = 0, received_size = 0;

  ~Impl() { Stop(); }

  void Stop() {
    if (socket >= 0) close(socket);
    socket = -1;
    if (pid > 0) {
      kill(-pid, SIGKILL);  // its process group: what a lambda started too
      kill(pid, SIGKILL);
      int status;
      WaitPid(pid, &status, 0);
      pid = -1;
    }
    if (output >= 0) close(output);
    output = -1;
  }

  // Kills the worker in the middle of a request (it timed out, or flowctl is stopping) and
  // forgets what was in flight: the next invocation starts a new worker.
  void Kill() {
    Stop();
    sending.Clear();
    sent = 0;
    received_start = received_size = 0;
    output_tail.clear();
  }

  // Starts the worker and waits until it has loaded the module (the status 1 error of a
  // module that does not load is a user error).
  Result<bool> Launch() {
    int sv[2], p[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      return Error::Env(fmt::format("socketpair: {}", std::strerror(errno)));
    }
    if (pipe2(p, O_CLOEXEC) != 0) {
      int err = errno;
      close(sv[0]);
      close(sv[1]);
      return Error::Env(fmt::format("pipe: {}", std::strerror(err)));
    }
    for (int fd : {sv[0], sv[1]}) {
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSocketBuffer, sizeof kSocketBuffer);
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kSocketBuffer, sizeof kSocketBuffer);
    }
    int theirs = HighFd(sv[1]), their_output = HighFd(p[1]);
    socket = sv[0];
    output = p[0];
    SetNonBlocking(socket);
    SetNonBlocking(output);
    auto spawned = Spawn(node, args, env, their_output, theirs);
    close(theirs);
    close(their_output);
    if (!spawned.ok()) {
      Stop();
      return spawned.error();
    }
    pid = *spawned;

    // The first response says whether the module and the dependencies loaded.
    auto size = NextFrame("while starting", Clock::now() + kStartTimeout);
    if (!size.ok()) return size.error();
    if (*size == 0) {
      return Error::Env(fmt::format("the Node.js worker of the nodeJS lambdas did not start within {} s",
                                    kStartTimeout.count()));
    }
    if (Status() != 0) {
      char saved;
      std::string_view payload = Payload(*size, &saved);
      rapidjson::Document d;
      doc::ParseError pe;
      std::string message = "unknown";
      if (doc::ParseTerminatedDocument(payload, &d, &pe, {kMaxFrame, 8}) && d.IsObject() &&
          d.HasMember("message") && d["message"].IsString()) {
        message = d["message"].GetString();
      }
      Kill();
      return Error::User(fmt::format("the nodeJS lambdas cannot be loaded: {}", message));
    }
    ConsumeFrame(*size);
    return true;
  }

  // Reads what the worker printed (until end of file when `until_eof`, for at most a second).
  void DrainOutput(bool until_eof) {
    auto deadline = std::chrono::steady_clock::now() + kExitWait;
    char buf[16384];
    while (output >= 0) {
      ssize_t n = read(output, buf, sizeof buf);
      if (n > 0) {
        output_tail.append(buf, static_cast<size_t>(n));
        if (output_tail.size() > 2 * kOutputTail)
          output_tail.erase(0, output_tail.size() - kOutputTail);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (!until_eof || left.count() <= 0) return;
        pollfd p{output, POLLIN, 0};
        poll(&p, 1, static_cast<int>(left.count()));
        continue;
      }
      close(output);  // end of file, or an error
      output = -1;
    }
  }

  // The worker is gone or unusable: reaps it and returns (and remembers) why.
  Error Died(std::string_view doing, std::string_view what = "") {
    if (socket >= 0) close(socket);
    socket = -1;
    std::string how = "its connection broke";
    if (pid > 0) {
      // Give it a moment to finish dying by itself, so that its own exit status is reported.
      int status = 0;
      auto deadline = std::chrono::steady_clock::now() + kExitWait;
      pid_t r;
      while ((r = WaitPid(pid, &status, WNOHANG)) == 0 &&
             std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (r == 0) {
        kill(pid, SIGKILL);
        WaitPid(pid, &status, 0);
        how = "it stopped answering and was killed";
      } else {
        how = ExitDescription(status);
      }
      pid = -1;
    }
    DrainOutput(true);
    std::string msg = fmt::format("the Node.js worker of the nodeJS lambdas died {} ({}{})", doing,
                                  how, what.empty() ? "" : fmt::format("; {}", what));
    std::string tail = Tail(output_tail, kOutputTail);
    if (!tail.empty()) msg += fmt::format("; its last output:\n{}", tail);
    dead = msg;
    return Error::Env(msg);
  }

  // The size of the complete response frame at the front of `received`, or 0 when it has
  // not fully arrived. A malformed length sets `*bad`.
  size_t FrameReady(bool* bad) const {
    size_t have = received_size - received_start;
    if (have < 5) return 0;
    uint32_t len;
    std::memcpy(&len, received.data() + received_start, 4);
    if (len == 0 || len > kMaxFrame) {
      *bad = true;
      return 0;
    }
    return have >= size_t{len} + 4 ? size_t{len} + 4 : 0;
  }

  // Drops the frame of `size` bytes at the front of `received`.
  void ConsumeFrame(size_t size) { received_start += size; }

  // Sends what the socket takes of `sending`, receives what has arrived, and when neither
  // moved and no frame is complete, waits for the socket (and drains the worker's output).
  // Past `deadline`, kills the worker and returns false; on a stop request, kills it and
  // returns StoppedError.
  Result<bool> Pump(std::string_view doing, Clock::time_point deadline) {
    bool moved = false;
    while (sent < sending.GetSize()) {
      ssize_t n = send(socket, sending.GetString() + sent, sending.GetSize() - sent,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<size_t>(n);
        moved = true;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        break;
      } else {
        return Died(doing);
      }
    }
    if (sent == sending.GetSize()) {
      sending.Clear();
      sent = 0;
    }
    bool bad = false;
    if (FrameReady(&bad) || bad) return true;
    // What is left is the start of a frame: move it to the front of the buffer.
    if (received_start > 0) {
      std::memmove(received.data(), received.data() + received_start,
                   received_size - received_start);
      received_size -= received_start;
      received_start = 0;
    }
    for (;;) {
      // Room for a whole frame once its length is known, so it arrives in few reads.
      size_t want = kReadChunk;
      if (received_size >= 4) {
        uint32_t len;
        std::memcpy(&len, received.data(), 4);
        if (len <= kMaxFrame && size_t{len} + 4 > received_size)
          want = std::max(want, size_t{len} + 4 - received_size);
      }
      if (received.size() < received_size + want + 1) received.resize(received_size + want + 1);
      ssize_t n = recv(socket, received.data() + received_size, want, MSG_DONTWAIT);
      if (n > 0) {
        received_size += static_cast<size_t>(n);
        moved = true;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      return Died(doing);
    }
    if (FrameReady(&bad) || bad || moved) return true;
    if (StopRequested()) {
      Kill();
      return StoppedError();
    }
    auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) {
      Kill();
      return false;
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(std::min<Clock::duration>(left, kStopCheck));
    pollfd fds[2] = {
        {socket, static_cast<short>(POLLIN | (sent < sending.GetSize() ? POLLOUT : 0)), 0},
        {output, POLLIN, 0}};
    if (poll(fds, output >= 0 ? 2 : 1, static_cast<int>(wait.count()) + 1) < 0 && errno != EINTR) {
      return Died(doing, fmt::format("poll: {}", std::strerror(errno)));
    }
    if (output >= 0 && fds[1].revents) DrainOutput(false);
    return true;
  }

  // Waits for the complete frame at the front of `received`; returns its size, or 0 when
  // `deadline` passed first (the worker is then killed).
  Result<size_t> NextFrame(std::string_view doing, Clock::time_point deadline) {
    for (;;) {
      bool bad = false;
      if (size_t size = FrameReady(&bad)) return size;
      if (bad) return Died(doing, "it sent a malformed response");
      auto ok = Pump(doing, deadline);
      if (!ok.ok()) return ok.error();
      if (!*ok) return size_t{0};
    }
  }

  // The JSON of the frame of `size` bytes at the front of `received`, NUL-terminated for
  // ParseTerminatedDocument (the byte after it, saved in `*saved`, is restored by Restore).
  std::string_view Payload(size_t size, char* saved) {
    char* frame = received.data() + received_start;
    *saved = frame[size];
    frame[size] = '\0';
    return std::string_view(frame + 5, size - 5);
  }
  void Restore(size_t size, char saved) { received[received_start + size] = saved; }
  uint8_t Status() const { return static_cast<uint8_t>(received[received_start + 4]); }

  // The error of a status 1 response (JSON `payload`) about the rows from `first_row` on.
  Error LambdaError(std::string_view payload, size_t index, size_t first_row, int* failed_row) {
    rapidjson::Document d;
    doc::ParseError pe;
    if (!doc::ParseTerminatedDocument(payload, &d, &pe, {kMaxFrame, 8}) || !d.IsObject()) {
      return Error::Internal(
          fmt::format("the Node.js worker sent a malformed error: {}", Tail(payload, 500)));
    }
    auto str = [&](const char* k) -> std::string {
      auto it = d.FindMember(k);
      return it != d.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
    };
    auto num = [&](const char* k) -> int64_t {
      auto it = d.FindMember(k);
      return it != d.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : 0;
    };
    int64_t row = num("row");
    if (failed_row) {
      *failed_row = row >= 0 && first_row + static_cast<uint64_t>(row) <= INT32_MAX
                        ? static_cast<int>(first_row + static_cast<uint64_t>(row))
                        : -1;
    }
    std::string kind = str("kind"), message = str("message");
    const NodeLambdaSpec& l = lambdas[index];
    if (kind == "notArray")
      return Error::User(fmt::format("{} returned {}, not an array", Label(l), message));
    if (kind == "unserializable") {
      return Error::User(fmt::format("{} returned output that is not JSON: {}", Label(l), message));
    }
    std::string where;
    int64_t line = num("line"), column = num("column");
    if (line > 0) {
      int i = BodyOf(module, static_cast<uint32_t>(line));
      if (i >= 0) {
        std::string pos =
            BodyPosition(module, lambdas, static_cast<size_t>(i), static_cast<uint32_t>(line),
                         static_cast<uint32_t>(std::max<int64_t>(column, 0)), true);
        where = static_cast<size_t>(i) == index
                    ? fmt::format(" ({})", pos)
                    : fmt::format(" (in {}: {})", Label(lambdas[static_cast<size_t>(i)]), pos);
      }
    }
    return Error::User(fmt::format("{} threw: {}{}", Label(l), message, where));
  }
};

NodeWorker::NodeWorker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NodeWorker::~NodeWorker() = default;

pid_t NodeWorker::pid() const { return impl_->pid; }

namespace {

// The esbuild binary of `options` (or found), or an environment error.
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

}  // namespace

Result<bool> PrepareNodeLambdas(const std::vector<NodeLambdaSpec>& lambdas, const NodeOptions& options) {
  auto esbuild = EsbuildOf(options);
  if (!esbuild.ok()) return esbuild.error();
  std::string cache_dir = options.cache_dir.empty() ? DefaultNodeCacheDir() : options.cache_dir;
  std::string ts_name;
  auto js = Transpile(Generate(lambdas), lambdas, *esbuild, cache_dir, &ts_name);
  if (!js.ok()) return js.error();
  if (!options.dependencies.empty()) {
    auto dir = InstallDependencies(options.dependencies, options.npm, cache_dir);
    if (!dir.ok()) return dir.error();
  }
  return true;
}

Result<std::shared_ptr<NodeWorker>> NodeWorker::Start(const std::vector<NodeLambdaSpec>& lambdas,
                                                      const NodeOptions& options) {
  for (size_t i = 0; i < lambdas.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (lambdas[i].id == lambdas[j].id) {
        return Error::Internal(fmt::format("two nodeJS lambdas have the id `{}`", lambdas[i].id));
      }
    }
  }
  auto node = FindProgram(options.node);
  if (!node) {
    return Error::Env(
        fmt::format("Node.js (`{}`) is not installed; install it (e.g. apt install nodejs) to run "
                    "nodeJS lambdas",
                    options.node));
  }
  std::string cache_dir = options.cache_dir.empty() ? DefaultNodeCacheDir() : options.cache_dir;
  auto found = EsbuildOf(options);
  if (!found.ok()) return found.error();
  std::string esbuild = *found;

  auto impl = std::make_unique<Impl>();
  impl->lambdas = lambdas;
  for (const auto& l : lambdas) impl->arity.push_back(Arity(l));
  impl->module = Generate(lambdas);
  std::string ts_name;
  auto js = Transpile(impl->module, lambdas, esbuild, cache_dir, &ts_name);
  if (!js.ok()) return js.error();

  std::string deps_dir;
  if (!options.dependencies.empty()) {
    auto dir = InstallDependencies(options.dependencies, options.npm, cache_dir);
    if (!dir.ok()) return dir.error();
    deps_dir = *dir;
  }

  // The worker's configuration, its argv[1].
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("module");
  w.String(js->c_str());
  w.Key("source");
  w.String(ts_name.c_str());
  w.Key("count");
  w.Uint64(lambdas.size());
  w.Key("bootstraps");
  w.StartArray();
  for (size_t i = 0; i < lambdas.size(); ++i) {
    if (lambdas[i].bootstrap) w.Uint64(i);
  }
  w.EndArray();
  w.Key("depsDir");
  w.String(deps_dir.c_str());
  w.Key("deps");
  w.StartArray();
  for (const auto& [name, version] : options.dependencies) {
    w.StartArray();
    w.String(name.c_str());
    w.String(NodeGlobalName(name).c_str());
    w.EndArray();
  }
  w.EndArray();
  w.EndObject();

  std::string node_path = deps_dir.empty() ? "" : deps_dir + "/node_modules";
  if (const char* existing = std::getenv("NODE_PATH"); existing && existing[0]) {
    node_path = node_path.empty() ? existing : node_path + ":" + existing;
  }
  impl->node = *node;
  impl->args = {"--enable-source-maps", "-e", kWorkerJs, std::string(buf.GetString(), buf.GetSize())};
  impl->env = ChildEnv(node_path.empty() ? "" : "NODE_PATH", node_path);
  if (auto launched = impl->Launch(); !launched.ok()) return launched.error();
  return std::shared_ptr<NodeWorker>(new NodeWorker(std::move(impl)));
}

class NodeLambda final : public Lambda {
 public:
  NodeLambda(std::shared_ptr<NodeWorker> worker, size_t index)
      : worker_(std::move(worker)), index_(index) {}

  // Rows go in chunks of at most kChunkBytes of JSON, up to kInFlight chunks ahead of the
  // responses: the worker runs one chunk while the next is written and the previous one's
  // outputs parsed, and no JSON text is large enough for V8's large-object space.
  Result<bool> Invoke(const std::vector<Row>& rows, doc::Allocator& alloc, Outputs* out,
                      int* failed_row) override {
    if (failed_row) *failed_row = -1;
    out->clear();
    if (rows.empty()) return true;
    NodeWorker::Impl& w = *worker_->impl_;
    std::lock_guard lock(w.mu);
    const NodeLambdaSpec& spec = w.lambdas[index_];
    if (!w.dead.empty()) return Error::Env(w.dead);
    if (StopRequested()) return StoppedError();
    if (w.pid < 0) {  // killed by a timeout or a stop: start it again
      if (auto launched = w.Launch(); !launched.ok()) return launched.error();
    }
    std::string doing = fmt::format("while running the {}", Label(spec));
    const size_t arity = w.arity[index_];
    out->resize(rows.size());

    struct Chunk {
      size_t first, count;
    };
    Chunk in_flight[kInFlight];
    size_t head = 0, queued = 0;  // a ring of the chunks sent and not answered
    size_t next = 0;              // the next row to send
    std::optional<Error> failure;
    while (next < rows.size() || queued) {
      while (!failure && next < rows.size() && queued < kInFlight) {
        // A frame: u32 length, u32 lambda index, then the rows as JSON.
        size_t at = w.sending.GetSize();
        w.sending.Push(8);
        size_t first = next;
        {
          rapidjson::Writer<rapidjson::StringBuffer> writer(w.sending);
          auto write = [&](const doc::Value* v) {
            if (v) {
              v->Accept(writer);
            } else {
              writer.Null();
            }
          };
          writer.StartArray();
          size_t start = w.sending.GetSize();
          do {
            const Row& row = rows[next++];
            writer.StartArray();
            if (arity > 0) write(row.source);
            if (arity > 1) write(row.register_value);
            if (arity > 2) write(row.previous);
            writer.EndArray();
          } while (next < rows.size() && w.sending.GetSize() - start < kChunkBytes);
          writer.EndArray();
        }
        size_t frame = w.sending.GetSize() - at;
        if (frame - 4 > kMaxFrame) {
          failure = Error::User(fmt::format("a document for the {} is over {} MiB of JSON",
                                            Label(spec), kMaxFrame >> 20));
          w.sending.Pop(frame);
          break;
        }
        uint32_t len = static_cast<uint32_t>(frame - 4), index = static_cast<uint32_t>(index_);
        char* header = const_cast<char*>(w.sending.GetString()) + at;
        std::memcpy(header, &len, 4);
        std::memcpy(header + 4, &index, 4);
        in_flight[(head + queued++) % kInFlight] = {first, next - first};
      }
      if (!queued) break;
      // The worker answers chunks one after the other: each gets the whole timeout.
      auto size = w.NextFrame(doing, Clock::now() + spec.timeout);
      if (!size.ok()) return size.error();
      if (*size == 0) {
        const Chunk& stuck = in_flight[head];
        if (failed_row) *failed_row = stuck.first <= INT32_MAX ? static_cast<int>(stuck.first) : -1;
        out->clear();
        return Error::User(fmt::format(
            "{} did not {} within {} (the lambda timeout; set `lambdaTimeout` to allow longer){}; its "
            "Node.js worker was killed and starts again on the next attempt",
            Label(spec), spec.bootstrap ? "finish" : "return", DescribeTimeout(spec.timeout),
            stuck.count > 1 ? fmt::format(", running a group of {} documents starting with this one", stuck.count)
                            : ""));
      }
      Chunk chunk = in_flight[head];
      head = (head + 1) % kInFlight;
      --queued;
      if (!failure) failure = Accept(w, *size, chunk.first, chunk.count, alloc, out, failed_row);
      w.ConsumeFrame(*size);
      if (!w.dead.empty()) return Error::Env(w.dead);
    }
    if (failure) {
      out->clear();
      return *failure;
    }
    return true;
  }

 private:
  // Takes the outputs of rows [first, first + count) from the response frame of `size`
  // bytes, or returns its error.
  std::optional<Error> Accept(NodeWorker::Impl& w, size_t size, size_t first, size_t count,
                              doc::Allocator& alloc, Outputs* out, int* failed_row) {
    const NodeLambdaSpec& spec = w.lambdas[index_];
    char saved;
    std::string_view payload = w.Payload(size, &saved);
    std::optional<Error> error;
    if (w.Status() != 0) {
      error = w.LambdaError(payload, index_, first, failed_row);
    } else {
      // Outputs are at depth 2 (the array of rows, each an array of documents).
      rapidjson::Document d(&alloc);
      doc::ParseError pe;
      if (!doc::ParseTerminatedDocument(payload, &d, &pe, {kMaxFrame, 256 + 2})) {
        error = Error::User(
            fmt::format("{} returned output flowctl cannot accept: {}", Label(spec), pe.message));
      } else if (!d.IsArray() || d.Size() != count) {
        error = w.Died(fmt::format("while running the {}", Label(spec)),
                       "its response does not match the request");
      } else {
        for (size_t i = 0; i < count && !error; ++i) {
          doc::Value& docs = d[static_cast<rapidjson::SizeType>(i)];
          if (!docs.IsArray()) {
            error = w.Died(fmt::format("while running the {}", Label(spec)),
                           "its response does not match the request");
            break;
          }
          auto& o = (*out)[first + i];
          o.reserve(docs.Size());
          for (auto& v : docs.GetArray()) o.push_back(std::move(v));
        }
      }
    }
    w.Restore(size, saved);
    return error;
  }

  std::shared_ptr<NodeWorker> worker_;
  size_t index_;
};

std::unique_ptr<Lambda> NodeWorker::Get(const std::string& id) {
  for (size_t i = 0; i < impl_->lambdas.size(); ++i) {
    if (impl_->lambdas[i].id == id) return std::make_unique<NodeLambda>(shared_from_this(), i);
  }
  return nullptr;
}

}  // namespace flow::lambda
