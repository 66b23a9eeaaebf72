// Node.js lambdas (SPEC 4.1): the TypeScript bodies of one derivation become one module,
// transpiled by esbuild (cached by content) and run by one long-lived `node` worker process
// that receives batches of rows over a socket. nodeDependencies are installed with npm into
// a cache keyed by the dependency set. A NodeWorker and the Lambdas it hands out may be used
// from several threads: invocations of one worker are serialized.
//
// The worker talks to flowctl over a Unix socket (its stdout and stderr are captured, so
// console.log in a lambda cannot corrupt it). One Invoke sends its rows as requests of about
// 64 KiB of JSON each, a few ahead of the responses, which come in order. The worker exits at
// the end of its input, is in a process group of its own, and is SIGKILLed by the kernel when
// flowctl dies (PR_SET_PDEATHSIG), so it never outlives flowctl.
//
// The parts live in lambda/node/: the worker's script (worker.js, embedded at build time)
// and its protocol (protocol.h), process control (process.h), the module and esbuild
// (module.h), npm (npm.h) and the cache's names (cache.h); this file's node.cc ties them
// together.
//
// Timeouts: each response must arrive within the lambda's timeout of the previous one (or of
// the invocation's start), so the timeout bounds one chunk of rows (about 64 KiB of JSON:
// one to a few hundred documents), not a whole batch. A worker that misses it, or that is
// busy when lambda::RequestStop is called, is killed; the next invocation starts a new one.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "lambda/lambda.h"

namespace flow::lambda {

struct NodeLambdaSpec {
  std::string id;         // unique within a worker, e.g. "fromOrders/publish"
  std::string transform;  // the transform's name, for messages
  bool publish = false;   // a publish lambda (source, register, previous) or an update (source)
  std::string body;       // the TypeScript function body
  std::string derivation;  // for messages when one module holds several derivations' lambdas
  // A bootstrap lambda: its 1-based position in the derivation's `bootstrap` list (0: an
  // update or publish lambda). Its body takes no arguments and may `await` (the worker
  // waits for it); it is invoked with one row of no documents, its result is ignored, and
  // its output is one empty array of documents.
  int bootstrap = 0;
  // How long the worker may take to answer one chunk of rows (see below), or to finish a
  // bootstrap.
  std::chrono::milliseconds timeout = kDefaultTimeout;
};

struct NodeOptions {
  // Transpiled modules (node/modules/<hash>.{ts,js}) and npm installs
  // (node/deps/<hash>/node_modules) are kept here. Empty: DefaultNodeCacheDir().
  std::string cache_dir;
  // nodeDependencies: npm package name -> version (range).
  std::map<std::string, std::string> dependencies;
  // The Node.js and npm binaries: a path, or a name looked up on PATH.
  std::string node = "node";
  std::string npm = "npm";
  // The esbuild binary; empty: FindEsbuild().
  std::string esbuild;
};

// $XDG_CACHE_HOME/flowctl, else $HOME/.cache/flowctl, else /tmp/flowctl-cache-<uid>.
std::string DefaultNodeCacheDir();

// The esbuild binary: $FLOWCTL_ESBUILD if set; else .deps/npm-runtime/node_modules/.bin/esbuild
// (where scripts/setup.sh installs it) under the running executable's directory's parent or
// the directory itself; else `esbuild` on PATH. Not found: an environment error telling to
// run scripts/setup.sh.
Result<std::string> FindEsbuild();

// The global under which a dependency is exposed to lambdas: the package name without its
// npm scope, every character other than [A-Za-z0-9_$] replaced by `_`, and `_` prepended when
// it starts with a digit: `moment` -> `moment`, `lodash.chunk` -> `lodash_chunk`,
// `@scope/x-y` -> `x_y`. A name that is already a global (`process`, `crypto`, ... or that of
// an earlier dependency) is not redefined; `require` reaches every dependency.
std::string NodeGlobalName(std::string_view package);

// Transpiles the module of `lambdas` and installs `options.dependencies` (both cached, as
// Start does) without starting Node.js: what `flowctl build` does so that TypeScript errors
// and unavailable packages are reported when the catalog is built. Errors as Start's.
Result<bool> PrepareNodeLambdas(const std::vector<NodeLambdaSpec>& lambdas, const NodeOptions& options);

class NodeWorker : public std::enable_shared_from_this<NodeWorker> {
 public:
  // Installs the dependencies (once per dependency set; npm failing or missing is an
  // environment error with npm's output), generates and transpiles the module of `lambdas`
  // (once per module text and esbuild version; a TypeScript syntax error is a user error
  // naming the transform and the line within its body), and starts `node` and waits until
  // it has loaded the module. `node` or esbuild missing are environment errors; a
  // dependency that fails to load is a user error.
  static Result<std::shared_ptr<NodeWorker>> Start(const std::vector<NodeLambdaSpec>& lambdas,
                                                   const NodeOptions& options);

  // A Lambda invoking lambda `id` in this worker, which it keeps alive; null for an unknown
  // id. Invoke errors: the lambda throwing ("lambda of transform `t` (publish) threw: ..."),
  // returning something other than an array, or outputs that are not JSON (an undefined
  // element, a BigInt, a cycle) are user errors for the row; the worker dying is an
  // environment error with the end of its output, and so is every later invocation.
  // Outputs follow JSON.stringify within documents (NaN and Infinity become null, undefined
  // properties are dropped); numbers are JavaScript's (integers beyond 2^53 lose precision
  // on the way in). Update and publish lambdas are synchronous; one that does not return
  // within its timeout (or a bootstrap whose promise does not settle in time) is a user
  // error for the first row of the chunk it was running ("did not return within 2 s"), and
  // its worker is killed and started again by the next invocation. A stop request
  // (lambda::RequestStop) kills a busy worker too, and is an environment error.
  std::unique_ptr<Lambda> Get(const std::string& id);

  // The worker's process id (tests kill it).
  pid_t pid() const;

  // Kills the worker (it has no state worth a graceful stop) and reaps it.
  ~NodeWorker();

  NodeWorker(const NodeWorker&) = delete;
  NodeWorker& operator=(const NodeWorker&) = delete;

 private:
  struct Impl;
  friend class NodeLambda;
  explicit NodeWorker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace flow::lambda
