// Materialization transactions: how much one transaction reads (runtime::TransactionBounds).
#include <doctest/doctest.h>

#include "runtime/materialize.h"

namespace flow::runtime {
namespace {

using std::chrono::milliseconds;
constexpr size_t kWindow = TransactionBounds::kWindow;

TEST_CASE("transaction bounds: new keys end a transaction at its first second") {
  TransactionBounds b;
  size_t keys = 0;
  for (int ms = 0; ms < 1000; ms += 50) {
    keys += kWindow;  // every document a new key
    CHECK_FALSE(b.Done(milliseconds(ms), 1 << 20, keys));
  }
  keys += kWindow;
  CHECK(b.Done(milliseconds(1000), 1 << 20, keys));
}

TEST_CASE("transaction bounds: documents of keys already held extend it up to the maximum") {
  TransactionBounds b;
  size_t keys = 100000;
  CHECK_FALSE(b.Done(milliseconds(200), 1 << 20, keys));  // the new keys came first
  for (int ms = 250; ms < 5000; ms += 250) {
    keys += kWindow / 8 - 1;  // a few new keys per window: still mostly reducing
    CHECK_FALSE(b.Done(milliseconds(ms), 1 << 20, keys));
  }
  CHECK(b.Done(milliseconds(5000), 1 << 20, keys));
  // Once new keys come again past the first second, it ends at the next window.
  TransactionBounds c;
  CHECK_FALSE(c.Done(milliseconds(1500), 1 << 20, 0));
  CHECK(c.Done(milliseconds(1600), 1 << 20, kWindow / 8));
}

TEST_CASE("transaction bounds: the memory bound ends it at once; a spill counts as new keys") {
  TransactionBounds b;
  CHECK(b.Done(milliseconds(0), TransactionBounds::kMemory, 10));
  TransactionBounds c;
  CHECK_FALSE(c.Done(milliseconds(300), 1 << 20, 5000));
  CHECK_FALSE(c.Done(milliseconds(1200), 1 << 20, 5000));
  CHECK(c.Done(milliseconds(1300), 1 << 20, 10));  // fewer keys: the combiner spilled
  TransactionBounds d;
  CHECK_FALSE(d.Done(milliseconds(300), 1 << 20, 10));  // a spill before the second is fine
}

TEST_CASE(
    "transaction bounds: while the previous transaction is being stored, only memory ends it") {
  TransactionBounds b;
  size_t keys = 0;
  for (int ms = 0; ms < 20000; ms += 500) {
    keys += kWindow;  // every document a new key
    CHECK_FALSE(b.Done(milliseconds(ms), 1 << 20, keys, /*storing=*/true));
  }
  CHECK(b.Done(milliseconds(20000), TransactionBounds::kMemory, keys, true));
  // Once it is stored, the time bounds apply again at the next window.
  keys += kWindow;
  CHECK(b.Done(milliseconds(20500), 1 << 20, keys, false));
}

}  // namespace
}  // namespace flow::runtime
