// Logging (SPEC 8): operational messages at a level, as human text or as JSON lines on
// stderr. Commands configure it once from `-v`/`--log-level` and `--log-format`; library
// code logs what a user may want to trace (sources loaded, tasks started, transactions
// committed) and never prints otherwise. Thread-safe: each record is written whole.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flow {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };
enum class LogFormat { kText, kJson };

// "error", "warn", "info" or "debug" (also "warning"); nullopt for anything else.
std::optional<LogLevel> ParseLogLevel(std::string_view name);
const char* LogLevelName(LogLevel level);

// Sets the threshold (records above it are dropped) and the format. Default: warn, text.
void ConfigureLog(LogLevel level, LogFormat format);
LogLevel LogThreshold();
LogFormat CurrentLogFormat();
inline bool LogEnabled(LogLevel level) { return level <= LogThreshold(); }

// One field of a record: a string, or a number written unquoted in JSON.
struct LogField {
  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(v) {}
  LogField(std::string_view k, const char* v) : key(k), value(v) {}
  LogField(std::string_view k, int64_t v) : key(k), value(std::to_string(v)), number(true) {}
  LogField(std::string_view k, uint64_t v) : key(k), value(std::to_string(v)), number(true) {}
  LogField(std::string_view k, int v) : key(k), value(std::to_string(v)), number(true) {}
  LogField(std::string_view k, uint32_t v) : key(k), value(std::to_string(v)), number(true) {}
  LogField(std::string_view k, double v);  // written with 3 decimals (seconds, ratios)
  std::string key;
  std::string value;
  bool number = false;
};

// Writes a record when `level` is enabled. Text: `flowctl: <level>: message (k=v, ...)`;
// JSON: `{"time":"<RFC 3339 UTC>","level":...,"message":...,<fields>}` on one line.
void Log(LogLevel level, std::string_view message, const std::vector<LogField>& fields = {});

// Formats a JSON record without writing it (for tests and for commands that turn their
// own output into records in JSON mode).
std::string FormatJsonLog(LogLevel level, std::string_view message,
                          const std::vector<LogField>& fields);

}  // namespace flow
