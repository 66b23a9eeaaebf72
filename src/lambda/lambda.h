// Lambdas (SPEC 4.1) behind one interface: an update or publish function of a transform,
// invoked on batches of rows. Implementations: SQLite (in-process, sqlite.h), remote HTTP
// (remote.h) and Node.js (a long-lived worker per derivation, node.h). A lambda object is
// used by one thread. Every invocation is bounded by a timeout and by a process-wide stop
// request (RequestStop), so that no lambda can hold flowctl (SPEC 9).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "doc/pointer.h"
#include "doc/value.h"

namespace flow::lambda {

// One invocation. Update lambdas see `source` only (the others are null); publish lambdas
// see `source`, `register` (after this document's updates) and `previous` (before them).
struct Row {
  const doc::Value* source = nullptr;
  const doc::Value* register_value = nullptr;
  const doc::Value* previous = nullptr;
  // The JSON text `*source` was parsed from, when the caller has it (empty: none). A lambda
  // that sends its rows as JSON (Node.js) copies it instead of serialising `*source` again.
  std::string_view source_json;
};

// The documents a lambda returned for each row of a batch, in row order, built with the
// allocator passed to Invoke.
using Outputs = std::vector<std::vector<doc::Value>>;

// The callbacks of Lambda::Stream.
using NextRow = std::function<bool(Row*)>;
using TakeOutputs = std::function<Result<bool>(size_t row, std::vector<doc::Value>& docs)>;

class Lambda {
 public:
  virtual ~Lambda() = default;

  // Invokes the lambda once per row and appends to `out` (cleared first) one entry per row.
  // Failures are user errors carrying the lambda's own message: an exception, a return
  // value that is not an array, an HTTP status, malformed output. `*failed_row` (when not
  // null) is set to the index of the row that failed, or -1 when unknown (e.g. a whole
  // batch failed). Environment problems (Node.js missing, a worker that died, a connection
  // refused) are environment errors.
  virtual Result<bool> Invoke(const std::vector<Row>& rows, doc::Allocator& alloc, Outputs* out,
                              int* failed_row = nullptr) = 0;

  // What the lambda reads of each row. A caller may leave out what it does not read
  // (`source` when it has `source_json`, `register_value`, `previous`: null instead).
  struct Reads {
    bool source_value = true;    // `*source`; false: `source_json` is enough
    bool register_value = true;  // `register_value`
    bool previous = true;        // `previous`
    bool streams = false;        // Stream is implemented (else it is an internal error)
  };
  virtual Reads reads() const { return {}; }

  // A streaming invocation, for a caller that reads its rows as the lambda takes them and
  // handles outputs as they come, so that both sides work at once. `next` gives the next
  // row (false: no more), which needs to stay valid only until the next call of `next`;
  // `take(i, docs)` receives the outputs of row i (0-based, in order, built with `alloc`)
  // and may fail, which ends the invocation with its error (rows already taken by `next`
  // are then not all answered). Errors and `*failed_row` as Invoke's; a failure of `take`
  // is returned as is. Only when reads().streams.
  virtual Result<bool> Stream(const NextRow& next, doc::Allocator& alloc, const TakeOutputs& take,
                              int* failed_row = nullptr);
};

// How long a lambda may work on one invocation unless its catalog says otherwise
// (`lambdaTimeout`). What one invocation is depends on the kind: see docs/derivations.md.
constexpr std::chrono::milliseconds kDefaultTimeout{30000};

// Asks every running and later invocation to give up soon (within about 100 ms, a second for
// remote lambdas): they return an environment error saying flowctl is stopping, and nodeJS
// workers are killed. Async-signal-safe: commands call it from their SIGINT/SIGTERM handlers.
void RequestStop();
bool StopRequested();
// Withdraws a stop request (tests).
void ResetStop();

// "2 s", "1.5 s", "2 min" for messages.
std::string DescribeTimeout(std::chrono::milliseconds timeout);

// The error of an invocation cut short by RequestStop.
Error StoppedError();

// A projection of the source collection: `$<field>` parameters of SQLite lambdas.
struct SourceField {
  std::string field;
  doc::Pointer pointer;
};

}  // namespace flow::lambda
