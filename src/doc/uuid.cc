#include "doc/uuid.h"

#include <chrono>
#include <random>

#include "base/strings.h"

namespace flow::doc {
namespace {
// 100 ns intervals between 1582-10-15 and 1970-01-01.
constexpr uint64_t kGregorianToUnixTicks = 0x01B21DD213814000ull;
constexpr uint64_t kMaxTicks = (1ull << 60) - 1;
}  // namespace

ProducerId ProducerId::Random() {
  std::random_device rd;
  std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd());
  ProducerId id;
  uint64_t r = rng();
  for (auto& b : id.bytes) {
    b = static_cast<uint8_t>(r);
    r >>= 8;
  }
  id.bytes[0] |= 0x01;
  return id;
}

Clock ClockFromUnixNanos(int64_t unix_nanos) {
  int64_t ticks = unix_nanos / 100 + static_cast<int64_t>(kGregorianToUnixTicks);
  if (ticks < 0) ticks = 0;
  uint64_t t = static_cast<uint64_t>(ticks);
  if (t > kMaxTicks) t = kMaxTicks;
  return t << 4;
}

int64_t ClockToUnixNanos(Clock clock) {
  return (static_cast<int64_t>(clock >> 4) - static_cast<int64_t>(kGregorianToUnixTicks)) * 100;
}

Clock ClockSource::Next() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  Clock c = ClockFromUnixNanos(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count());
  last_ = c > last_ ? c : last_ + 1;
  return last_;
}

std::string FormatUuid(const Uuid& uuid) {
  uint64_t ticks = uuid.clock >> 4;
  uint32_t time_low = static_cast<uint32_t>(ticks);
  uint16_t time_mid = static_cast<uint16_t>(ticks >> 32);
  uint16_t time_hi = static_cast<uint16_t>((ticks >> 48) & 0x0fff) | 0x1000;
  uint16_t seq = static_cast<uint16_t>(((uuid.clock & 0xf) << 10) | (uuid.flags & 0x3ff) | 0x8000);
  uint8_t b[16];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<uint8_t>(time_low >> (24 - 8 * i));
  b[4] = static_cast<uint8_t>(time_mid >> 8);
  b[5] = static_cast<uint8_t>(time_mid);
  b[6] = static_cast<uint8_t>(time_hi >> 8);
  b[7] = static_cast<uint8_t>(time_hi);
  b[8] = static_cast<uint8_t>(seq >> 8);
  b[9] = static_cast<uint8_t>(seq);
  for (int i = 0; i < 6; ++i) b[10 + i] = uuid.producer.bytes[static_cast<size_t>(i)];
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(hex[b[i] >> 4]);
    out.push_back(hex[b[i] & 0xf]);
  }
  return out;
}

std::optional<Uuid> ParseUuid(std::string_view text) {
  if (text.size() != 36) return std::nullopt;
  uint8_t b[16];
  size_t j = 0;
  for (size_t i = 0; i < 36; ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return std::nullopt;
      continue;
    }
    int hi = HexDigit(text[i]), lo = HexDigit(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    b[j++] = static_cast<uint8_t>(hi << 4 | lo);
    ++i;
  }
  if ((b[6] >> 4) != 1 || (b[8] & 0xc0) != 0x80) return std::nullopt;
  uint64_t time_low = (uint64_t{b[0]} << 24) | (uint64_t{b[1]} << 16) | (uint64_t{b[2]} << 8) | b[3];
  uint64_t time_mid = (uint64_t{b[4]} << 8) | b[5];
  uint64_t time_hi = (uint64_t{b[6] & 0x0fu} << 8) | b[7];
  uint64_t ticks = time_low | (time_mid << 32) | (time_hi << 48);
  uint16_t seq = static_cast<uint16_t>((b[8] << 8) | b[9]);
  Uuid out;
  out.clock = (ticks << 4) | ((seq >> 10) & 0xf);
  out.flags = seq & 0x3ff;
  for (int i = 0; i < 6; ++i) out.producer.bytes[static_cast<size_t>(i)] = b[10 + i];
  return out;
}

}  // namespace flow::doc
