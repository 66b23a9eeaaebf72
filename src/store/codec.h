// Fragment codecs (gzip, zstd, none) as streams, and the SHA-1 of fragment content. The
// only users of zlib, libzstd and OpenSSL. A compressed fragment is one complete stream:
// any tool (gzip -d, zstd -d, DuckDB) decompresses it alone.
#pragma once

#include <memory>
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
