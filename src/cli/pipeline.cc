#include "cli/pipeline.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "base/log.h"
#include "base/strings.h"
#include "cli/output.h"
#include "lambda/lambda.h"
#include "materialize/driver.h"
#include "store/codec.h"

namespace flow::cli {
namespace {

constexpr int kMaxFailuresUntilIdle = 4;

// The JSON text of the catalog node `w` points at ("" when it does not resolve).
std::string NodeText(const catalog::Catalog& c, const catalog::Where& w) {
  const catalog::SourceFile* f = c.File(w.url);
  if (!f) return "";
  std::string why;
  auto ptr = doc::Pointer::Parse(w.pointer, &why);
  if (!ptr) return "";
  const doc::Node* n = f->root.At(*ptr);
  // A collection's place is its `name`: the spec is the object holding it.
  if (n && n->is_string() && w.pointer.size() > 5 && w.pointer.compare(w.pointer.size() - 5, 5, "/name") == 0) {
    auto parent = doc::Pointer::Parse(w.pointer.substr(0, w.pointer.size() - 5), &why);
    if (parent) n = f->root.At(*parent);
  }
  return n ? n->ToJsonText() : "";
}

std::string Digest(const std::vector<std::string>& parts) {
  store::Sha1 sha;
  for (const auto& p : parts) {
    sha.Update(fmt::format("{}:", p.size()));
    sha.Update(p);
  }
  return sha.HexDigest();
}

// A running task's state: "back-filling" while more than 1 MiB behind, else "running".
const char* Moving(const runtime::ReadProgress& p) {
  return p.total - p.read > (1 << 20) ? "back-filling" : "running";
}

int64_t WallNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::map<std::string, std::string> TaskFingerprints(const CheckedCatalog& checked) {
  const catalog::Catalog& c = checked.loaded->catalog;
  const catalog::Built& built = checked.built;
  std::map<std::string, std::string> out;
  std::string deps;
  for (const auto& d : c.node_dependencies) deps += d.package + "@" + d.version + ";";
  for (const auto& bd : built.derivations) {
    const catalog::CollectionSpec& spec = *bd.collection;
    std::vector<std::string> parts{NodeText(c, spec.where), deps, bd.register_bundle, bd.register_initial};
    if (const auto* bc = built.Collection(spec.name)) parts.push_back(bc->bundle);
    for (const auto& bt : bd.transforms) {
      parts.push_back(bt.source_schema_bundle);
      // Lambdas bind the source's projections (`$field` in SQLite) and read its documents.
      if (const auto* source = built.Collection(bt.spec->source)) {
        parts.push_back(source->bundle);
        for (const auto& p : source->projections) parts.push_back(p.field + "=" + p.location);
      }
      std::string shuffle;
      for (const auto& s : bt.shuffle) shuffle += s + ";";
      parts.push_back(shuffle);
      // Dead letters are validated against their collection's schema and partitioned by it.
      if (const auto* dead = built.Collection(bt.dead_letters))
        parts.push_back("dead:" + dead->bundle);
    }
    out["derivation:" + spec.name] = Digest(parts);
  }
  for (const auto& m : c.materializations) {
    std::vector<std::string> parts{NodeText(c, m.where)};
    for (const auto& t : c.targets) {
      if (t.name == m.target) parts.push_back(t.kind + " " + t.address);
    }
    auto it = built.bindings.find(m.name);
    if (it != built.bindings.end()) {
      for (const auto& bb : it->second) {
        std::string fields;
        for (const auto& f : bb.fields) fields += f + ";";
        parts.push_back(fields);
        if (const auto* bc = built.Collection(bb.spec->source)) {
          parts.push_back(bc->bundle);
          for (const auto& p : bc->projections) parts.push_back(p.field + "=" + p.location);
        }
        if (const auto* dead = built.Collection(bb.dead_letters))
          parts.push_back("dead:" + dead->bundle);
      }
    }
    out["materialization:" + m.name] = Digest(parts);
  }
  return out;
}

struct Pipeline::Derive {
  std::string fingerprint;
  std::unique_ptr<runtime::DeriveTask> task;
  bool halted = false;
  bool stopped = false;  // interrupted by the command stopping (lambda::StopRequested)
  std::string error;
};

struct Pipeline::Target {
  std::shared_ptr<const runtime::Materialization> spec;
  std::string fingerprint;  // empty for one-off materializations
  bool one_off = false;
  std::unique_ptr<runtime::MaterializeTask> task;
  bool halted = false;
  int failures = 0;        // since the last commit (see StepTarget)
  uint64_t committed = 0;  // transactions `task` has committed
  std::chrono::steady_clock::time_point retry_at{};
  runtime::MaterializeStats done;  // of tasks dropped before
  std::string error;
};

Pipeline::Pipeline(store::Store* store, runtime::Stamper* stamper, Options options)
    : store_(store), stamper_(stamper), options_(std::move(options)) {
  if (!options_.now) options_.now = WallNanos;
}

Pipeline::~Pipeline() = default;

void Pipeline::Log(const std::string& line) {
  if (options_.log) {
    options_.log(line);
  } else {
    PrintLine(line);
  }
}

Result<bool> Pipeline::Apply(std::shared_ptr<const runtime::Plan> plan,
                             const std::map<std::string, std::string>& fingerprints) {
  auto fingerprint = [&](const std::string& key) {
    auto it = fingerprints.find(key);
    return it == fingerprints.end() ? std::string() : it->second;
  };
  std::vector<std::string> names;
  for (const auto& m : plan->materializations) names.push_back(m->name);
  for (const auto& want : options_.materializations) {
    if (std::find(names.begin(), names.end(), want) == names.end()) {
      std::string hint = DidYouMean(want, names);
      return Error::User(fmt::format("no materialization `{}` in the catalog{}", want, hint.empty() ? "" : "; " + hint));
    }
  }

  // Derivations: keep the unchanged ones; open the others before touching the running set,
  // so that a derivation that cannot open leaves the previous plan running.
  std::map<std::string, std::unique_ptr<Derive>> old;
  for (auto& d : derivations_) old[d->task->derivation().collection->name] = std::move(d);
  std::vector<std::unique_ptr<Derive>> next;
  std::set<const Derive*> kept;
  for (const auto& spec : plan->derivations) {
    std::string fp = fingerprint("derivation:" + spec->collection->name);
    auto it = old.find(spec->collection->name);
    if (it != old.end() && !fp.empty() && it->second->fingerprint == fp && !it->second->halted) {
      kept.insert(it->second.get());
      next.push_back(std::move(it->second));
      old.erase(it);
      continue;
    }
    auto d = std::make_unique<Derive>();
    d->fingerprint = fp;
    d->task = std::make_unique<runtime::DeriveTask>(spec, store_, stamper_, options_.now);
    auto opened = d->task->Open();
    if (!opened) {
      // Put the kept ones back: nothing of the new plan is applied.
      derivations_.clear();
      for (auto& n : next) {
        if (kept.count(n.get())) derivations_.push_back(std::move(n));
      }
      for (auto& [name, o] : old) derivations_.push_back(std::move(o));
      return Error{opened.error().code,
                   fmt::format("derivation `{}`: {}", spec->collection->name, opened.error().message)};
    }
    flow::Log(LogLevel::kInfo, "task started", {{"task", spec->collection->name}, {"kind", "derivation"}});
    next.push_back(std::move(d));
  }
  derivations_ = std::move(next);

  // Materializations: unchanged ones keep their connection and position; the others are
  // (re)opened on their next step, from the checkpoint in the target.
  std::map<std::string, std::unique_ptr<Target>> old_targets;
  std::vector<std::unique_ptr<Target>> targets;
  for (auto& t : targets_) {
    if (t->one_off) {
      targets.push_back(std::move(t));
    } else {
      old_targets[t->spec->name] = std::move(t);
    }
  }
  for (const auto& m : plan->materializations) {
    if (!options_.materializations.empty() &&
        std::find(options_.materializations.begin(), options_.materializations.end(), m->name) ==
            options_.materializations.end()) {
      continue;
    }
    std::string fp = fingerprint("materialization:" + m->name);
    auto it = old_targets.find(m->name);
    if (it != old_targets.end() && !fp.empty() && it->second->fingerprint == fp && !it->second->halted) {
      targets.push_back(std::move(it->second));
      continue;
    }
    auto t = std::make_unique<Target>();
    t->spec = m;
    t->fingerprint = fp;
    flow::Log(LogLevel::kInfo, "task started", {{"task", m->name}, {"kind", "materialization"}});
    targets.push_back(std::move(t));
  }
  targets_ = std::move(targets);

  // Captures: reopened from the plan (their position is in the ledger).
  std::vector<std::unique_ptr<runtime::FileDropTask>> captures;
  for (const auto& c : plan->captures) {
    auto task = std::make_unique<runtime::FileDropTask>(c, store_, stamper_);
    auto opened = task->Open();
    if (!opened) {
      Log(fmt::format("error: capture `{}`: {}; it is stopped until the catalog changes", c->name,
                      opened.error().message));
      continue;
    }
    captures.push_back(std::move(task));
  }
  captures_ = std::move(captures);
  plan_ = std::move(plan);
  return true;
}

void Pipeline::AddMaterialization(std::shared_ptr<const runtime::Materialization> m) {
  auto t = std::make_unique<Target>();
  t->spec = std::move(m);
  t->one_off = true;
  targets_.push_back(std::move(t));
}

Result<bool> Pipeline::OpenTarget(Target& t) {
  auto driver = runtime::ConnectTarget(*t.spec);
  if (!driver) return driver.error();
  auto task = std::make_unique<runtime::MaterializeTask>(t.spec, store_, std::move(driver.value()),
                                                         stamper_);
  auto opened = task->Open();
  if (!opened) return opened.error();
  t.task = std::move(task);
  t.committed = 0;
  return true;
}

void Pipeline::StepTarget(Target& t, Round* round) {
  if (t.halted) return;
  if (!t.task && std::chrono::steady_clock::now() < t.retry_at) {
    round->waiting = true;
    return;
  }
  Result<uint64_t> n = uint64_t{0};
  if (!t.task) {
    auto o = OpenTarget(t);
    if (!o) n = o.error();
  }
  if (n && t.task) n = t.task->Step();
  if (n) {
    // Step is pipelined: its success may only mean that a transaction started, whose store
    // fails in the next Step. Only a commit, or a Step with nothing to store (everything
    // before it committed), ends a run of failures; else a target that fails every
    // transaction (a full disk) was retried every 0.5 s, and `run --until-idle` never ended.
    uint64_t committed = t.task ? t.task->stats().transactions : 0;
    if (n.value() == 0 || committed > t.committed) t.failures = 0;
    t.committed = committed;
    t.error.clear();
    round->progress = round->progress || n.value() > 0;
    return;
  }
  if (t.task) {
    const auto& st = t.task->stats();
    t.done.read += st.read;
    t.done.stored += st.stored;
    t.done.dead_letters += st.dead_letters;
    t.done.transactions += st.transactions;
  }
  t.task.reset();
  t.error = n.error().message;
  // Fenced off: another instance owns the target now; retrying would take it back.
  bool fenced = materialize::IsFencedOff(n.error());
  if (fenced || n.error().code != Error::Code::kEnvironment ||
      (options_.until_idle && ++t.failures >= kMaxFailuresUntilIdle)) {
    t.halted = true;
    std::string prefix = fmt::format("materialization `{}`", t.spec->name);
    bool named =
        n.error().message.compare(0, prefix.size(), prefix) == 0;  // the message names it already
    Log(fmt::format("error: {}{}", named ? "" : prefix + ": ", n.error().message));
    exit_code_ = std::max(exit_code_, n.error().ExitCode());
    return;
  }
  if (!options_.until_idle) ++t.failures;
  auto backoff = std::chrono::milliseconds(std::min(30000, 250 << std::min(t.failures, 7)));
  t.retry_at = std::chrono::steady_clock::now() + backoff;
  round->waiting = true;
  Log(fmt::format("warning: materialization `{}`: {}; retrying in {:.1f} s", t.spec->name, n.error().message,
                  backoff.count() / 1000.0));
}

Result<Pipeline::Round> Pipeline::Step() {
  Round round;
  for (auto& c : captures_) {
    uint64_t failed = c->stats().failed;
    auto n = c->Step();
    if (c->stats().failed != failed) {
      Log(fmt::format("error: {}", c->last_failure()));
      exit_code_ = std::max(exit_code_, static_cast<int>(kExitUserError));
    }
    if (!n) {
      Log(fmt::format("error: capture `{}`: {}", c->capture().name, n.error().message));
      if (store_->failed()) return n.error();
      round.waiting = true;  // retried on the next round
      continue;
    }
    round.progress = round.progress || n.value() > 0;
  }
  for (auto& d : derivations_) {
    if (d->halted || d->stopped) continue;
    auto n = d->task->Step();
    if (!n && lambda::StopRequested()) {
      // Interrupted because the command is stopping: not the derivation's failure. The task
      // rolled back and is not stepped again; it resumes from its checkpoint next time.
      d->stopped = true;
      continue;
    }
    if (!n) {
      // A failed derivation halts; the others keep running (SPEC 4).
      d->halted = true;
      d->error = n.error().message;
      Log(fmt::format("error: {}", n.error().message));
      if (store_->failed()) return n.error();  // the store refuses further work
      exit_code_ = std::max(exit_code_, n.error().ExitCode());
      continue;
    }
    round.progress = round.progress || n.value() > 0;
  }
  for (auto& t : targets_) StepTarget(*t, &round);
  return round;
}

std::vector<TaskStatus> Pipeline::Status() const {
  std::vector<TaskStatus> out;
  for (const auto& c : captures_) {
    TaskStatus s;
    s.kind = "capture";
    s.name = c->capture().name;
    s.state = c->stats().failed ? fmt::format("{} failed", c->stats().failed) : "running";
    s.in = c->stats().files;
    s.out = c->stats().documents;
    out.push_back(std::move(s));
  }
  for (const auto& d : derivations_) {
    TaskStatus s;
    s.kind = "derivation";
    s.name = d->task->derivation().collection->name;
    s.in = d->task->stats().read;
    s.out = d->task->stats().published;
    s.bytes_out = d->task->stats().bytes;
    s.dead_letters = d->task->stats().dead_letters;
    s.progress = d->task->progress();
    s.error = d->error;
    s.state = d->halted ? "halted" : Moving(s.progress);
    out.push_back(std::move(s));
  }
  for (const auto& t : targets_) {
    TaskStatus s;
    s.kind = "materialization";
    s.name = t->spec->name;
    s.in = t->done.read;
    s.out = t->done.stored;
    s.dead_letters = t->done.dead_letters;
    if (t->task) {
      s.in += t->task->stats().read;
      s.out += t->task->stats().stored;
      s.dead_letters += t->task->stats().dead_letters;
      s.progress = t->task->progress();
    }
    s.error = t->error;
    s.state = t->halted ? "halted" : !t->task ? (t->error.empty() ? "starting" : "retrying") : Moving(s.progress);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace flow::cli
