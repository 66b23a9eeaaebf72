#include "cli/output.h"

#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <cstdio>
#include <cstring>
#include <mutex>

#include <fmt/format.h>


namespace flow::cli {
namespace {

std::mutex g_print;

void Write(const std::string& text) {
  std::lock_guard<std::mutex> lock(g_print);
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

}  // namespace

bool JsonOutput() { return CurrentLogFormat() == LogFormat::kJson; }

void PrintError(std::string_view message, const std::vector<LogField>& fields) {
  if (JsonOutput()) {
    Log(LogLevel::kError, message, fields);
    return;
  }
  Write(fmt::format("error: {}\n", message));
}

void PrintErrorAt(std::string_view where, std::string_view message, const std::vector<LogField>& fields) {
  if (JsonOutput()) {
    std::vector<LogField> all{{"where", where}};
    all.insert(all.end(), fields.begin(), fields.end());
    Log(LogLevel::kError, message, all);
    return;
  }
  Write(fmt::format("{}: error: {}\n", where, message));
}

int PrintErrorAtPlace(std::string_view where, const Error& e) {
  if (where.empty()) {
    PrintError(e.message);
  } else {
    PrintErrorAt(where, e.message);
  }
  return e.ExitCode();
}

Result<bool> StdoutLines::Add(std::string_view line) {
  out_.append(line);
  out_.push_back('\n');
  if (out_.size() >= (1 << 20)) Write();
  if (failed_) return Error::Env(fmt::format("cannot write the output: {}", std::strerror(errno)));
  return true;
}

void StdoutLines::Write() {
  if (!out_.empty() && std::fwrite(out_.data(), 1, out_.size(), stdout) != out_.size()) failed_ = true;
  out_.clear();
}

void StdoutLines::Flush() {
  Write();
  if (std::fflush(stdout) != 0) failed_ = true;
}

void PrintNote(std::string_view line, const std::vector<LogField>& fields) {
  if (JsonOutput()) {
    Log(LogLevel::kInfo, line, fields);
    return;
  }
  Write(fmt::format("{}\n", line));
}

void PrintLine(std::string_view line) {
  if (!JsonOutput()) {
    Write(fmt::format("{}\n", line));
    return;
  }
  for (auto [prefix, level] : {std::pair{std::string_view("error: "), LogLevel::kError},
                               std::pair{std::string_view("warning: "), LogLevel::kWarn}}) {
    if (line.substr(0, prefix.size()) == prefix) {
      Log(level, line.substr(prefix.size()));
      return;
    }
  }
  Log(LogLevel::kInfo, line);
}

ProgressLine::ProgressLine(std::string verb)
    : verb_(std::move(verb)), enabled_(::isatty(STDERR_FILENO) && !JsonOutput()), last_(std::chrono::steady_clock::now()) {}

void ProgressLine::Update(uint64_t docs, uint64_t bytes) {
  auto now = std::chrono::steady_clock::now();
  if (!enabled_ || now - last_ < std::chrono::milliseconds(500)) return;
  last_ = now;
  shown_ = true;
  Write(fmt::format("\r{}: {} documents, {:.1f} MB read", verb_, docs, bytes / 1e6));
}

void ProgressLine::Clear() {
  if (shown_) Write("\r\033[K");
  shown_ = false;
}

bool Confirm(std::string_view question, bool yes, std::string_view no_terminal, std::string_view declined) {
  if (yes) return true;
  if (!::isatty(STDIN_FILENO)) {
    PrintError(no_terminal);
    return false;
  }
  fmt::print(stderr, "{} [y/N] ", question);
  std::string answer;
  std::getline(std::cin, answer);
  bool agreed = answer == "y" || answer == "Y" || answer == "yes";
  if (!agreed) PrintNote(declined);
  return agreed;
}

}  // namespace flow::cli
