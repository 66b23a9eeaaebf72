// The TypeScript module of a worker's nodeJS lambdas and its transpilation by esbuild (the
// only file that runs esbuild). Element i of the module's exported array is lambda i; errors
// in the module (esbuild's, or a stack frame the worker reports) are mapped back to the
// lambda and the line of its body. Transpiled modules are cached by content and esbuild
// version. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "lambda/node.h"

namespace flow::lambda::node {

// How messages name a lambda: "lambda of transform `t` of derivation `d` (publish)",
// "bootstrap lambda 2 of derivation `d`" (no derivation when the spec names none).
std::string Label(const NodeLambdaSpec& l);

// How many of (source, register, previous) the rows of lambda `l` carry: 0 for a bootstrap,
// 1 for an update; a publish body that never names `register` or `previous` (nor `eval`,
// which could) is sent the source only, sparing the serialization and parsing of registers
// it would not look at. Within a string or a comment the name still counts: conservative.
size_t Arity(const NodeLambdaSpec& l);

struct Module {
  std::string text;
  std::vector<uint32_t> first_line;  // of each body, 1-based
  std::vector<uint32_t> line_count;  // of each body
};

// The module of `lambdas`, in order, after `prelude` (whole lines: imports and
// declarations). A lambda's parameters and result have the types its spec names (`any`
// where it names none).
Module Generate(const std::vector<NodeLambdaSpec>& lambdas, const std::string& prelude = "");

// The body holding 1-based `line` of the module: the last body starting at or before it
// (a line after that body's end means the body closed its function early). -1 before all.
int BodyOf(const Module& m, uint32_t line);

// "at line 2, column 5 of its body: `text`" for a position of the module within body `i` of
// `lambdas` (the module's lambdas); the text of the line only when `quote`.
std::string BodyPosition(const Module& m, const std::vector<NodeLambdaSpec>& lambdas, size_t i,
                         uint32_t line, uint32_t column, bool quote);

// The esbuild binary of `options`, else FindEsbuild(); not executable: an environment error.
Result<std::string> EsbuildOf(const NodeOptions& options);

// Transpiles module `m` of `lambdas` with `esbuild` into <cache_dir>/node/modules/<key>.js
// (kept beside <key>.ts, its source), unless it is already there. Returns the .js path and
// sets `*ts_name` to "<key>.ts", the module's name in stack traces. A syntax error is a user
// error naming the lambda and the line of its body; esbuild failing otherwise is an
// environment error with its output.
Result<std::string> Transpile(const Module& m, const std::vector<NodeLambdaSpec>& lambdas,
                              const std::string& esbuild, const std::string& cache_dir,
                              std::string* ts_name);

}  // namespace flow::lambda::node
