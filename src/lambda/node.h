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
// (module.h), type-checking with tsc (typecheck.cc), npm (npm.h) and the cache's names
// (cache.h); this file's node.cc ties them together.
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
  // For type-checking (TypeCheckNodeLambdas): the TypeScript types of `source`, of
  // `register` and `previous`, and of the documents returned (the lambda returns an array of
  // them), as names of the declarations given there (`flow.ShopOrders`); empty: `any`.
  std::string source_type = {}, register_type = {}, output_type = {};
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
  // The TypeScript compiler (its `tsc` script, which `node` runs); empty: FindTsc().
  std::string tsc;
  // Where the worker's stdout and stderr (a lambda's console.log) go: a descriptor of this
  // process (`flowctl preview`: 2, its stderr); -1: captured, their end kept for messages.
  int output_fd = -1;
};

// $XDG_CACHE_HOME/flowctl, else $HOME/.cache/flowctl, else /tmp/flowctl-cache-<uid>.
std::string DefaultNodeCacheDir();

// A program of an npm package flowctl runs, `name` (the name of its .bin entry): $`env` if
// set (which must be executable); else node_modules/.bin/<name> beside the running
// executable: ../lib/flowctl/node_modules (an install tree, packaging/CMakeLists.txt), else
// .deps/npm-runtime/node_modules (where scripts/setup.sh installs the pinned packages,
// scripts/npm/runtime) under the executable's directory's parent or the directory itself
// (a build tree); else `name` on PATH. Never a path of the source or build tree. Not found:
// an environment error saying what the program is for (`purpose`: "transpiles the
// TypeScript of nodeJS lambdas") and how to install it.
Result<std::string> FindNpmTool(const std::string& name, const std::string& env,
                                const std::string& purpose);

// FindNpmTool("esbuild", "FLOWCTL_ESBUILD", ...): the transpiler of nodeJS lambdas.
Result<std::string> FindEsbuild();

// FindNpmTool("tsc", "FLOWCTL_TSC", ...): the TypeScript compiler's `tsc` script (run by
// `node`), which type-checks nodeJS lambdas.
Result<std::string> FindTsc();

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

// A type error tsc found in a lambda.
struct NodeTypeError {
  size_t lambda = 0;              // its index in the lambdas
  uint32_t line = 0, column = 0;  // within the lambda's body, 1-based (column in UTF-16 units)
  size_t offset = 0;              // the byte of the body it points at
  std::string message;            // tsc's ("Property 'amont' does not exist on type ...")
};

struct NodeTypeCheck {
  std::vector<NodeTypeError> errors;  // in the order of the lambdas
  bool cached = false;  // the result of an earlier check of the same text: tsc did not run
};

// Type-checks `lambdas` with the TypeScript compiler, in one run: a module `lambdas.ts`
// holding them as functions of typed parameters (their source_type, register_type and
// output_type, which name types of `declarations`, a TypeScript module imported as `flow`)
// beside `declarations` as `flow.d.ts`, under <cache_dir>/node/typecheck/<hash of
// `project`> (the catalog's root, so that tsc's incremental build information is reused
// from one build of a catalog to the next). The check is lenient where JavaScript is (no
// `strict`: `null` and implicit `any` pass) and strict about what the declarations say: a
// property that an object type does not declare, a wrong type. The result of a text checked
// before is reused without running tsc. Errors outside every body (in the declarations,
// which would be flowctl's fault) are internal errors; `node` or tsc missing or failing
// otherwise are environment errors.
Result<NodeTypeCheck> TypeCheckNodeLambdas(const std::vector<NodeLambdaSpec>& lambdas,
                                           const std::string& declarations,
                                           const std::string& project, const NodeOptions& options);

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
