#include "lambda/lambda.h"

#include <atomic>

#include <fmt/format.h>

namespace flow::lambda {
namespace {

// Lock-free, so that a signal handler may set it.
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);

}  // namespace

void RequestStop() { g_stop.store(true, std::memory_order_relaxed); }
bool StopRequested() { return g_stop.load(std::memory_order_relaxed); }
void ResetStop() { g_stop.store(false, std::memory_order_relaxed); }

std::string DescribeTimeout(std::chrono::milliseconds timeout) {
  int64_t ms = timeout.count();
  if (ms % 60000 == 0 && ms >= 60000) return fmt::format("{} min", ms / 60000);
  if (ms % 1000 == 0) return fmt::format("{} s", ms / 1000);
  return fmt::format("{:.3g} s", static_cast<double>(ms) / 1000.0);
}

Result<bool> Lambda::Stream(const NextRow&, doc::Allocator&, const TakeOutputs&, int*) {
  return Error::Internal("this lambda does not stream its rows");
}

Error StoppedError() { return Error::Env("the lambda was interrupted: flowctl is stopping"); }

}  // namespace flow::lambda
