// The protocol between flowctl and its Node.js worker (worker.js), on fd 3 of the worker, a
// Unix socket (its stdout and stderr are captured, so console.log in a lambda cannot corrupt
// it; stdin is /dev/null). Integers are little-endian:
//   request:  u32 n, u32 lambda index, n-4 bytes of JSON: an array of rows, each
//             `[source]`, `[source, register]` or `[source, register, previous]` (update
//             lambdas get the first; a publish lambda the shortest holding what its body
//             names; the worker passes null for what is missing).
//   response: u32 n, u8 status, n-1 bytes of JSON. Status 0: an array holding one array of
//             output documents per row. Status 1: an error, {"row": i, "kind": "threw" |
//             "notArray" | "unserializable" | "load", "message": ..., "line": l, "column": c}
//             (line and column, 1-based, in the TypeScript module, 0 when unknown).
// The worker's configuration is its argv[1] (WorkerConfig). After start, it sends one
// response: status 0 `{"node": version}` when the module and the dependencies loaded, or a
// status 1 error of kind "load". Responses come in request order; the worker exits at the
// end of its input. A Connection is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <rapidjson/stringbuffer.h>

#include "base/result.h"
#include "lambda/lambda.h"

namespace flow::lambda::node {

// The script of the worker, worker.js, embedded at build time (NUL-terminated).
extern const char kWorkerScript[];

constexpr uint32_t kMaxFrame = uint32_t{1} << 30;  // bytes: one batch's outputs, not one document
// A batch goes to the worker in requests of about this much JSON (rows), a few ahead of the
// responses. Small enough that V8 parses each request's text outside its large-object space
// (over 4x faster per row than one text of a 4096-row batch), large enough to amortize the
// system calls (one 64 KiB frame ~ 150 rows of 400 bytes; 128 KiB was slower, 32 KiB no faster).
constexpr size_t kChunkBytes = 64 << 10;
// Requests sent and not answered, at most: enough that the worker always has the next one
// while flowctl reads the answers (1 MiB of requests; 16 ran the benchmark's lambda 20%
// faster than 3 on 2 cores, bench/derive_bench.sh).
constexpr size_t kInFlight = 16;

// What the worker loads: its argv[1], as JSON.
struct WorkerConfig {
  std::string module;              // the transpiled module's path
  std::string source;              // its TypeScript file's name in stack traces
  size_t count = 0;                // lambdas in the module
  std::vector<size_t> bootstraps;  // indexes of the bootstrap lambdas
  std::string deps_dir;            // the npm install; empty without dependencies
  std::vector<std::pair<std::string, std::string>> deps;  // package, global name
};
std::string EncodeConfig(const WorkerConfig& config);

// A status 1 response. Fields of the wrong type read as 0 or empty.
struct WorkerError {
  int64_t row = 0;  // within the request; -1 for none
  std::string kind;
  std::optional<std::string> message;  // none when the worker sent no string
  int64_t line = 0, column = 0;
};
// Parses the JSON of a status 1 response; nullopt when it is not a JSON object.
// Precondition: payload[payload.size()] is readable and NUL (see Connection::Payload).
std::optional<WorkerError> ParseWorkerError(std::string_view payload);

// Moves the documents of a status 0 response to a request of `count` rows into
// (*out)[first, first + count), parsed with `alloc`. kNotJson: the payload is not JSON that
// flowctl accepts (the parser's message in *parse_error). kMismatch: it is not one array per
// row (rows before the first that is not an array are moved already). Precondition as
// ParseWorkerError's.
enum class Decoded { kOk, kNotJson, kMismatch };
Decoded DecodeOutputs(std::string_view payload, size_t count, size_t first, doc::Allocator& alloc,
                      Outputs* out, std::string* parse_error);

// flowctl's end of the socket: request frames are appended, then sent as the socket takes
// them; responses arrive into a buffer and are taken frame by frame from its front.
class Connection {
 public:
  Connection() = default;
  ~Connection() { Close(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Creates the socket pair: this end (non-blocking) and the worker's, returned in *theirs
  // for the caller to pass as the worker's fd 3 and then close. Precondition: closed.
  Result<bool> Open(int* theirs);
  void Close();
  int fd() const { return socket_; }

  // Forgets requests not sent and responses not taken (the worker was killed).
  void Reset();

  // Appends a request for lambda `index` of the rows `next` gives, as many as fit in about
  // kChunkBytes of JSON (at least one), each with `arity` of (source, register, previous)
  // (a row is written before `next` is called again). Returns how many rows it holds: 0
  // when `next` gave none (nothing is appended). Sets `*too_large` (nothing appended, the
  // rows taken are lost) when the frame would exceed kMaxFrame.
  size_t AppendRequest(uint32_t index, size_t arity, const NextRow& next, bool* too_large);
  // Whether appended requests wait to be sent.
  bool WantsWrite() const { return sent_ < sending_.GetSize(); }

  enum class Io { kIdle, kMoved, kBroken };
  // Sends what the socket takes, then (unless a response is complete already) receives what
  // has arrived, without blocking. kBroken: the socket failed or the worker closed it.
  Io Transfer();

  // The size of the complete response frame at the front, or 0 when it has not fully
  // arrived. A malformed length sets `*bad`.
  size_t FrameReady(bool* bad) const;
  // The status byte of the frame at the front.
  uint8_t Status() const { return static_cast<uint8_t>(received_[received_start_ + 4]); }
  // The JSON of the frame of `size` bytes at the front, NUL-terminated for parsing in place
  // (the byte after it, saved in `*saved`, is put back by Restore).
  std::string_view Payload(size_t size, char* saved);
  void Restore(size_t size, char saved) { received_[received_start_ + size] = saved; }
  // Drops the frame of `size` bytes at the front.
  void ConsumeFrame(size_t size) { received_start_ += size; }

 private:
  int socket_ = -1;
  rapidjson::StringBuffer sending_;  // request frames; [sent_, size) is not sent yet
  size_t sent_ = 0;
  std::string received_;  // [received_start_, received_size_) arrived and is not taken yet
  size_t received_start_ = 0, received_size_ = 0;
};

}  // namespace flow::lambda::node
