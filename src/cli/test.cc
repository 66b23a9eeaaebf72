// `flowctl test`: run the catalog's tests (SPEC section 6).
#include "cli/commands.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/node.h"
#include "cli/common.h"
#include "cli/output.h"
#include "runtime/plan.h"
#include "runtime/testing.h"

namespace flow::cli {

struct TestOptions {
  CatalogOptions catalog;
  std::string filter;  // only tests whose name contains it
};

int RunTest(const GlobalOptions& g, const TestOptions& o) {
  auto start = std::chrono::steady_clock::now();
  int code = 0;
  auto checked = LoadAndCheck(g, o.catalog, "; no test was run", &code);
  if (!checked) return code;
  const catalog::Catalog& cat = checked->loaded->catalog;

  std::vector<const catalog::TestSpec*> tests;
  for (const auto& t : cat.tests) {
    if (o.filter.empty() || t.name.find(o.filter) != std::string::npos) tests.push_back(&t);
  }
  std::sort(tests.begin(), tests.end(), [](const auto* a, const auto* b) { return a->name < b->name; });
  if (tests.empty()) {
    PrintNote(o.filter.empty() ? "the catalog has no tests" : fmt::format("no test name contains `{}`", o.filter));
    PrintNote("0 passed, 0 failed", {{"passed", 0}, {"failed", 0}});
    return o.filter.empty() ? kExitOk : kExitUserError;
  }

  auto plan = runtime::CompilePlan(checked->loaded->catalog, checked->built, NodeStarterFor(*checked));
  if (!plan) return PrintFailure(plan.error());
  const char* tmp = std::getenv("TMPDIR");
  runtime::TestRunner runner(&plan.value(), tmp && *tmp ? tmp : "/tmp");
  bool color = UseColor(g);
  auto paint = [&](const char* code, const std::string& text) {
    return color ? fmt::format("\033[{}m{}\033[0m", code, text) : text;
  };
  int passed = 0, failed = 0;
  for (const auto* t : tests) {
    auto outcome = runner.Run(*t);
    if (!outcome) {
      PrintError(fmt::format("test `{}`: {}", t->name, outcome.error().message));
      PrintNote(fmt::format("{} passed, {} failed", passed, failed + 1), {{"passed", passed}, {"failed", failed + 1}});
      return outcome.error().ExitCode();
    }
    if (outcome->passed) {
      ++passed;
      if (JsonOutput()) {
        PrintNote(fmt::format("PASS {}", t->name), {{"test", t->name}, {"result", "pass"}, {"seconds", outcome->seconds}});
      } else {
        fmt::print(stderr, "{} {} ({:.2f} s)\n", paint("32", "PASS"), t->name, outcome->seconds);
      }
    } else {
      ++failed;
      if (JsonOutput()) {
        std::string where = fmt::format("{}:{}:{}", t->where.file, t->where.mark.line, t->where.mark.col);
        std::string failures;
        for (const auto& f : outcome->failures) failures += (failures.empty() ? "" : "\n") + f;
        Log(LogLevel::kError, fmt::format("FAIL {}", t->name),
            {{"test", t->name}, {"result", "fail"}, {"seconds", outcome->seconds}, {"where", where},
             {"failures", failures}});
        continue;
      }
      fmt::print(stderr, "{} {} ({:.2f} s)\n", paint("31", "FAIL"), t->name, outcome->seconds);
      fmt::print(stderr, "     {}:{}:{}\n", t->where.file, t->where.mark.line, t->where.mark.col);
      for (auto f : outcome->failures) {
        for (size_t at = f.find('\n'); at != std::string::npos; at = f.find('\n', at + 1)) f.insert(at + 1, "     ");
        fmt::print(stderr, "     {}\n", f);
      }
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  PrintNote(fmt::format("ran {} test{} in {:.2f} s", tests.size(), tests.size() == 1 ? "" : "s", secs));
  PrintNote(fmt::format("{} passed, {} failed", passed, failed), {{"passed", passed}, {"failed", failed}});
  return failed ? kExitUserError : kExitOk;
}

Command RegisterTest(CLI::App& app) {
  auto o = std::make_shared<TestOptions>();
  auto* cmd = app.add_subcommand("test", "Run the catalog's tests");
  AddCatalogOptions(*cmd, o->catalog);
  cmd->add_option("--filter", o->filter, "Only tests whose name contains this text");
  cmd->footer(
      "Each test runs in a fresh temporary data directory. After each ingest step, every "
      "derivation processes what is ready before the next step runs. Read delays are satisfied "
      "at verify steps by a simulated clock, never by sleeping.\n"
      "Exit status: 0 all tests passed, 1 a test failed or the catalog has errors, 2 usage "
      "error, 3 an environment problem (e.g. Node.js missing for nodeJS lambdas).");
  return {cmd, [o](const GlobalOptions& g) { return RunTest(g, *o); }};
}

}  // namespace flow::cli
