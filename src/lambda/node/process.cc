#include "lambda/node/process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "lambda/node.h"

extern char** environ;

namespace flow::lambda::node {
namespace {

constexpr size_t kOutputTail = 4096;                 // bytes of a Child's output kept for messages
constexpr size_t kToolOutput = 64 << 10;             // bytes of a tool's output kept
constexpr auto kExitWait = std::chrono::seconds(1);  // for a dying child to exit by itself

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

// Starts `path` with stdin on /dev/null, stdout and stderr on `out_fd`, and `proto_fd` (when
// >= 0) as fd 3, as described at the top of process.h. `out_fd` and `proto_fd` must be >= 10.
//
// The child asks the kernel for SIGKILL on its parent's death (PR_SET_PDEATHSIG, which
// posix_spawn cannot set, hence fork), and exits if the parent died before it asked. The
// kernel sends that signal when the *thread* that forked ends.
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
  if (pipe2(report, O_CLOEXEC) != 0) {
    return Error::Env(fmt::format("pipe: {}", std::strerror(errno)));
  }
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
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD}) {
      sigaction(sig, &dfl, nullptr);
    }
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

}  // namespace

bool IsExecutable(const std::string& path) {
  std::error_code ec;
  return access(path.c_str(), X_OK) == 0 && !std::filesystem::is_directory(path, ec);
}

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

std::string Tail(std::string_view s, size_t max) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  if (s.size() <= max) return std::string(s);
  size_t cut = s.size() - max;
  while (cut < s.size() && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80) ++cut;  // UTF-8
  return "…" + std::string(s.substr(cut));
}

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

// ---- Child ---------------------------------------------------------------------------

Result<bool> Child::Start(const std::string& path, const std::vector<std::string>& args,
                          const std::vector<std::string>& env, int channel, int output_to) {
  int their_output = -1;
  if (output_to >= 0) {
    their_output = fcntl(output_to, F_DUPFD_CLOEXEC, 10);
    if (their_output < 0) return Error::Env(fmt::format("dup: {}", std::strerror(errno)));
  } else {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return Error::Env(fmt::format("pipe: {}", std::strerror(errno)));
    their_output = HighFd(p[1]);
    output_ = p[0];
    SetNonBlocking(output_);
  }
  int theirs = channel >= 0 ? fcntl(channel, F_DUPFD_CLOEXEC, 10) : -1;
  auto spawned = Spawn(path, args, env, their_output, theirs);
  if (theirs >= 0) close(theirs);
  close(their_output);
  if (!spawned.ok()) {
    if (output_ >= 0) close(output_);
    output_ = -1;
    return spawned.error();
  }
  pid_ = *spawned;
  return true;
}

void Child::Kill() {
  if (pid_ > 0) {
    kill(-pid_, SIGKILL);  // its process group: what a lambda started too
    kill(pid_, SIGKILL);
    int status;
    WaitPid(pid_, &status, 0);
    pid_ = -1;
  }
  if (output_ >= 0) close(output_);
  output_ = -1;
}

std::optional<int> Child::Reap() {
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + kExitWait;
  pid_t r;
  while ((r = WaitPid(pid_, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::optional<int> exited;
  if (r == 0) {
    kill(pid_, SIGKILL);
    WaitPid(pid_, &status, 0);
  } else {
    exited = status;
  }
  pid_ = -1;
  return exited;
}

void Child::DrainOutput(bool until_eof) {
  auto deadline = std::chrono::steady_clock::now() + kExitWait;
  char buf[16384];
  while (output_ >= 0) {
    ssize_t n = read(output_, buf, sizeof buf);
    if (n > 0) {
      output_tail_.append(buf, static_cast<size_t>(n));
      if (output_tail_.size() > 2 * kOutputTail) {
        output_tail_.erase(0, output_tail_.size() - kOutputTail);
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (!until_eof || left.count() <= 0) return;
      pollfd p{output_, POLLIN, 0};
      poll(&p, 1, static_cast<int>(left.count()));
      continue;
    }
    close(output_);  // end of file, or an error
    output_ = -1;
  }
}

std::string Child::OutputTail() const { return Tail(output_tail_, kOutputTail); }

}  // namespace flow::lambda::node

namespace flow::lambda {

Result<std::string> FindNpmTool(const std::string& name, const std::string& env,
                                const std::string& purpose) {
  namespace fs = std::filesystem;
  if (const char* value = std::getenv(env.c_str()); value && value[0]) {
    if (node::IsExecutable(value)) return std::string(value);
    return Error::Env(fmt::format("{} names {}, which is not an executable", env, value));
  }
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  std::string installed = "lib/flowctl/node_modules beside the executable";
  if (!ec) {
    fs::path dir = exe.parent_path();
    installed = (dir.parent_path() / "lib/flowctl/node_modules").string();
    for (const fs::path& modules : {fs::path(installed), dir.parent_path() / ".deps/npm-runtime/node_modules",
                                    dir / ".deps/npm-runtime/node_modules"}) {
      std::string candidate = (modules / ".bin" / name).string();
      if (node::IsExecutable(candidate)) return candidate;
    }
  }
  if (auto found = node::FindProgram(name)) return *found;
  return Error::Env(fmt::format(
      "{}, which {}, is not installed: it was looked for in {} (where an install puts it), "
      "beside the build tree, and on PATH; reinstall flowctl, or in a source checkout run "
      "scripts/setup.sh (it installs {} into .deps/npm-runtime), or set {} to the {} program",
      name, purpose, installed, name, env, name));
}

}  // namespace flow::lambda
