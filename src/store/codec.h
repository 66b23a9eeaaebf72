// Fragment codecs (gzip, zstd, none) as streams, and the SHA-1 of fragment content. The
// only users of zlib, libdeflate, libzstd and OpenSSL. A compressed fragment is complete in
// itself: any tool (gzip -d, zstd -d, DuckDB) decompresses it alone. A gzip fragment is a
// series of gzip members (each compressed whole by libdeflate), which such tools read as one
// stream; fragments of one member, as earlier versions wrote, read the same.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/io.h"
#include "base/result.h"
#include "store/naming.h"

namespace flow::store {

// Compresses bytes into `out` (not owned; it must outlive the encoder).
class Encoder {
 public:
  virtual ~Encoder() = default;
  virtual Result<bool> Write(std::string_view raw) = 0;
  // Ends the stream and writes what is buffered.
  virtual Result<bool> Finish() = 0;
  static std::unique_ptr<Encoder> Make(Codec codec, io::File* out);
};

// Decompresses a fragment file, block by block.
class Decoder {
 public:
  virtual ~Decoder() = default;
  // Replaces `out` with the next uncompressed bytes; empty at the end of the stream.
  // A corrupt or truncated stream is an error naming the file.
  virtual Result<bool> Read(std::string* out) = 0;
  static std::unique_ptr<Decoder> Make(Codec codec, io::File file);
};

// Decompresses an input pulled through `source` (a file, a pipe, stdin): gzip of any number
// of members (pigz, bgzip, `cat a.gz b.gz`) or zstd of any number of frames, as `gzip -d`
// and `zstd -d` read them. For inputs (`ingest`, `combine`), not fragments.
class StreamDecoder {
 public:
  // Like read(2): bytes read into `buf`, 0 at the end, -1 with errno set on an error.
  using Source = std::function<ssize_t(char* buf, size_t n)>;
  virtual ~StreamDecoder() = default;
  // Up to `n` uncompressed bytes into `buf`; 0 at the end of the input. A corrupt or
  // truncated stream is a user error saying why; a failed read, an environment error.
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
  static std::unique_ptr<StreamDecoder> Make(Codec codec, Source source);
};

// The codec whose magic number `head` (an input's first bytes) starts with: gzip (1f 8b)
// or zstd (28 b5 2f fd); nullopt for anything else (JSON and CSV never start so).
std::optional<Codec> SniffCodec(std::string_view head);

// Incremental SHA-1, hex digest.
class Sha1 {
 public:
  Sha1();
  ~Sha1();
  void Update(std::string_view data);
  std::string HexDigest();  // ends the computation

 private:
  void* ctx_;
};

}  // namespace flow::store
