// Reading a collection's committed documents (`flowctl read`): its journals in a data
// directory, optionally only those of some partitions, in commit order as they are stored,
// or fully reduced by key. Reading needs no lock: it sees only committed documents while
// another process writes. The caller prints; documents come back through a sink.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "runtime/collection.h"
#include "runtime/source_reader.h"

namespace flow::runtime {

class CollectionReader {
 public:
  // Receives each document as one JSON line (without its '\n'); an error stops the reading.
  using Sink = std::function<Result<bool>(std::string_view line)>;

  // A reader of `collection` in the data directory `dir`, of the journals whose partition
  // field has each value of `partitions` (`field=value` selectors, as `read --partition`
  // takes them). User errors: a selector without `=`, a field that is not a partition field
  // of the collection (with a "did you mean" hint), a directory that does not exist.
  static Result<std::unique_ptr<CollectionReader>> Open(const std::string& dir,
                                                        std::shared_ptr<const Collection> collection,
                                                        const std::vector<std::string>& partitions);

  // Sends every document committed since the last call (all of them at the first) to `sink`,
  // in commit order across journals. Journals created since are read too.
  Result<bool> Poll(const Sink& sink);

  // Reads everything committed, combines it by key (spilling past `memory_budget` bytes) and
  // sends one fully reduced document per key to `sink`, in key order. Parsing and combining
  // run on `threads` threads; the output is the same for any number.
  Result<bool> Reduced(uint64_t memory_budget, const Sink& sink, unsigned threads = 1);

  ~CollectionReader();

 private:
  CollectionReader(std::string dir, std::shared_ptr<const Collection> collection,
                   std::vector<std::string> segments);
  // Reads the ledger, adds the selected journals not read yet and advances to the heads.
  Result<bool> Refresh();

  std::string dir_;
  std::shared_ptr<const Collection> collection_;
  std::vector<std::string> segments_;  // `/field=<encoded value>/` each selected journal has
  SourceReader reader_;
  std::set<std::string> journals_;
  bool first_refresh_ = true;
};

}  // namespace flow::runtime
