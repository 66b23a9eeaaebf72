#include "develop/build.h"

#include <fmt/format.h>

#include <string_view>

#include "base/url.h"
#include "runtime/fingerprint.h"

namespace flow::develop {

std::optional<Built> Builder::Build(const std::string& consequence, int* exit_code) {
  auto loaded = load_(consequence, exit_code);
  if (!loaded) return std::nullopt;
  Built b;
  b.source = std::make_unique<Source>(std::move(*loaded));
  const Source& src = *b.source;
  // Spools become lake fragments at least every 5 minutes while developing.
  for (auto& c : b.source->loaded->catalog.collections) {
    if (c.flush_interval == 0) c.flush_interval = 300;
  }
  std::map<std::string, std::map<std::string, std::shared_ptr<lambda::Lambda>>> used;
  runtime::NodeStarter cached = [&](const std::string& derivation,
                                    const std::vector<runtime::NodeLambda>& lambdas)
      -> Result<std::map<std::string, std::shared_ptr<lambda::Lambda>>> {
    std::string key = derivation;
    for (const auto& l : lambdas) {
      key += fmt::format("\n{}\n{}\n{}\n{}", l.id, l.transform, l.timeout.count(), l.body);
    }
    for (const auto& d : src.loaded->catalog.node_dependencies)
      key += "\n" + d.package + "@" + d.version;
    if (auto it = node_cache_.find(key); it != node_cache_.end()) return used[key] = it->second;
    auto started = src.node(derivation, lambdas);
    if (started) used[key] = started.value();
    return started;
  };
  auto plan = runtime::CompilePlan(src.loaded->catalog, src.built, cached);
  if (!plan) {
    log_(fmt::format("error: {}{}", plan.error().message, consequence));
    *exit_code = plan.error().ExitCode();
    return std::nullopt;
  }
  node_cache_ = std::move(used);
  b.plan = std::make_shared<runtime::Plan>(std::move(plan.value()));
  b.fingerprints = runtime::TaskFingerprints(src.loaded->catalog, src.built);
  for (const auto& f : src.loaded->catalog.files) {
    if (IsFileUrl(f->url)) b.files.push_back(FilePathOfUrl(f->url));
  }
  return b;
}

std::string ReloadSummary(const std::map<std::string, std::string>& before,
                          const std::map<std::string, std::string>& after,
                          const runtime::Backfill& backfilled) {
  auto backfills = [&](const std::string& key) {
    for (const auto& [prefix, names] :
         {std::pair{std::string_view("derivation:"), &backfilled.derivations},
          std::pair{std::string_view("materialization:"), &backfilled.materializations}}) {
      if (key.compare(0, prefix.size(), prefix) == 0 && names->count(key.substr(prefix.size()))) {
        return true;
      }
    }
    return false;
  };
  size_t kept = 0, changed = 0, refilled = 0, added = 0;
  for (const auto& [key, fp] : after) {
    auto old = before.find(key);
    if (old == before.end()) {
      ++added;
    } else if (backfills(key)) {
      ++refilled;
    } else if (old->second == fp) {
      ++kept;
    } else {
      ++changed;
    }
  }
  size_t removed = 0;
  for (const auto& [key, _] : before) removed += after.count(key) ? 0 : 1;
  return fmt::format(
      "applied the new catalog: {} task{} unchanged, {} restarted from {} checkpoint{}, {}{} new, "
      "{} removed",
      kept, kept == 1 ? "" : "s", changed, changed == 1 ? "its" : "their", changed == 1 ? "" : "s",
      refilled ? fmt::format("{} back-filled, ", refilled) : "", added, removed);
}

}  // namespace flow::develop
