#include "runtime/task.h"

namespace flow::runtime {

const char* ToString(TaskKind kind) {
  switch (kind) {
    case TaskKind::kCapture:
      return "capture";
    case TaskKind::kDerivation:
      return "derivation";
    case TaskKind::kMaterialization:
      return "materialization";
  }
  return "task";
}

const char* ToString(TaskState state) {
  switch (state) {
    case TaskState::kStarting:
      return "starting";
    case TaskState::kRunning:
      return "running";
    case TaskState::kBackFilling:
      return "back-filling";
    case TaskState::kRetrying:
      return "retrying";
    case TaskState::kHalted:
      return "halted";
    case TaskState::kStopped:
      return "stopped";
  }
  return "unknown";
}

TaskState MovingState(const ReadProgress& p) {
  return p.total - p.read > (1 << 20) ? TaskState::kBackFilling : TaskState::kRunning;
}

namespace {

int64_t SystemWallNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Clock::Clock() : Clock(SystemWallNanos) {}

Clock::Clock(std::function<int64_t()> wall_nanos)
    : wall(std::move(wall_nanos)), steady([] { return std::chrono::steady_clock::now(); }) {}

}  // namespace flow::runtime
