// `flowctl test`: run the catalog's tests (SPEC section 6). The results are the command's
// output (stdout, the summary line last); errors of the catalog or the environment go to
// stderr, and with `--log-format json` stderr carries a record per test besides. `--junit`
// and `--json` write the same results as reports for CI; `--watch` reruns on every change of
// the catalog's sources.
#include "cli/commands.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <ctime>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "base/files.h"
#include "base/strings.h"
#include "base/url.h"
#include "cli/node.h"
#include "cli/common.h"
#include "cli/output.h"
#include "cli/watch.h"
#include "runtime/plan.h"
#include "runtime/testing.h"

namespace flow::cli {

struct TestOptions {
  CatalogOptions catalog;
  std::string filter;  // only tests whose name contains it
  std::string junit;   // a JUnit XML report to write
  std::string json;    // a JSON report to write
  bool watch = false;
};

namespace {

// One test's result, for the reports.
struct CaseResult {
  std::string name;
  std::string file;      // the catalog file that defines the test
  std::string location;  // file:line:col
  double seconds = 0;
  enum class Status { kPassed, kFailed, kError, kSkipped } status = Status::kSkipped;
  std::string message;  // failed: the step and what failed it; error: the error; skipped: why
  std::optional<runtime::StepFailure> failure;
  std::string detail;  // the failure as the text output shows it
};

const char* StatusName(CaseResult::Status s) {
  switch (s) {
    case CaseResult::Status::kPassed:
      return "passed";
    case CaseResult::Status::kFailed:
      return "failed";
    case CaseResult::Status::kError:
      return "error";
    case CaseResult::Status::kSkipped:
      return "skipped";
  }
  return "";
}

std::string Location(const catalog::Where& w) {
  return fmt::format("{}:{}:{}", w.file, w.mark.line, w.mark.col);
}

// `s` as XML 1.0 character data or attribute text: markup characters escaped, characters
// XML 1.0 does not allow (control characters other than tab, newline and carriage return;
// U+FFFE and U+FFFF) replaced by U+FFFD; in attributes, tab and line breaks as character
// references so that they survive attribute-value normalisation.
std::string XmlEscape(std::string_view s, bool attribute) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '&':
        out += "&amp;";
        continue;
      case '<':
        out += "&lt;";
        continue;
      case '>':
        out += "&gt;";
        continue;
      case '"':
        out += attribute ? "&quot;" : "\"";
        continue;
      case '\t':
      case '\n':
      case '\r':
        out += attribute ? fmt::format("&#{};", static_cast<int>(c)) : std::string(1, s[i]);
        continue;
      default:
        break;
    }
    if (c < 0x20 || c == 0x7f) {
      out += "\uFFFD";
    } else if (c == 0xef && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xbf &&
               (static_cast<unsigned char>(s[i + 2]) & 0xfe) == 0xbe) {
      out += "\uFFFD";  // U+FFFE, U+FFFF
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The failure as the text output and the JUnit report show it: the step, its location,
// what failed it and the differences, then the documents compared.
std::string FailureText(const CaseResult& r, bool documents) {
  if (!r.failure) return r.message;
  const runtime::StepFailure& f = *r.failure;
  std::string out = fmt::format("step {} ({} {}) at {}: {}", f.step, f.kind, f.collection,
                                Location(f.where), f.message);
  if (f.differences.empty() && r.detail.find('\n') != std::string::npos) {
    out += r.detail.substr(r.detail.find('\n'));  // a multi-line error
  }
  for (const auto& d : f.differences) out += "\n  " + d;
  if (documents && !f.expected.empty()) {
    out += "\nexpected documents: " + f.expected;
    out += "\nactual documents (fully reduced, in key order): " + f.actual;
  }
  return out;
}

std::string JunitReport(const std::vector<CaseResult>& results, double seconds) {
  // One <testsuite> per catalog file, in the order their first test ran.
  std::vector<std::string> files;
  for (const auto& r : results) {
    if (std::find(files.begin(), files.end(), r.file) == files.end()) files.push_back(r.file);
  }
  auto count = [&](const std::string* file, CaseResult::Status s) {
    return std::count_if(results.begin(), results.end(), [&](const CaseResult& r) {
      return (!file || r.file == *file) && r.status == s;
    });
  };
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  char host[256] = "localhost";
  if (::gethostname(host, sizeof host) != 0) std::snprintf(host, sizeof host, "localhost");
  host[sizeof host - 1] = '\0';
  using S = CaseResult::Status;
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format(
      "<testsuites name=\"flowctl test\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" "
      "time=\"{:.3f}\">\n",
      results.size(), count(nullptr, S::kFailed), count(nullptr, S::kError),
      count(nullptr, S::kSkipped), seconds);
  for (size_t id = 0; id < files.size(); ++id) {
    const std::string& file = files[id];
    double secs = 0;
    size_t n = 0;
    for (const auto& r : results) {
      if (r.file != file) continue;
      secs += r.seconds;
      ++n;
    }
    out += fmt::format(
        "  <testsuite name=\"{}\" id=\"{}\" package=\"flowctl\" hostname=\"{}\" timestamp=\"{}\" "
        "tests=\"{}\" "
        "failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3f}\">\n",
        XmlEscape(file, true), id, XmlEscape(host, true), stamp, n, count(&file, S::kFailed),
        count(&file, S::kError), count(&file, S::kSkipped), secs);
    for (const auto& r : results) {
      if (r.file != file) continue;
      out += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3f}\"",
                         XmlEscape(r.file, true), XmlEscape(r.name, true), r.seconds);
      switch (r.status) {
        case S::kPassed:
          out += "/>\n";
          continue;
        case S::kFailed:
          out += fmt::format(">\n      <failure message=\"{}\" type=\"{}\">{}\n{}</failure>\n",
                             XmlEscape(r.message, true), r.failure ? r.failure->kind : "failure",
                             XmlEscape(fmt::format("test `{}` at {}", r.name, r.location), false),
                             XmlEscape(FailureText(r, true), false));
          break;
        case S::kError:
          out += fmt::format(">\n      <error message=\"{}\" type=\"environment\">{}</error>\n",
                             XmlEscape(r.message, true), XmlEscape(r.message, false));
          break;
        case S::kSkipped:
          out += fmt::format(">\n      <skipped message=\"{}\"/>\n", XmlEscape(r.message, true));
          break;
      }
      out += "    </testcase>\n";
    }
    out += "  </testsuite>\n";
  }
  out += "</testsuites>\n";
  return out;
}

std::string JsonReport(const std::vector<CaseResult>& results, double seconds) {
  using S = CaseResult::Status;
  auto count = [&](S s) {
    return std::count_if(results.begin(), results.end(),
                         [&](const auto& r) { return r.status == s; });
  };
  std::string out = fmt::format(
      "{{\"summary\":{{\"tests\":{},\"passed\":{},\"failed\":{},\"errors\":{},\"skipped\":{},"
      "\"seconds\":{:.3f}}},"
      "\n\"tests\":[",
      results.size(), count(S::kPassed), count(S::kFailed), count(S::kError), count(S::kSkipped),
      seconds);
  for (size_t i = 0; i < results.size(); ++i) {
    const CaseResult& r = results[i];
    out += fmt::format(
        "{}\n{{\"name\":{},\"file\":{},\"location\":{},\"seconds\":{:.3f},\"status\":\"{}\"",
        i ? "," : "", JsonQuote(r.name), JsonQuote(r.file), JsonQuote(r.location), r.seconds,
        StatusName(r.status));
    if (r.status != S::kPassed) out += fmt::format(",\"message\":{}", JsonQuote(r.message));
    if (r.failure) {
      const runtime::StepFailure& f = *r.failure;
      out += fmt::format(
          ",\"step\":{{\"index\":{},\"kind\":\"{}\",\"collection\":{},\"location\":{}}}", f.step,
          f.kind, JsonQuote(f.collection), JsonQuote(Location(f.where)));
      out += ",\"differences\":[";
      for (size_t k = 0; k < f.differences.size(); ++k)
        out += (k ? "," : "") + JsonQuote(f.differences[k]);
      out += "]";
      if (!f.expected.empty()) out += ",\"expected\":" + f.expected + ",\"actual\":" + f.actual;
    }
    out += "}";
  }
  out += "\n]}\n";
  return out;
}

// Writes the reports `o` asks for; false after printing an error.
bool WriteReports(const TestOptions& o, const std::vector<CaseResult>& results, double seconds) {
  bool ok = true;
  for (const auto& [path, text] :
       {std::pair{o.junit, o.junit.empty() ? "" : JunitReport(results, seconds)},
        std::pair{o.json, o.json.empty() ? "" : JsonReport(results, seconds)}}) {
    if (path.empty()) continue;
    auto written = WriteFileAtomic(path, text);
    if (!written) {
      PrintError(fmt::format("cannot write the report {}: {}", path, written.error().message));
      ok = false;
    }
  }
  return ok;
}

// Runs the tests once: loads and checks the catalog, runs the tests that `o.filter` selects
// and prints the results. `files`: set to the catalog's local source files when it loads.
int RunOnce(const GlobalOptions& g, const TestOptions& o, std::vector<std::string>* files) {
  auto start = std::chrono::steady_clock::now();
  int code = 0;
  auto checked = LoadAndCheck(g, o.catalog, "; no test was run", &code);
  if (!checked) return code;
  const catalog::Catalog& cat = checked->loaded->catalog;
  files->clear();
  for (const auto& f : cat.files) {
    if (IsFileUrl(f->url)) files->push_back(FilePathOfUrl(f->url));
  }
  // The build's checks of the nodeJS lambdas (type errors are the catalog's, not a test's).
  if (int node = PrepareNodeLambdas(g, *checked, "; no test was run", !o.catalog.no_type_check);
      node != kExitOk) {
    return node;
  }

  std::vector<const catalog::TestSpec*> tests;
  for (const auto& t : cat.tests) {
    if (o.filter.empty() || t.name.find(o.filter) != std::string::npos) tests.push_back(&t);
  }
  std::sort(tests.begin(), tests.end(), [](const auto* a, const auto* b) { return a->name < b->name; });
  auto summary = [&](int passed, int failed) {
    if (JsonOutput())
      Log(LogLevel::kInfo, fmt::format("{} passed, {} failed", passed, failed),
          {{"passed", passed}, {"failed", failed}});
    fmt::print("{} passed, {} failed\n", passed, failed);
    std::fflush(stdout);
  };
  if (tests.empty()) {
    if (o.filter.empty()) {
      fmt::print("the catalog has no tests\n");
    } else {
      std::vector<std::string> names;
      for (const auto& t : cat.tests) names.push_back(t.name);
      std::string hint = DidYouMean(o.filter, names);
      PrintError(
          fmt::format("no test name contains `{}`{}{}", o.filter, hint.empty() ? "" : "; ", hint));
    }
    summary(0, 0);
    WriteReports(o, {}, 0);
    return o.filter.empty() ? kExitOk : kExitUserError;
  }

  auto plan = runtime::CompilePlan(checked->loaded->catalog, checked->built, NodeStarterFor(*checked));
  if (!plan) return PrintFailure(plan.error());
  const char* tmp = std::getenv("TMPDIR");
  runtime::TestRunner runner(&plan.value(), tmp && *tmp ? tmp : "/tmp");
  bool color = !g.no_color && std::getenv("NO_COLOR") == nullptr && ::isatty(STDOUT_FILENO);
  auto paint = [&](const char* code, const std::string& text) {
    return color ? fmt::format("\033[{}m{}\033[0m", code, text) : text;
  };
  std::vector<CaseResult> results;
  for (const auto* t : tests) {
    CaseResult r;
    r.name = t->name;
    r.file = t->where.file;
    r.location = Location(t->where);
    results.push_back(std::move(r));
  }
  int passed = 0, failed = 0, exit = kExitOk;
  // On a terminal, the test being run (stderr); results are printed above it (stdout).
  Progress progress("testing");
  auto print = [&](const std::function<void()>& lines) {
    progress.Above([&] {
      lines();
      std::fflush(stdout);
    });
  };
  for (size_t i = 0; i < tests.size(); ++i) {
    const catalog::TestSpec* t = tests[i];
    CaseResult& r = results[i];
    if (WatchStopped()) {
      r.message = "not run: flowctl was stopped";
      continue;
    }
    if (exit != kExitOk) {
      r.message = "not run: an earlier test failed on an environment error";
      continue;
    }
    progress.Text(fmt::format("test {} of {}, {}", i + 1, tests.size(), t->name));
    auto outcome = runner.Run(*t);
    if (!outcome) {
      r.status = CaseResult::Status::kError;
      r.message = outcome.error().message;
      print([&] { PrintError(fmt::format("test `{}`: {}", t->name, outcome.error().message)); });
      ++failed;
      exit = outcome.error().ExitCode();
      continue;
    }
    r.seconds = outcome->seconds;
    if (outcome->passed) {
      ++passed;
      r.status = CaseResult::Status::kPassed;
      if (JsonOutput()) {
        PrintNote(fmt::format("PASS {}", t->name),
                  {{"test", t->name}, {"result", "pass"}, {"seconds", outcome->seconds}});
      }
      print([&] { fmt::print("{} {} ({:.2f} s)\n", paint("32", "PASS"), t->name, outcome->seconds); });
      continue;
    }
    ++failed;
    r.status = CaseResult::Status::kFailed;
    r.failure = outcome->failure;
    r.detail = outcome->failures.empty() ? "" : outcome->failures.front();
    r.message = r.failure ? fmt::format("step {} ({} {}): {}", r.failure->step, r.failure->kind,
                                        r.failure->collection, r.failure->message)
                          : r.detail;
    std::string failures;
    for (const auto& f : outcome->failures) failures += (failures.empty() ? "" : "\n") + f;
    if (JsonOutput()) {
      Log(LogLevel::kError, fmt::format("FAIL {}", t->name),
          {{"test", t->name},
           {"result", "fail"},
           {"seconds", outcome->seconds},
           {"where", r.location},
           {"failures", failures}});
    }
    print([&] {
      fmt::print("{} {} ({:.2f} s)\n", paint("31", "FAIL"), t->name, outcome->seconds);
      fmt::print("     {}\n", r.location);
      for (auto f : outcome->failures) {
        for (size_t at = f.find('\n'); at != std::string::npos; at = f.find('\n', at + 1))
          f.insert(at + 1, "     ");
        fmt::print("     {}\n", f);
      }
    });
  }
  progress.Stop();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  size_t ran = static_cast<size_t>(passed + failed);
  if (JsonOutput())
    Log(LogLevel::kInfo, fmt::format("ran {} test{} in {:.2f} s", ran, ran == 1 ? "" : "s", secs));
  fmt::print("ran {} test{} in {:.2f} s\n", ran, ran == 1 ? "" : "s", secs);
  summary(passed, failed);
  if (!WriteReports(o, results, secs) && exit == kExitOk) exit = kExitEnvironment;
  if (exit != kExitOk) return exit;
  return failed ? kExitUserError : kExitOk;
}

}  // namespace

int RunTest(const GlobalOptions& g, const TestOptions& o) {
  std::vector<std::string> files;
  if (!o.watch) return RunOnce(g, o, &files);
  WatchLoop loop;
  loop.run = [&](std::vector<std::string>* files) { RunOnce(g, o, files); };
  // A catalog that does not load has no list of files: its root source is watched (and those
  // of the last catalog that loaded, which SourceWatcher keeps).
  loop.always = CatalogRootFile(o.catalog);
  loop.watching = [](size_t n) {
    return fmt::format(
        "watching {} file{} of the catalog: save a change to run the tests again (Ctrl-C to stop)",
        n, n == 1 ? "" : "s");
  };
  loop.changed = "the catalog changed: running the tests again";
  return RunWatching(loop);
}

Command RegisterTest(CLI::App& app) {
  auto o = std::make_shared<TestOptions>();
  auto* cmd = app.add_subcommand("test", "Run the catalog's tests");
  AddCatalogOptions(*cmd, o->catalog);
  AddTypeCheckFlag(*cmd, o->catalog);
  cmd->add_option("--filter", o->filter, "Only tests whose name contains this text");
  cmd->add_option("--junit", o->junit, "Also write the results as a JUnit XML report to this file")
      ->type_name("FILE");
  cmd->add_option("--json", o->json, "Also write the results as a JSON report to this file")
      ->type_name("FILE");
  cmd->add_flag(
      "--watch", o->watch,
      "Run the tests again whenever a source file of the catalog changes, until SIGINT/SIGTERM");
  cmd->footer(
      "Each test runs in a fresh temporary data directory. After each ingest step, every "
      "derivation processes what is ready before the next step runs. Read delays are satisfied "
      "at verify steps by a simulated clock, never by sleeping.\n"
      "The results (PASS/FAIL per test, the differences of a failed step, and the summary line "
      "`N passed, N failed` last) go to stdout; the catalog's errors and warnings, and "
      "environment errors, to stderr.\n"
      "Examples:\n"
      "  flowctl test\n"
      "  flowctl test --filter totals --junit test-results.xml\n"
      "  flowctl test --watch\n"
      "Exit status: 0 all tests passed (with --watch: stopped by SIGINT/SIGTERM), 1 a test failed "
      "or "
      "the catalog has errors, 2 usage error, 3 an environment problem (e.g. Node.js missing for "
      "nodeJS lambdas, a report that cannot be written).");
  return {cmd, [o](const GlobalOptions& g) { return RunTest(g, *o); }};
}

}  // namespace flow::cli
