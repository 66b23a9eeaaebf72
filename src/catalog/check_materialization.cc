#include "catalog/checker.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <tuple>

#include "base/strings.h"

namespace flow::catalog::checker {

void Checker::CheckMaterializations() {
  // Inline targets (SPEC 1.7) belong to their own materialization: `target:` names only
  // those declared under `materializationTargets`.
  std::vector<std::string> target_names;
  for (const auto& t : cat_.targets) {
    if (!t.is_inline) target_names.push_back(t.name);
  }
  // Tables by database: two targets (inline ones, typically) may name one database file.
  std::map<std::tuple<std::string, std::string, std::string>, const Where*> tables;
  for (const auto& m : cat_.materializations) {
    std::string owner = fmt::format("materialization `{}`", m.name);
    const TargetSpec* target = nullptr;
    for (const auto& t : cat_.targets) {
      if (t.name == m.target && t.is_inline == m.is_inline) target = &t;
    }
    if (!m.target.empty() && !target) {
      std::string hint = DidYouMean(m.target, target_names);
      Error(m.target_where, owner,
            fmt::format("materialization target `{}` does not exist", m.target),
            hint.empty() ? "declare it under `materializationTargets`" : hint);
    }
    auto& bindings = out_->bindings[m.name];
    for (const auto& b : m.bindings) {
      if (b.source.empty()) continue;
      const BuiltCollection* c = Need(b.source, b.source_where, owner, "source collection");
      if (target && !b.table.empty()) {
        // A malformed target has no address: its tables are told apart by its name.
        std::string db = target->address.empty() ? "\n" + target->name : target->address;
        auto [it, inserted] =
            tables.emplace(std::make_tuple(target->kind, db, b.table), &b.table_where);
        if (!inserted) {
          Error(b.table_where, owner,
                fmt::format("table `{}` of {} is already materialized at {}:{}:{}", b.table,
                            target->is_inline
                                ? fmt::format("{} database `{}`", target->kind, target->written)
                                : fmt::format("target `{}`", target->name),
                            it->second->file, it->second->mark.line, it->second->mark.col),
                "each table holds exactly one collection");
        }
      }
      bool dead_letters =
          CheckDeadLetters(b.dead_letters, b.dead_letters_where, owner,
                           DeadLetterUser{m.name, "materialization", b.table, b.source, ""});
      if (!c) continue;
      bindings.push_back(
          BuiltBinding{&b,
                       SelectFields(*c, b,
                                    [&](const Where& w, const std::string& msg,
                                        const std::string& hint) { Error(w, owner, msg, hint); }),
                       dead_letters ? b.dead_letters : std::string()});
    }
  }
}

}  // namespace flow::catalog::checker

namespace flow::catalog {

std::vector<std::string> SelectFields(const BuiltCollection& c, const MaterializationBindingSpec& b,
                                      const FieldError& Error) {
  std::vector<std::string> names;
  for (const auto& p : c.projections) names.push_back(p.field);
  auto known = [&](const std::string& f, const Where& w) {
    if (c.Field(f)) return true;
    // A location of several types has no default projection: say so, not "no field".
    for (const auto& l : c.locations) {
      if (!l.pointer.empty() && l.pointer.ToString() == "/" + f) {
        uint8_t t = l.shape->types & ~schema::kNull;
        if (t == schema::kObject || t == schema::kArray) {
          // Objects and arrays have no default projection, but a user projection of one is
          // a JSON column.
          Error(w,
                fmt::format(
                    "collection `{}` has no field `{}`: {} locations are not projected by default",
                    c.spec->name, f, t == schema::kObject ? "object" : "array"),
                fmt::format("add `projections: {{{}: {}}}` to the collection to store it as JSON",
                            f, l.pointer.ToString()));
          return false;
        }
        Error(w,
              fmt::format("field `{}` may be {}, which no single column type can hold", f,
                          schema::TypesToString(l.shape->types)),
              "narrow its schema to one type (null aside), or leave it in flow_document");
        return false;
      }
    }
    Error(w, fmt::format("collection `{}` has no field `{}`", c.spec->name, f),
          DidYouMean(f, names));
    return false;
  };
  std::vector<std::string> out = c.key_fields;
  std::set<std::string> chosen(out.begin(), out.end());
  std::set<std::string> exclude;
  for (size_t i = 0; i < b.fields.exclude.size(); ++i) {
    const auto& f = b.fields.exclude[i];
    if (!known(f, b.fields.exclude_where[i])) continue;
    if (std::find(c.key_fields.begin(), c.key_fields.end(), f) != c.key_fields.end() ||
        f == "flow_document") {
      Error(b.fields.exclude_where[i],
            fmt::format("field `{}` cannot be excluded: {}", f,
                        f == "flow_document" ? "every table stores the whole document"
                                             : "it is part of the collection key"),
            "");
    }
    exclude.insert(f);
  }
  auto several_types = [&](const BuiltProjection& p, std::string* type) {
    return !p.shape || !schema::SingleScalarType(p.shape->types, type);
  };
  if (b.fields.present && !b.fields.include.empty()) {
    for (size_t i = 0; i < b.fields.include.size(); ++i) {
      const auto& f = b.fields.include[i];
      if (!known(f, b.fields.include_where[i]) || f == "flow_document") continue;
      const BuiltProjection& p = *c.Field(f);
      std::string type;
      uint8_t t = p.shape ? p.shape->types & ~schema::kNull : 0;
      bool single = t == schema::kString || t == schema::kInteger || t == schema::kBoolean ||
                    t == (schema::kInteger | schema::kNumber) || t == schema::kNumber ||
                    t == schema::kObject || t == schema::kArray;
      if (!single) {
        Error(b.fields.include_where[i],
              fmt::format("field `{}` may be {}, which no single column type can hold", f,
                          p.shape ? schema::TypesToString(p.shape->types) : "anything"),
              "narrow its schema to one type (null aside), or leave it in flow_document");
        continue;
      }
      if (chosen.insert(f).second) out.push_back(f);
    }
  } else {
    // Defaults: user projections of a single scalar type, and default projections of
    // locations that no user projection names (so a location is one column).
    std::set<std::string> user_locations;
    for (const auto& p : c.projections) {
      if (p.user) user_locations.insert(p.location);
    }
    for (const auto& p : c.projections) {
      std::string type;
      if (p.field == "flow_document" || chosen.count(p.field) || exclude.count(p.field)) continue;
      if (several_types(p, &type)) continue;
      if (!p.user && user_locations.count(p.location)) continue;
      chosen.insert(p.field);
      out.push_back(p.field);
    }
  }
  out.erase(std::remove_if(out.begin(), out.end(),
                           [&](const std::string& f) {
                             return exclude.count(f) &&
                                    std::find(c.key_fields.begin(), c.key_fields.end(), f) ==
                                        c.key_fields.end();
                           }),
            out.end());
  out.push_back("flow_document");
  return out;
}

}  // namespace flow::catalog
