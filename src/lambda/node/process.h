// Process control for the Node.js lambdas, the one place that forks: tools run to completion
// (esbuild, npm) and the worker as a long-lived Child. Every child has stdin on /dev/null,
// stdout and stderr captured, a process group of its own (a terminal's Ctrl-C is flowctl's
// to handle), default signal dispositions and mask, and is SIGKILLed by the kernel when
// flowctl dies (PR_SET_PDEATHSIG), so it never outlives flowctl. The free functions are
// thread-safe; a Child is used by one thread at a time.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace flow::lambda::node {

// Whether `path` names an executable file (not a directory).
bool IsExecutable(const std::string& path);

// `name` itself when it holds a `/`, else its first executable match on PATH.
std::optional<std::string> FindProgram(const std::string& name);

// "exit status 2", "killed by signal 9 (Killed)": a wait status for messages.
std::string ExitDescription(int status);

// The end of `s` in at most `max` bytes (cut on a UTF-8 boundary, "…" prepended when cut),
// without trailing newlines and spaces: the part of a process's output worth a message.
std::string Tail(std::string_view s, size_t max);

// The environment of this process with `name` set to `value` (when `name` is not empty).
std::vector<std::string> ChildEnv(const std::string& name, const std::string& value);

// A tool's wait status and its stdout and stderr, merged (the last 64 KiB).
struct ToolRun {
  int status = 0;
  std::string output;
};

// Runs `path` with `args` in this process's environment to completion. Failing to start it
// is an environment error ("cannot run <path>: ..."); its exit status is the caller's to judge.
Result<ToolRun> RunTool(const std::string& path, const std::vector<std::string>& args);

// A long-lived child process whose output (stdout and stderr) is read without blocking and
// whose last 4 KiB are kept for messages. Destroying a Child kills it.
class Child {
 public:
  Child() = default;
  ~Child() { Kill(); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // Starts `path` with `args` and `env`, its output on a pipe, and `channel` (a descriptor
  // the caller keeps and may close afterwards) as its fd 3. The kernel sends SIGKILL on the
  // death of the *thread* calling Start: call it from a thread that outlives the child (the
  // main thread of every command). Precondition: not running. With `output_to` (a
  // descriptor, e.g. 2), its output goes there instead of a pipe, and nothing is kept.
  Result<bool> Start(const std::string& path, const std::vector<std::string>& args,
                     const std::vector<std::string>& env, int channel, int output_to = -1);

  // The process id; -1 when not running (never started, killed or reaped).
  pid_t pid() const { return pid_; }

  // SIGKILLs the child and its process group (what it started too), reaps it and closes its
  // output. The kept output stays until ClearOutput.
  void Kill();

  // Waits up to a second for the child (which is running) to exit by itself, else SIGKILLs
  // it; reaps it. Returns its wait status, or nullopt when it had to be killed. Its output
  // stays open for DrainOutput.
  std::optional<int> Reap();

  // The read end of the output pipe (non-blocking, for poll), or -1 once it is closed.
  int output_fd() const { return output_; }

  // Reads what the child printed: what is there now, or until end of file (which closes the
  // pipe) when `until_eof`, for at most a second.
  void DrainOutput(bool until_eof);

  // The last 4 KiB of the child's output (see Tail).
  std::string OutputTail() const;
  void ClearOutput() { output_tail_.clear(); }

 private:
  pid_t pid_ = -1;
  int output_ = -1;
  std::string output_tail_;  // at most 8 KiB, cut to 4 KiB when it grows past that
};

}  // namespace flow::lambda::node
