// Tests of src/lambda/node: TypeScript bodies in a Node.js worker (features, arguments,
// several lambdas per worker, large batches), lambda errors mapped to the transform and the
// line of the body, the worker dying, Node.js or esbuild missing, nodeDependencies (npm,
// needs the registry) and the caches. Every worker is stopped: no node process outlives a
// test. Needs esbuild installed by scripts/setup.sh (scripts/npm-deps.sh runtime).
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <rapidjson/document.h>

#include "lambda_harness.h"
#include "doc/parse.h"
#include "doc/value.h"
#include "lambda/lambda.h"
#include "lambda/node.h"

using namespace flow;
using lambda::NodeLambdaSpec;
using lambda::NodeOptions;
using lambda::NodeWorker;
using lambda::Row;
namespace fs = std::filesystem;

namespace {
using lambda::testing::Harness;
using lambda::testing::Json;
using lambda::testing::Run;

// A cache directory for this process's tests, removed at exit.
struct TempCache {
  std::string dir;
  TempCache() {
    char tmpl[] = "/tmp/flowctl-node-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
  }
  ~TempCache() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

const std::string& CacheDir() {
  static TempCache cache;
  return cache.dir;
}

NodeOptions Options() {
  NodeOptions o;
  o.cache_dir = CacheDir();
  o.esbuild = FLOWCTL_SOURCE_DIR "/.deps/npm-runtime/node_modules/.bin/esbuild";
  REQUIRE_MESSAGE(access(o.esbuild.c_str(), X_OK) == 0,
                  "esbuild is not installed at " << o.esbuild << ": run scripts/setup.sh");
  return o;
}

NodeLambdaSpec Publish(std::string transform, std::string body) {
  return {transform + "/publish", transform, true, std::move(body), ""};
}
NodeLambdaSpec Update(std::string transform, std::string body) {
  return {transform + "/update", transform, false, std::move(body), ""};
}

std::shared_ptr<NodeWorker> MustStart(const std::vector<NodeLambdaSpec>& lambdas,
                                      const NodeOptions& o = Options()) {
  auto w = NodeWorker::Start(lambdas, o);
  REQUIRE_MESSAGE(w.ok(), w.error().message);
  return w.value();
}

Error StartError(const std::vector<NodeLambdaSpec>& lambdas, const NodeOptions& o = Options()) {
  auto w = NodeWorker::Start(lambdas, o);
  REQUIRE_FALSE(w.ok());
  return w.error();
}


struct Failure {
  Error error;
  int row;
};

Failure RunError(lambda::Lambda& l, Harness& h, const std::vector<Row>& rows) {
  lambda::Outputs out;
  int failed = 7;
  auto r = l.Invoke(rows, h.out_doc.GetAllocator(), &out, &failed);
  REQUIRE_FALSE(r.ok());
  return {r.error(), failed};
}

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Whether process `pid` still exists (a zombie counts: it was not reaped).
bool Exists(pid_t pid) { return fs::exists(fmt::format("/proc/{}", pid)); }

// The Node.js workers among the child processes of this process (other tests may run other
// children, e.g. an HTTP server).
std::vector<pid_t> Workers() {
  std::vector<pid_t> kids;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ppid ...: comm may hold spaces, so parse after the last ')'.
    size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    char state;
    int ppid;
    if (sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) != 2 || ppid != getpid()) {
      continue;
    }
    std::ifstream cmdline_file(e.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(cmdline_file)), {});
    if (cmdline.find("readExact(header, 8)") != std::string::npos) kids.push_back(std::stoi(name));
  }
  return kids;
}

// User plus system CPU seconds of process `pid` so far (all its threads).
double CpuSeconds(pid_t pid) {
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string line;
  std::getline(stat, line);
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

TEST_CASE("lambda: node TypeScript features") {
  Harness h;
  {
    auto w = MustStart({Publish("typed", R"TS(
interface Line { sku: string; qty: number; price?: number }
type Total = { sku: string; total: number };
const lines: Line[] = (source.lines as Line[]) ?? [];
const totals: Total[] = lines
  .filter((l: Line): boolean => l.qty! > 0)
  .map((l) => ({ sku: l.sku, total: l.qty * (l.price ?? 1) }));
function twice<T>(x: T): T[] { return [x, x]; }
enum Kind { A = 'a', B = 'b' }
const id: string = source.id!;
return [{ id, kind: Kind.B, totals, n: (register as number) + 1, pair: twice<number>(1) }];
)TS")});
    auto l = w->Get("typed/publish");
    REQUIRE(l);
    auto texts =
        Run(*l, h,
            {h.Publish(R"({"id":"o1","lines":[{"sku":"x","qty":2,"price":1.5},{"sku":"y","qty":0},)"
                    R"({"sku":"z","qty":3}]})",
                    "41", "40")});
    CHECK(texts[0] ==
          R"([{"id":"o1","kind":"b","totals":[{"sku":"x","total":3},{"sku":"z","total":3}],)"
          R"("n":42,"pair":[1,1]}])");
    CHECK(Workers() == std::vector<pid_t>{w->pid()});
  }
  CHECK(Workers().empty());
}

TEST_CASE("lambda: node update and publish arguments") {
  Harness h;
  auto w = MustStart({
      Update("t", "return [{source, register, previous}];"),
      Publish("t", "return [{source, register, previous}];"),
  });
  auto update = w->Get("t/update");
  auto publish = w->Get("t/publish");
  REQUIRE(update);
  REQUIRE(publish);
  CHECK(w->Get("t/nope") == nullptr);

  // Update lambdas see the source only; register and previous are null.
  auto u = Run(*update, h, {h.Publish(R"({"a":1})", "5", "4"), h.Source(R"("s")")});
  CHECK(u[0] == R"([{"source":{"a":1},"register":null,"previous":null}])");
  CHECK(u[1] == R"([{"source":"s","register":null,"previous":null}])");

  // Publish lambdas see all three, in that order; an absent document is null.
  auto p = Run(
      *publish, h,
      {h.Publish(R"({"a":1})", R"({"sum":5})", R"({"sum":4})"), Row{h.Parse("2"), nullptr, nullptr, {}}});
  CHECK(p[0] == R"([{"source":{"a":1},"register":{"sum":5},"previous":{"sum":4}}])");
  CHECK(p[1] == R"([{"source":2,"register":null,"previous":null}])");

  // A body naming only `previous` (or only `register`) sees it all the same.
  auto w2 = MustStart({Publish("p", "return [previous];"), Publish("r", "return [register];"),
                       Publish("n", "return [typeof register, typeof previous];")});
  CHECK(Run(*w2->Get("p/publish"), h, {h.Publish("1", "2", "3")})[0] == "[3]");
  CHECK(Run(*w2->Get("r/publish"), h, {h.Publish("1", "2", "3")})[0] == "[2]");
  CHECK(Run(*w2->Get("n/publish"), h, {h.Publish("1", "{}", "[]")})[0] == R"(["object","object"])");

  // An empty batch does not reach the worker.
  lambda::Outputs out(1);
  CHECK(publish->Invoke({}, h.out_doc.GetAllocator(), &out).ok());
  CHECK(out.empty());
}

TEST_CASE("lambda: node several lambdas in one worker") {
  Harness h;
  pid_t pid;
  {
    auto w = MustStart({
        Update("a", "return [source.x * 2];"),
        Publish("b", "return [{x: source.x, reg: register}];"),
        Publish("c", "// a comment on the last line, without a newline\nreturn [];\n// done"),
    });
    pid = w->pid();
    auto a = w->Get("a/update");
    auto b = w->Get("b/publish");
    auto c = w->Get("c/publish");
    for (int round = 0; round < 3; ++round) {
      CHECK(Run(*a, h, {h.Source(R"({"x":3})")})[0] == "[6]");
      CHECK(Run(*c, h, {h.Source("{}")})[0] == "[]");
      CHECK(Run(*b, h, {h.Publish(R"({"x":1})", "[1]", "[]")})[0] == R"([{"x":1,"reg":[1]}])");
    }
    // A lambda keeps its worker alive after the worker's owner let go.
    w.reset();
    CHECK(Exists(pid));
    CHECK(Run(*a, h, {h.Source(R"({"x":5})")})[0] == "[10]");
  }
  // The last lambda gone, the worker is stopped and reaped.
  CHECK_FALSE(Exists(pid));
}

TEST_CASE("lambda: node batches of thousands of rows, zero or many outputs each") {
  Harness h;
  auto w = MustStart({Publish("fan", R"TS(
const n: number = source.i % 4;
const out: any[] = [];
for (let k = 0; k < n; k++) out.push({ i: source.i, k, s: source.s, f: source.f, reg: register });
return out;
)TS")});
  auto l = w->Get("fan/publish");
  for (int batch : {1, 4096, 10000}) {
    std::vector<Row> rows;
    for (int i = 0; i < batch; ++i) {
      rows.push_back(h.Publish(fmt::format(R"({{"i":{},"s":"é→😀 \"q\" {}","f":{}.25}})", i, i, i),
                            fmt::format("{}", -i), "null"));
    }
    auto texts = Run(*l, h, rows);
    for (int i = 0; i < batch; ++i) {
      std::string want = "[";
      for (int k = 0; k < i % 4; ++k) {
        want += fmt::format(R"({}{{"i":{},"k":{},"s":"é→😀 \"q\" {}","f":{}.25,"reg":{}}})",
                            k ? "," : "", i, k, i, i, -i);
      }
      want += "]";
      if (texts[i] != want) {
        FAIL_CHECK("row " << i << ": " << texts[i] << " != " << want);
        break;
      }
    }
  }
}

TEST_CASE("lambda: node numbers and strings cross the worker intact") {
  Harness h;
  auto w = MustStart({Update("echo", "return [source];")});
  auto l = w->Get("echo/update");
  auto texts =
      Run(*l, h,
          {h.Source(R"({"int":9007199254740991,"neg":-12,"f":0.1,"e":1e300,"tiny":5e-324,"z":0,)"
                    R"("u":"\u0000\u001f\u2028","nested":[[[{"a":[true,false,null]}]]]})")});
  CHECK(texts[0] == R"([{"int":9007199254740991,"neg":-12,"f":0.1,"e":1e300,"tiny":5e-324,"z":0,)"
                    R"("u":"\u0000\u001F)"
                    "\u2028"
                    R"(","nested":[[[{"a":[true,false,null]}]]]}])");
  // Output values are numbers of the right kind.
  lambda::Outputs out;
  REQUIRE(l->Invoke({h.Source(R"([1, 1.5, -3])")}, h.out_doc.GetAllocator(), &out).ok());
  const doc::Value& v = out[0][0];
  CHECK(v[0].IsInt64());
  CHECK(v[1].IsDouble());
  CHECK(v[2].GetInt64() == -3);
}

TEST_CASE("lambda: node rows sent as their source text give the same outputs as rows serialised") {
  Harness h;
  auto w = MustStart({Update("echo", "return [source];")});
  auto l = w->Get("echo/update");
  const std::string text =
      R"({"s":"tab\t quote\" back\\ nl\n \u00e9 \ud83d\ude00 \u2028","n":[1,-0.5,1e300,9007199254740991],)"
      R"("o":{"nested":{"a":null,"b":true}}})";
  Row parsed = h.Source(text);
  Row with_text = parsed;
  with_text.source_json = text;
  auto a = Run(*l, h, {parsed, parsed});
  auto b = Run(*l, h, {with_text, parsed});
  CHECK(a == b);
}

TEST_CASE("lambda: node streams rows as it takes them, outputs in order as they come") {
  Harness h;
  auto w = MustStart({Publish("views", "return [{i: source.i, n: source.pad.length}];"),
                      Publish("registers", "return [register];")});
  auto l = w->Get("views/publish");
  auto reads = l->reads();
  CHECK(reads.streams);
  CHECK_FALSE(reads.source_value);
  CHECK_FALSE(reads.register_value);
  CHECK_FALSE(reads.previous);
  auto r = w->Get("registers/publish")->reads();
  CHECK(r.register_value);
  CHECK_FALSE(r.previous);

  // Rows of about 1 KiB, each text overwritten by the next: a row is sent when taken. Few
  // are taken before the first outputs come back: flowctl reads while the worker runs.
  const size_t total = 3000;
  const std::string pad(1000, 'x');
  std::string text;
  size_t pulled = 0, pulled_at_first = 0, taken = 0;
  bool in_order = true;
  auto next = [&](Row* row) {
    if (pulled == total) return false;
    text = fmt::format(R"({{"i":{},"pad":"{}"}})", pulled++, pad);
    *row = Row{nullptr, nullptr, nullptr, text};
    return true;
  };
  auto take = [&](size_t i, std::vector<doc::Value>& docs) -> Result<bool> {
    if (taken == 0) pulled_at_first = pulled;
    in_order = in_order && i == taken && docs.size() == 1 && docs[0]["i"].GetUint64() == i &&
               docs[0]["n"].GetInt() == 1000;
    ++taken;
    return true;
  };
  REQUIRE(l->Stream(next, h.out_doc.GetAllocator(), take).ok());
  CHECK(taken == total);
  CHECK(in_order);
  CHECK(pulled_at_first < total / 2);

  // An error of `take` ends the stream as it is; no more rows are taken than are in flight.
  pulled = taken = 0;
  auto refuse = [&](size_t i, std::vector<doc::Value>&) -> Result<bool> {
    if (i == 10) return Error::User("refused row 10");
    ++taken;
    return true;
  };
  auto e = l->Stream(next, h.out_doc.GetAllocator(), refuse);
  REQUIRE_FALSE(e.ok());
  CHECK(e.error().message == "refused row 10");
  CHECK(taken == 10);
  CHECK(pulled < total / 2);

  // A lambda throwing names the row among all those streamed.
  auto t = MustStart({Publish("t", "if (source.i === 777) throw new Error('no 777'); return [];")});
  pulled = 0;
  int failed = -1;
  auto f = t->Get("t/publish")
               ->Stream(
                   next, h.out_doc.GetAllocator(),
                   [](size_t, std::vector<doc::Value>&) -> Result<bool> { return true; }, &failed);
  REQUIRE_FALSE(f.ok());
  CHECK(Contains(f.error().message, "no 777"));
  CHECK(failed == 777);

  // The worker goes on with later invocations.
  auto texts = Run(*l, h, {h.Source(R"({"i":1,"pad":"ab"})")});
  CHECK(texts[0] == R"([{"i":1,"n":2}])");
}

TEST_CASE("lambda: node throwing is a user error naming the transform, row and line") {
  Harness h;
  auto w = MustStart({
      Update("first", "return [source];"),
      Publish("orders",
              "const total: number = source.total;\nif (total < 0) {\n  throw new Error(`negative "
              "total ${total}`);\n}\nreturn [source];"),
      Publish("deref", "return [source.a.b.c];"),
      Publish("strings", "throw 'plain string';"),
  });
  auto l = w->Get("orders/publish");
  auto f = RunError(
      *l, h,
      {h.Publish(R"({"total":1})", "null", "null"), h.Publish(R"({"total":2})", "null", "null"),
       h.Publish(R"({"total":-3})", "null", "null"), h.Publish(R"({"total":4})", "null", "null")});
  CHECK(f.error.code == Error::Code::kUser);
  CHECK(f.row == 2);
  CHECK(f.error.message ==
        "lambda of transform `orders` (publish) threw: negative total -3 (at line 3, column 9 of "
        "its body: "
        "`throw new Error(`negative total ${total}`);`)");
  // Who failed, without reading the text.
  CHECK(f.error.context == std::vector<std::string>{"lambda of transform `orders` (publish)"});

  auto d = RunError(*w->Get("deref/publish"), h, {h.Publish("{}", "null", "null")});
  CHECK(d.row == 0);
  CHECK(
      Contains(d.error.message,
               "lambda of transform `deref` (publish) threw: TypeError: Cannot read properties of "
               "undefined (reading 'b') (at line 1,"));

  auto s = RunError(*w->Get("strings/publish"), h, {h.Publish("{}", "null", "null")});
  // A thrown string has no stack: no position.
  CHECK(s.error.message == "lambda of transform `strings` (publish) threw: plain string");

  // The worker goes on.
  CHECK(Run(*l, h, {h.Publish(R"({"total":5})", "null", "null")})[0] == R"([{"total":5}])");
}

TEST_CASE("lambda: node bootstraps may await, and set globals the lambdas see") {
  Harness h;
  NodeLambdaSpec first{"bootstrap/0", "", false, "globalThis.rate = 2; return 'ignored';", "", 1};
  NodeLambdaSpec second{"bootstrap/1", "", false,
                        "await new Promise((resolve) => setTimeout(resolve, 5));\n"
                        "(globalThis as any).late = 'after a timer';",
                        "", 2};
  auto w = MustStart({first, second, Publish("t", "const g = globalThis as any; return [{v: source * g.rate, late: g.late}];")});
  lambda::Outputs out;
  for (const char* id : {"bootstrap/0", "bootstrap/1"}) {
    auto b = w->Get(id);
    REQUIRE(b);
    auto r = b->Invoke({Row{}}, h.out_doc.GetAllocator(), &out);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    REQUIRE(out.size() == 1);
    CHECK(out[0].empty());
  }
  auto texts = Run(*w->Get("t/publish"), h, {h.Source("21")});
  CHECK(texts[0] == R"([{"v":42,"late":"after a timer"}])");
}

TEST_CASE("lambda: node bootstrap failures name the bootstrap and the line") {
  Harness h;
  NodeLambdaSpec throws{"bootstrap/0", "", false, "const x = 1;\nthrow new Error('no config');", "", 1};
  NodeLambdaSpec rejects{"bootstrap/1", "", false, "await Promise.resolve();\nthrow new TypeError('later');", "", 2};
  auto w = MustStart({throws, rejects});
  auto f = RunError(*w->Get("bootstrap/0"), h, {Row{}});
  CHECK(f.error.code == Error::Code::kUser);
  CHECK(Contains(f.error.message, "bootstrap lambda 1 threw: no config (at line 2"));
  f = RunError(*w->Get("bootstrap/1"), h, {Row{}});
  CHECK(Contains(f.error.message, "bootstrap lambda 2 threw: TypeError: later"));

  // A promise that can never settle ends the worker, which says why.
  NodeLambdaSpec never{"bootstrap/0", "", false, "await new Promise(() => {});", "", 1};
  auto w2 = MustStart({never});
  f = RunError(*w2->Get("bootstrap/0"), h, {Row{}});
  CHECK(f.error.code == Error::Code::kEnvironment);
  CHECK(Contains(f.error.message, "a bootstrap lambda returned a promise that never settles"));
}

TEST_CASE("lambda: node returning something other than an array") {
  Harness h;
  auto w = MustStart({
      Publish("t", R"TS(
switch (source.kind) {
  case 'object': return { a: 1 };
  case 'number': return 5;
  case 'null': return null;
  case 'promise': return Promise.resolve([]);
  case 'nothing': return;
}
return [];
)TS"),
  });
  auto l = w->Get("t/publish");
  auto check = [&](const std::string& kind, const std::string& returned) {
    auto f = RunError(
        *l, h,
        {h.Publish(R"({"kind":"ok"})", "1", "1"), h.Publish(R"({"kind":")" + kind + R"("})", "1", "1")});
    CHECK(f.error.code == Error::Code::kUser);
    CHECK(f.row == 1);
    CHECK(f.error.message ==
          "lambda of transform `t` (publish) returned " + returned + ", not an array");
  };
  check("object", "an object");
  check("number", "a number");
  check("null", "null");
  check("promise", "a Promise (lambdas are synchronous)");
  check("nothing", "undefined");
}

TEST_CASE("lambda: node outputs that are not JSON") {
  Harness h;
  auto w = MustStart({Update("u", R"TS(
if (source === 'undefined') return [1, undefined];
if (source === 'bigint') return [{ n: BigInt(7) }];
if (source === 'cycle') { const o: any = {}; o.self = o; return [o]; }
if (source === 'function') return [() => 1];
return [source];
)TS")});
  auto l = w->Get("u/update");
  auto f = RunError(*l, h, {h.Source(R"("fine")"), h.Source(R"("undefined")")});
  CHECK(f.row == 1);
  CHECK(f.error.code == Error::Code::kUser);
  CHECK(f.error.message ==
        "lambda of transform `u` (update) returned output that is not JSON: its element 1 is "
        "undefined");

  f = RunError(*l, h, {h.Source(R"("fine")"), h.Source(R"("fine")"), h.Source(R"("bigint")")});
  CHECK(f.row == 2);
  CHECK(Contains(
      f.error.message,
      "returned output that is not JSON: TypeError: Do not know how to serialize a BigInt"));

  f = RunError(*l, h, {h.Source(R"("cycle")")});
  CHECK(f.row == 0);
  CHECK(Contains(
      f.error.message,
      "returned output that is not JSON: TypeError: Converting circular structure to JSON"));

  f = RunError(*l, h, {h.Source(R"("function")")});
  CHECK(f.error.message ==
        "lambda of transform `u` (update) returned output that is not JSON: its element 0 is a "
        "function");
  CHECK(Run(*l, h, {h.Source(R"("fine")")})[0] == R"(["fine"])");
}

TEST_CASE("lambda: node TypeScript syntax errors name the transform and the line") {
  auto e = StartError({
      Update("good", "return [source];"),
      Publish("broken", "const a: number = 1;\nconst b = [a as number, ;\nreturn [b];"),
  });
  CHECK(e.code == Error::Code::kUser);
  CHECK(e.message ==
        "lambda of transform `broken` (publish) does not compile: Unexpected \";\" at line 2, "
        "column 25 of its "
        "body: `const b = [a as number, ;`");

  // A body that closes its function early.
  e = StartError({Update("closer", "return [];\n}"), Update("next", "return [];")});
  CHECK(e.code == Error::Code::kUser);
  CHECK(Contains(e.message, "lambda of transform `closer` (update) does not compile: "));
  CHECK_MESSAGE(Contains(e.message, "after the end of its body (are its braces balanced?)"),
                e.message);

  // One that compiles all the same, into a module that does not hold one function per lambda.
  e = StartError({Update("sneaky", "return [];\n}, (x: any) => {\nreturn [1];")});
  CHECK(e.code == Error::Code::kUser);
  CHECK(e.message ==
        "the nodeJS lambdas cannot be loaded: the generated module does not hold one function per "
        "lambda (does a lambda body close its function early?)");
  CHECK(Workers().empty());
}

TEST_CASE("lambda: node modules are transpiled once and cached") {
  NodeOptions o = Options();
  o.cache_dir = CacheDir() + "/caching";
  std::vector<NodeLambdaSpec> lambdas{Update("cached", "return [source as number];")};
  auto modules = [&] {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(o.cache_dir + "/node/modules"))
      names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  };
  MustStart(lambdas, o);
  auto first = modules();
  REQUIRE(first.size() == 2);  // <hash>.ts and <hash>.js
  CHECK(first[0].ends_with(".js"));
  auto js = o.cache_dir + "/node/modules/" + first[0];
  auto mtime = fs::last_write_time(js);

  // Cached: the module is neither transpiled nor written again.
  Harness h;
  auto w = MustStart(lambdas, o);
  CHECK(modules() == first);
  CHECK(fs::last_write_time(js) == mtime);
  CHECK(Run(*w->Get("cached/update"), h, {h.Source("3")})[0] == "[3]");

  // Another body is another module.
  MustStart({Update("cached", "return [source];")}, o);
  CHECK(modules().size() == 4);
}

TEST_CASE("lambda: node worker dying is an environment error") {
  Harness h;
  SUBCASE("killed between batches") {
    auto w = MustStart({Update("victim", "console.log('about to run', source); return [source];")});
    auto l = w->Get("victim/update");
    CHECK(Run(*l, h, {h.Source("1")})[0] == "[1]");
    pid_t pid = w->pid();
    REQUIRE(kill(pid, SIGKILL) == 0);
    auto f = RunError(*l, h, {h.Source("2")});
    CHECK(f.error.code == Error::Code::kEnvironment);
    CHECK(f.error.ExitCode() == kExitEnvironment);
    CHECK(Contains(f.error.message,
                   "the Node.js worker of the nodeJS lambdas died while running the lambda of "
                   "transform `victim` (update) (killed by signal 9"));
    // What the lambda printed (console.log goes to the captured output, not the protocol).
    CHECK(Contains(f.error.message, "its last output:\nabout to run 1"));
    CHECK_FALSE(Exists(pid));  // reaped
    // Every later invocation fails the same way.
    auto again = RunError(*l, h, {h.Source("3")});
    CHECK(again.error.code == Error::Code::kEnvironment);
    CHECK(again.error.message == f.error.message);
  }
  SUBCASE("crashing mid-batch") {
    auto w = MustStart({Update("crash", R"TS(
if (source === 500) { process.stderr.write('going down at 500\n'); process.exit(7); }
return [source];
)TS")});
    auto l = w->Get("crash/update");
    std::vector<Row> rows;
    for (int i = 0; i < 1000; ++i) rows.push_back(h.Source(std::to_string(i)));
    auto f = RunError(*l, h, rows);
    CHECK(f.error.code == Error::Code::kEnvironment);
    CHECK(f.row == -1);
    CHECK(Contains(f.error.message, "(exit status 7)"));
    CHECK(Contains(f.error.message, "going down at 500"));
  }
  SUBCASE("killed by a signal mid-batch") {
    auto w = MustStart({Update(
        "sig", "if (source === 3) process.kill(process.pid, 'SIGKILL'); return [source];")});
    auto f = RunError(*w->Get("sig/update"), h, {h.Source("1"), h.Source("2"), h.Source("3")});
    CHECK(f.error.code == Error::Code::kEnvironment);
    CHECK(Contains(f.error.message, "killed by signal 9"));
  }
  CHECK(Workers().empty());
}

TEST_CASE("lambda: node missing Node.js or esbuild is an environment error") {
  NodeOptions o = Options();
  o.node = "flowctl-test-no-such-node";
  auto e = StartError({Update("t", "return [];")}, o);
  CHECK(e.code == Error::Code::kEnvironment);
  CHECK(e.ExitCode() == kExitEnvironment);
  CHECK(e.message ==
        "Node.js (`flowctl-test-no-such-node`) is not installed; install it (e.g. apt install "
        "nodejs) to run "
        "nodeJS lambdas");
  o.node = "/nonexistent/bin/node";
  CHECK(StartError({Update("t", "return [];")}, o).code == Error::Code::kEnvironment);

  o = Options();
  o.esbuild = "/nonexistent/esbuild";
  e = StartError({Update("t", "return [];")}, o);
  CHECK(e.code == Error::Code::kEnvironment);
  CHECK(Contains(e.message,
                 "esbuild is not installed at /nonexistent/esbuild: run scripts/setup.sh"));

  o = Options();
  o.dependencies = {{"is-odd", "3.0.1"}};
  o.cache_dir = CacheDir() + "/no-npm";
  o.npm = "flowctl-test-no-such-npm";
  e = StartError({Update("t", "return [];")}, o);
  CHECK(e.code == Error::Code::kEnvironment);
  CHECK(e.message ==
        "npm (`flowctl-test-no-such-npm`) is not installed; install it (e.g. apt install npm) to "
        "install the "
        "nodeDependencies is-odd@3.0.1");
}

TEST_CASE("lambda: node global names of dependencies") {
  CHECK(lambda::NodeGlobalName("moment") == "moment");
  CHECK(lambda::NodeGlobalName("is-odd") == "is_odd");
  CHECK(lambda::NodeGlobalName("lodash.chunk") == "lodash_chunk");
  CHECK(lambda::NodeGlobalName("@scope/x-y") == "x_y");
  CHECK(lambda::NodeGlobalName("2d-array") == "_2d_array");
  CHECK(lambda::NodeGlobalName("$x") == "$x");
}

// Needs the npm registry (once per cache directory).
TEST_CASE("lambda: node dependencies are installed and usable by require and as globals") {
  NodeOptions o = Options();
  o.dependencies = {{"is-odd", "3.0.1"}};
  Harness h;
  auto start = std::chrono::steady_clock::now();
  auto w = NodeWorker::Start({Update("odd", R"TS(
const viaRequire = require('is-odd');
return [{ n: source, odd: viaRequire(source), global: is_odd(source) }];
)TS")},
                             o);
  REQUIRE_MESSAGE(w.ok(),
                  "npm install of is-odd@3.0.1 failed (does this machine reach the npm registry?): "
                      << w.error().message);
  auto first = std::chrono::steady_clock::now() - start;
  auto l = w.value()->Get("odd/update");
  auto texts = Run(*l, h, {h.Source("3"), h.Source("4")});
  CHECK(texts[0] == R"([{"n":3,"odd":true,"global":true}])");
  CHECK(texts[1] == R"([{"n":4,"odd":false,"global":false}])");
  // The package throws for non-integers: the lambda's error.
  auto f = RunError(*l, h, {h.Source("1.5")});
  CHECK(f.error.code == Error::Code::kUser);
  CHECK(Contains(f.error.message, "threw: expected an integer"));

  // Installed once: the next start does not run npm (even one that does not exist).
  o.npm = "flowctl-test-no-such-npm";
  start = std::chrono::steady_clock::now();
  auto again = MustStart({Update("odd", "return [is_odd(source)];")}, o);
  CHECK(Run(*again->Get("odd/update"), h, {h.Source("7")})[0] == "[true]");
  MESSAGE("first start with npm install: "
          << std::chrono::duration<double>(first).count() << " s, cached start: "
          << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
          << " s");

  // A package that does not exist: npm's error, as an environment error.
  NodeOptions bad = Options();
  bad.dependencies = {{"flowctl-test-no-such-package-4e1f", "1.0.0"}};
  auto e = StartError({Update("t", "return [];")}, bad);
  CHECK(e.code == Error::Code::kEnvironment);
  CHECK(Contains(
      e.message,
      "npm install of the nodeDependencies flowctl-test-no-such-package-4e1f@1.0.0 failed"));
  CHECK(Contains(e.message, "404"));
}

// Not run by default (doctest --no-skip runs it): the throughput of a trivial publish lambda.
TEST_CASE("lambda: node throughput of a trivial publish lambda" * doctest::skip()) {
  Harness h;
  auto w = MustStart(
      {Publish("p", "return [source];"),
       Publish("q", "if (register === previous) throw new Error('!'); return [source];")});
  // ~400-byte documents, dense in one allocator (as the runtime holds them; a Document per
  // row would spread them over 64 KiB chunks and measure cache misses).
  const int kDistinct = 4096;
  std::string text = "[";
  for (int i = 0; i < kDistinct; ++i) {
    text += fmt::format(
        R"({}{{"id":{},"customer":{{"id":"c-{}","name":"Customer number {}",)"
        R"("email":"customer{}@example.com","since":"2019-03-04"}},"items":[{{"sku":"SKU-{}",)"
        R"("qty":{},"price":{}.99,"title":"A thing"}},{{"sku":"SKU-{}","qty":1,"price":5.5,)"
        R"("title":"Another thing"}}],"total":{}.5,"currency":"EUR","region":"EU",)"
        R"("created":"2020-11-22T10:00:00Z","note":"a short note about this order",)"
        R"("tags":["x","y","z"],"paid":true}})",
        i ? "," : "", i, i % 97, i % 97, i % 97, i, i % 5, i % 50, i + 1, i * 3);
  }
  text += "]";
  const doc::Value* sources = h.Parse(text);
  const doc::Value* reg = h.Parse(R"({"count":3,"sum":12.5})");
  const doc::Value* prev = h.Parse(R"({"count":2,"sum":7})");
  std::vector<Row> rows;
  for (const auto& s : sources->GetArray()) rows.push_back(Row{&s, reg, prev, {}});
  std::string sample;
  doc::AppendJson(*rows[0].source, &sample);
  const int kTotal = 1000000;
  for (auto [id, batch] :
       std::vector<std::pair<std::string, int>>{{"p", 1024}, {"p", 4096}, {"q", 4096}}) {
    auto l = w->Get(id + "/publish");
    std::vector<Row> b(rows.begin(), rows.begin() + batch);
    lambda::Outputs out;
    double ours = CpuSeconds(getpid()), theirs = CpuSeconds(w->pid());
    auto start = std::chrono::steady_clock::now();
    for (int done = 0; done < kTotal; done += batch) {
      rapidjson::Document alloc_doc;
      auto r = l->Invoke(b, alloc_doc.GetAllocator(), &out);
      REQUIRE(r.ok());
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ours = CpuSeconds(getpid()) - ours;
    theirs = CpuSeconds(w->pid()) - theirs;
    MESSAGE(fmt::format(
        "{} docs of {} bytes{}, batches of {}: {:.2f} s, {:.0f} docs/s; CPU per document: "
        "{:.2f} us here, {:.2f} us in node ({:.0f} docs/s on one core)",
        kTotal, sample.size(), id == "q" ? " (and a register and previous of ~20 bytes)" : "",
        batch, s, kTotal / s, ours * 1e6 / kTotal, theirs * 1e6 / kTotal,
        kTotal / (ours + theirs)));
  }
}

// Issue 16: lambdas that never return.
TEST_CASE("lambda: node lambdas that never return time out, and the worker starts again") {
  Harness h;
  using std::chrono::milliseconds;
  NodeLambdaSpec spin = Update("spin", "if (source === 2) { while (true) {} } return [source];");
  spin.timeout = milliseconds(500);
  NodeLambdaSpec spin_publish = Publish("spinp", "while (true) {} return [];");
  spin_publish.timeout = milliseconds(400);
  NodeLambdaSpec boot{"bootstrap/0", "", false, "while (true) {}", "", 1};
  boot.timeout = milliseconds(300);
  NodeLambdaSpec waits{"bootstrap/1", "", false, "await new Promise((r) => setTimeout(r, 1e6));", "", 2};
  waits.timeout = milliseconds(300);
  auto w = MustStart({spin, spin_publish, boot, waits});
  auto l = w->Get("spin/update");
  pid_t first = w->pid();

  auto started = std::chrono::steady_clock::now();
  auto f = RunError(*l, h, {h.Source("1"), h.Source("2"), h.Source("3")});
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  CHECK(f.error.code == Error::Code::kUser);
  CHECK(f.error.message ==
        "lambda of transform `spin` (update) did not return within 0.5 s (the lambda timeout; set "
        "`lambdaTimeout` to allow longer), running a group of 3 documents starting with this one; its Node.js "
        "worker was killed and starts again on the next attempt");
  CHECK(f.row == 0);  // the first row of the chunk that was running
  CHECK(secs < 3);
  CHECK_FALSE(Exists(first));  // killed and reaped
  CHECK(w->pid() == -1);

  // The next invocation starts a new worker, which works.
  CHECK(Run(*l, h, {h.Source("1"), h.Source("3")}) == std::vector<std::string>{"[1]", "[3]"});
  CHECK(w->pid() > 0);
  CHECK(w->pid() != first);

  // A single row is named exactly; publish lambdas and bootstraps time out the same way.
  f = RunError(*l, h, {h.Source("2")});
  CHECK(Contains(f.error.message, "did not return within 0.5 s (the lambda timeout; set `lambdaTimeout` to allow "
                                  "longer); its Node.js worker was killed"));
  CHECK(f.row == 0);
  f = RunError(*w->Get("spinp/publish"), h, {h.Publish("1", "2", "3")});
  CHECK(Contains(f.error.message, "lambda of transform `spinp` (publish) did not return within 0.4 s"));
  f = RunError(*w->Get("bootstrap/0"), h, {Row{}});
  CHECK(Contains(f.error.message, "bootstrap lambda 1 did not finish within 0.3 s"));
  f = RunError(*w->Get("bootstrap/1"), h, {Row{}});
  CHECK(Contains(f.error.message, "bootstrap lambda 2 did not finish within 0.3 s"));
  CHECK(Run(*l, h, {h.Source("5")})[0] == "[5]");
  w.reset();
  l.reset();
  CHECK(Workers().empty());
}

TEST_CASE("lambda: node a stop request ends a lambda that never returns") {
  Harness h;
  auto w = MustStart({Update("spin", "while (true) {} return [];")});  // the default timeout, 30 s
  auto l = w->Get("spin/update");
  std::thread stopper([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    lambda::RequestStop();
  });
  auto started = std::chrono::steady_clock::now();
  auto f = RunError(*l, h, {h.Source("1")});
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  stopper.join();
  // Later invocations are refused at once while the stop holds.
  auto again = RunError(*l, h, {h.Source("1")});
  lambda::ResetStop();
  CHECK(f.error.code == Error::Code::kEnvironment);
  CHECK(f.error.message == "the lambda was interrupted: flowctl is stopping");
  CHECK(again.error.message == f.error.message);
  CHECK(secs < 1.5);
  CHECK(Workers().empty());  // killed
}

// The worker dies with the process that started it, even one killed by SIGKILL.
TEST_CASE("lambda: node workers never outlive their parent") {
  int report[2];
  REQUIRE(pipe(report) == 0);
  pid_t parent = fork();
  REQUIRE(parent >= 0);
  if (parent == 0) {
    close(report[0]);
    auto w = NodeWorker::Start({Update("spin", "while (true) {} return [];")}, Options());
    pid_t worker = w.ok() ? w.value()->pid() : -1;
    ssize_t n = write(report[1], &worker, sizeof worker);
    (void)n;
    if (w.ok()) {
      // Busy in a lambda that never returns, as a frozen flowctl would be.
      std::thread([l = w.value()->Get("spin/update")] {
        Harness h;
        lambda::Outputs out;
        (void)l->Invoke({h.Source("1")}, h.out_doc.GetAllocator(), &out);
      }).detach();
    }
    pause();
    _exit(0);
  }
  close(report[1]);
  pid_t worker = -1;
  REQUIRE(read(report[0], &worker, sizeof worker) == static_cast<ssize_t>(sizeof worker));
  close(report[0]);
  REQUIRE(worker > 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(Exists(worker));
  REQUIRE(kill(parent, SIGKILL) == 0);
  waitpid(parent, nullptr, 0);
  // The worker was the parent's child: now an orphan the kernel killed (and init reaps).
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    std::ifstream stat(fmt::format("/proc/{}/stat", worker));
    std::string line;
    gone = !std::getline(stat, line) || line.find(") Z ") != std::string::npos;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(gone);
}

TEST_CASE("lambda: node type-check places errors in bodies and reuses an unchanged result") {
  NodeOptions o = Options();
  o.tsc = FLOWCTL_SOURCE_DIR "/.deps/npm-runtime/node_modules/.bin/tsc";
  REQUIRE_MESSAGE(access(o.tsc.c_str(), X_OK) == 0,
                  "tsc is not installed at " << o.tsc << ": run scripts/setup.sh");
  const std::string declarations =
      "export type Order = { id: number; amount: number; note?: string };\n"
      "export type Total = { id?: number; total?: string; [k: string]: unknown };\n";
  auto typed = [](NodeLambdaSpec l) {
    l.source_type = "flow.Order";
    l.register_type = "unknown";
    l.output_type = "flow.Total";
    return l;
  };
  std::vector<NodeLambdaSpec> lambdas = {
      typed(Publish("fine", "return [{id: source.id, total: String(source.amount)}];")),
      // Line 2, column 28 of its body: the typo; no return at all is reported at line 1.
      typed(
          Publish("typo", "const id = source.id;\nreturn [{id, total: source.amont.toFixed(2)}];")),
      typed(Publish("noReturn", "console.log(source.note);")),
  };
  auto checked = TypeCheckNodeLambdas(lambdas, declarations, "unit-test-project", o);
  REQUIRE_MESSAGE(checked, checked.error().message);
  CHECK_FALSE(checked->cached);
  REQUIRE(checked->errors.size() == 2);
  const auto& typo = checked->errors[0];
  CHECK(typo.lambda == 1);
  CHECK(typo.line == 2);
  CHECK(typo.column == 28);
  CHECK(lambdas[1].body.substr(typo.offset, 5) == "amont");
  CHECK(typo.message == "Property 'amont' does not exist on type 'Order'. Did you mean 'amount'?");
  const auto& none = checked->errors[1];
  CHECK(none.lambda == 2);
  CHECK(none.line == 1);
  CHECK(none.offset == 0);
  CHECK_MESSAGE(none.message.find("no `return`") != std::string::npos, none.message);

  // The same text again: the result is reused, tsc does not run.
  auto again = TypeCheckNodeLambdas(lambdas, declarations, "unit-test-project", o);
  REQUIRE(again);
  CHECK(again->cached);
  CHECK(again->errors.size() == 2);

  // Fixed: no errors.
  lambdas[1] = typed(Publish("typo", "return [{id: source.id, total: source.amount.toFixed(2)}];"));
  lambdas.pop_back();
  auto fixed = TypeCheckNodeLambdas(lambdas, declarations, "unit-test-project", o);
  REQUIRE(fixed);
  CHECK_FALSE(fixed->cached);
  CHECK(fixed->errors.empty());

  o.tsc = "/nonexistent/tsc";
  auto missing = TypeCheckNodeLambdas(lambdas, declarations, "unit-test-project", o);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == Error::Code::kEnvironment);
  CHECK(missing.error().message.find("--no-type-check") != std::string::npos);
}
