#include "base/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include <fmt/format.h>

#include "base/strings.h"

namespace flow {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kWarn)};
std::atomic<int> g_format{static_cast<int>(LogFormat::kText)};
std::mutex g_write;

std::string NowRfc3339() {
  auto now = std::chrono::system_clock::now();
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(micros / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros % 1000000);
}

}  // namespace

LogField::LogField(std::string_view k, double v) : key(k), value(fmt::format("{:.3f}", v)), number(true) {}

std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  if (name == "error") return LogLevel::kError;
  if (name == "warn" || name == "warning") return LogLevel::kWarn;
  if (name == "info") return LogLevel::kInfo;
  if (name == "debug") return LogLevel::kDebug;
  return std::nullopt;
}

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return "error";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kInfo: return "info";
    case LogLevel::kDebug: return "debug";
  }
  return "info";
}

void ConfigureLog(LogLevel level, LogFormat format) {
  g_level = static_cast<int>(level);
  g_format = static_cast<int>(format);
}

LogLevel LogThreshold() { return static_cast<LogLevel>(g_level.load()); }
LogFormat CurrentLogFormat() { return static_cast<LogFormat>(g_format.load()); }

std::string FormatJsonLog(LogLevel level, std::string_view message, const std::vector<LogField>& fields) {
  std::string out = fmt::format("{{\"time\":\"{}\",\"level\":\"{}\",\"message\":{}", NowRfc3339(),
                                LogLevelName(level), JsonQuote(message));
  for (const auto& f : fields) {
    // A field may not shadow the record's own members.
    if (f.key == "time" || f.key == "level" || f.key == "message") continue;
    out += fmt::format(",{}:{}", JsonQuote(f.key), f.number ? f.value : JsonQuote(f.value));
  }
  return out + "}";
}

void Log(LogLevel level, std::string_view message, const std::vector<LogField>& fields) {
  if (!LogEnabled(level)) return;
  std::string line;
  if (CurrentLogFormat() == LogFormat::kJson) {
    line = FormatJsonLog(level, message, fields);
  } else {
    line = fmt::format("flowctl: {}: {}", LogLevelName(level), message);
    if (!fields.empty()) {
      line += " (";
      for (size_t i = 0; i < fields.size(); ++i) {
        line += fmt::format("{}{}={}", i ? ", " : "", fields[i].key, fields[i].value);
      }
      line += ")";
    }
  }
  line += "\n";
  std::lock_guard<std::mutex> lock(g_write);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace flow
