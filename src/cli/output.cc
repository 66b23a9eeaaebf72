#include "cli/output.h"

#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

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

namespace {

// 1234567 → "1,234,567".
std::string Grouped(uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// 95123.4 → "95.1k".
std::string Rate(double r) {
  if (r >= 1e6) return fmt::format("{:.1f}M", r / 1e6);
  if (r >= 1e3) return fmt::format("{:.1f}k", r / 1e3);
  return fmt::format("{:.0f}", r);
}

std::string Duration(double s) {
  if (s < 60) return fmt::format("{:.0f} s", std::max(0.0, s));
  if (s < 3600) return fmt::format("{}m{:02d}s", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  return fmt::format("{}h{:02d}m", static_cast<int>(s) / 3600, static_cast<int>(s) / 60 % 60);
}

}  // namespace

struct Progress::State {
  std::string verb;
  bool terminal = false, json = false;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  mutable std::mutex mu;
  std::condition_variable cv;
  bool stop = false, shown = false;
  uint64_t documents = 0, bytes = 0, total = 0;
  std::string phase, text;
  std::chrono::steady_clock::time_point phase_start;
  std::thread ticker;
  double Elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
};

Progress::Progress(std::string verb) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.verb = std::move(verb);
  s.json = JsonOutput();
  s.terminal = !s.json && ::isatty(STDERR_FILENO);
  if (!s.terminal && !s.json) return;
  s.ticker = std::thread([this] {
    State& st = *state_;
    auto period = st.json ? std::chrono::milliseconds(5000) : std::chrono::milliseconds(500);
    std::unique_lock<std::mutex> lock(st.mu);
    while (!st.cv.wait_for(lock, period, [&] { return st.stop; })) {
      double elapsed = st.Elapsed();
      if (st.json) {
        std::vector<LogField> fields{{"verb", st.verb}, {"documents", st.documents}, {"bytes", st.bytes},
                                     {"elapsed", elapsed}};
        if (st.total) fields.emplace_back("total_bytes", st.total);
        if (st.total && st.bytes) fields.emplace_back("percent", std::min(100.0, 100.0 * st.bytes / st.total));
        if (elapsed > 0) fields.emplace_back("rate", st.documents / elapsed);
        if (st.total && st.bytes && elapsed > 0) {
          fields.emplace_back("eta_seconds", elapsed * (st.total - std::min(st.total, st.bytes)) / st.bytes);
        }
        if (!st.phase.empty()) fields.emplace_back("phase", st.phase);
        if (!st.text.empty()) fields.emplace_back("status", st.text);
        lock.unlock();
        Log(LogLevel::kInfo, "progress", fields);
        lock.lock();
        continue;
      }
      Write("\r\033[K" + Render(elapsed));  // under the lock: Clear and Above wait for it
      st.shown = true;
    }
  });
}

Progress::~Progress() { Stop(); }

bool Progress::enabled() const { return state_->terminal || state_->json; }

void Progress::SetTotal(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->total = bytes;
}

void Progress::Update(uint64_t documents, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->documents = documents;
  state_->bytes = bytes;
}

void Progress::Phase(std::string text) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->phase = std::move(text);
  state_->phase_start = std::chrono::steady_clock::now();
}

void Progress::Text(std::string text) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->text = std::move(text);
}

std::string Progress::Render(double elapsed) const {
  const State& s = *state_;
  if (!s.text.empty()) return fmt::format("{}: {}", s.verb, s.text);
  std::string line = fmt::format("{}: {} documents", s.verb, Grouped(s.documents));
  if (s.total) {
    line += fmt::format(", {:.1f} of {:.1f} MB ({:.0f}%)", s.bytes / 1e6, s.total / 1e6,
                        std::min(100.0, 100.0 * s.bytes / s.total));
  } else {
    line += fmt::format(", {:.1f} MB", s.bytes / 1e6);
  }
  if (!s.phase.empty()) {
    double in_phase = std::chrono::duration<double>(std::chrono::steady_clock::now() - s.phase_start).count();
    return line + fmt::format("; {} ({})", s.phase, Duration(in_phase));
  }
  if (elapsed >= 1 && s.documents) line += fmt::format(", {} documents/s", Rate(s.documents / elapsed));
  if (s.total && s.bytes && elapsed >= 1 && s.bytes < s.total) {
    line += fmt::format(", {} left", Duration(elapsed * (s.total - s.bytes) / s.bytes));
  }
  return line;
}

void Progress::Clear() {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->shown) Write("\r\033[K");
  state_->shown = false;
}

void Progress::Above(const std::function<void()>& print) {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->shown) Write("\r\033[K");
  state_->shown = false;
  print();
}

void Progress::Stop() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stop = true;
  }
  state_->cv.notify_all();
  if (state_->ticker.joinable()) state_->ticker.join();
  Clear();
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
