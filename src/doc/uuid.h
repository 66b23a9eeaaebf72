// Document UUIDs in Gazette's v1 layout (SPEC 3.1): an RFC 4122 version-1 UUID whose
// 60-bit timestamp (100 ns ticks since 1582-10-15) and 4-bit sequence counter form a
// monotonic *clock*, plus 10 flag bits and a 6-byte producer id with the multicast bit set.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flow::doc {

// Timestamp << 4 | sequence counter. Ordered by time, then by sequence.
using Clock = uint64_t;

struct ProducerId {
  std::array<uint8_t, 6> bytes{};
  // A random producer id (multicast bit set, as RFC 4122 requires of non-MAC node ids).
  static ProducerId Random();
  bool operator==(const ProducerId&) const = default;
};

// Gazette message flags (the low 10 bits of the clock-sequence field).
enum UuidFlags : uint16_t {
  kFlagOutsideTxn = 0x0,
  kFlagContinueTxn = 0x1,
  kFlagAckTxn = 0x2,
};

// Clock conversions. Unix time before 1582 or past the 60-bit range is clamped.
Clock ClockFromUnixNanos(int64_t unix_nanos);
int64_t ClockToUnixNanos(Clock clock);

// Generates strictly increasing clocks from the system's real-time clock: each call
// returns max(previous + 1, now). Not thread-safe; use one per producer.
class ClockSource {
 public:
  Clock Next();
  // For tests and simulated time: the next clock is at least `c`.
  void AdvanceTo(Clock c) { if (c > last_) last_ = c - 1; }

 private:
  Clock last_ = 0;
};

struct Uuid {
  ProducerId producer;
  Clock clock = 0;
  uint16_t flags = 0;
};

// The canonical text: 8-4-4-4-12 lowercase hex digits.
std::string FormatUuid(const Uuid& uuid);
// Parses canonical text; nullopt when it is not a version-1, RFC 4122 variant UUID.
std::optional<Uuid> ParseUuid(std::string_view text);

}  // namespace flow::doc
