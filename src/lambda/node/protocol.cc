#include "lambda/node/protocol.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/writer.h>

#include "doc/parse.h"
#include "doc/value.h"

namespace flow::lambda::node {
namespace {

constexpr int kSocketBuffer = 1 << 20;    // bytes; the kernel may cap it (wmem_max)
constexpr size_t kReadChunk = 256 << 10;  // bytes asked of each recv

}  // namespace

std::string EncodeConfig(const WorkerConfig& config) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("module");
  w.String(config.module.c_str());
  w.Key("source");
  w.String(config.source.c_str());
  w.Key("count");
  w.Uint64(config.count);
  w.Key("bootstraps");
  w.StartArray();
  for (size_t i : config.bootstraps) w.Uint64(i);
  w.EndArray();
  w.Key("depsDir");
  w.String(config.deps_dir.c_str());
  w.Key("deps");
  w.StartArray();
  for (const auto& [package, global] : config.deps) {
    w.StartArray();
    w.String(package.c_str());
    w.String(global.c_str());
    w.EndArray();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::optional<WorkerError> ParseWorkerError(std::string_view payload) {
  rapidjson::Document d;
  doc::ParseError pe;
  if (!doc::ParseTerminatedDocument(payload, &d, &pe, {kMaxFrame, 8}) || !d.IsObject()) {
    return std::nullopt;
  }
  auto num = [&](const char* k) -> int64_t {
    auto it = d.FindMember(k);
    return it != d.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : 0;
  };
  WorkerError e;
  e.row = num("row");
  e.line = num("line");
  e.column = num("column");
  if (auto it = d.FindMember("kind"); it != d.MemberEnd() && it->value.IsString()) {
    e.kind = it->value.GetString();
  }
  if (auto it = d.FindMember("message"); it != d.MemberEnd() && it->value.IsString()) {
    e.message = it->value.GetString();
  }
  return e;
}

Decoded DecodeOutputs(std::string_view payload, size_t count, size_t first, doc::Allocator& alloc,
                      Outputs* out, std::string* parse_error) {
  // Outputs are at depth 2 (the array of rows, each an array of documents).
  rapidjson::Document d(&alloc);
  doc::ParseError pe;
  if (!doc::ParseTerminatedDocument(payload, &d, &pe, {kMaxFrame, 256 + 2})) {
    *parse_error = pe.message;
    return Decoded::kNotJson;
  }
  if (!d.IsArray() || d.Size() != count) return Decoded::kMismatch;
  for (size_t i = 0; i < count; ++i) {
    doc::Value& docs = d[static_cast<rapidjson::SizeType>(i)];
    if (!docs.IsArray()) return Decoded::kMismatch;
    auto& o = (*out)[first + i];
    o.reserve(docs.Size());
    for (auto& v : docs.GetArray()) o.push_back(std::move(v));
  }
  return Decoded::kOk;
}

// ---- Connection ----------------------------------------------------------------------

Result<bool> Connection::Open(int* theirs) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return Error::Env(fmt::format("socketpair: {}", std::strerror(errno)));
  }
  for (int fd : {sv[0], sv[1]}) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSocketBuffer, sizeof kSocketBuffer);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kSocketBuffer, sizeof kSocketBuffer);
  }
  socket_ = sv[0];
  fcntl(socket_, F_SETFL, fcntl(socket_, F_GETFL) | O_NONBLOCK);
  *theirs = sv[1];
  return true;
}

void Connection::Close() {
  if (socket_ >= 0) close(socket_);
  socket_ = -1;
}

void Connection::Reset() {
  sending_.Clear();
  sent_ = 0;
  received_start_ = received_size_ = 0;
}

size_t Connection::AppendRequest(uint32_t index, size_t arity, const NextRow& next,
                                 bool* too_large) {
  *too_large = false;
  // A frame: u32 length, u32 lambda index, then the rows as JSON.
  size_t at = sending_.GetSize();
  sending_.Push(8);
  auto put = [&](std::string_view text) {
    std::memcpy(sending_.Push(text.size()), text.data(), text.size());
  };
  // The array of rows is framed here; a value the caller has no text of is written by a
  // Writer reset for it (a text is copied whole: Writer::RawValue copies byte by byte).
  rapidjson::Writer<rapidjson::StringBuffer> writer;
  auto write = [&](const doc::Value* v) {
    if (!v) return put("null");
    writer.Reset(sending_);
    v->Accept(writer);
  };
  size_t start = sending_.GetSize();
  size_t count = 0;
  Row row;
  put("[");
  while (sending_.GetSize() - start < kChunkBytes && next(&row)) {
    put(count++ == 0 ? "[" : ",[");
    if (arity > 0) {
      // The text the source was parsed from: JSON.parse sees the same value.
      if (!row.source_json.empty()) {
        put(row.source_json);
      } else {
        write(row.source);
      }
    }
    if (arity > 1) {
      put(",");
      write(row.register_value);
    }
    if (arity > 2) {
      put(",");
      write(row.previous);
    }
    put("]");
  }
  put("]");
  size_t frame = sending_.GetSize() - at;
  if (count == 0 || frame - 4 > kMaxFrame) {
    sending_.Pop(frame);
    *too_large = count > 0;
    return 0;
  }
  uint32_t len = static_cast<uint32_t>(frame - 4);
  char* header = const_cast<char*>(sending_.GetString()) + at;
  std::memcpy(header, &len, 4);
  std::memcpy(header + 4, &index, 4);
  return count;
}

Connection::Io Connection::Transfer() {
  bool moved = false;
  while (sent_ < sending_.GetSize()) {
    ssize_t n = send(socket_, sending_.GetString() + sent_, sending_.GetSize() - sent_,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent_ += static_cast<size_t>(n);
      moved = true;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      return Io::kBroken;
    }
  }
  if (sent_ == sending_.GetSize()) {
    sending_.Clear();
    sent_ = 0;
  }
  bool bad = false;
  if (FrameReady(&bad) || bad) return moved ? Io::kMoved : Io::kIdle;
  // What is left is the start of a frame: move it to the front of the buffer.
  if (received_start_ > 0) {
    std::memmove(received_.data(), received_.data() + received_start_,
                 received_size_ - received_start_);
    received_size_ -= received_start_;
    received_start_ = 0;
  }
  for (;;) {
    // Room for a whole frame once its length is known, so it arrives in few reads.
    size_t want = kReadChunk;
    if (received_size_ >= 4) {
      uint32_t len;
      std::memcpy(&len, received_.data(), 4);
      if (len <= kMaxFrame && size_t{len} + 4 > received_size_) {
        want = std::max(want, size_t{len} + 4 - received_size_);
      }
    }
    if (received_.size() < received_size_ + want + 1) received_.resize(received_size_ + want + 1);
    ssize_t n = recv(socket_, received_.data() + received_size_, want, MSG_DONTWAIT);
    if (n > 0) {
      received_size_ += static_cast<size_t>(n);
      moved = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return Io::kBroken;
  }
  return moved ? Io::kMoved : Io::kIdle;
}

size_t Connection::FrameReady(bool* bad) const {
  size_t have = received_size_ - received_start_;
  if (have < 5) return 0;
  uint32_t len;
  std::memcpy(&len, received_.data() + received_start_, 4);
  if (len == 0 || len > kMaxFrame) {
    *bad = true;
    return 0;
  }
  return have >= size_t{len} + 4 ? size_t{len} + 4 : 0;
}

std::string_view Connection::Payload(size_t size, char* saved) {
  char* frame = received_.data() + received_start_;
  *saved = frame[size];
  frame[size] = '\0';
  return std::string_view(frame + 5, size - 5);
}

}  // namespace flow::lambda::node
