// Internal to catalog/: the Checker behind CheckCatalog (check.h), declared here so that its
// checks live one subject a file: names, schemas, collections, captures and tests
// (check.cc), derivations (check_derivation.cc), materializations (check_materialization.cc)
// and dead-letter collections (check_dead_letters.cc). One Checker checks one catalog, on
// one thread. Not included outside catalog/.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/diagnostics.h"
#include "catalog/check.h"
#include "catalog/loader.h"
#include "catalog/spec.h"
#include "lambda/sqlite.h"
#include "schema/index.h"
#include "schema/shape.h"
#include "schema/validator.h"

namespace flow::catalog::checker {

using schema::Shape;
using ShapePtr = std::shared_ptr<Shape>;

class Checker {
 public:
  Checker(const Loaded& loaded, Built* out, Diagnostics* diags)
      : cat_(loaded.catalog), index_(loaded.index), out_(out), diags_(diags) {}

  void Run();

 private:
  void Error(const Where& w, const std::string& owner, std::string msg, std::string hint = {});

  std::vector<std::string> CollectionNames() const;

  // A collection name that must exist; reports it otherwise.
  const BuiltCollection* Need(const std::string& name, const Where& w, const std::string& owner,
                              const char* role);

  // ---- names -------------------------------------------------------------------------
  void CheckNames();

  // ---- schemas -----------------------------------------------------------------------
  bool Resolve(const SchemaSpec& s, const std::string& owner, schema::SchemaLoc* loc);

  // The canonical URL of a resolved schema: an inline schema's own URL, or the file's
  // URL with the JSON pointer of the schema within it.
  static std::string SchemaUrl(const SchemaSpec& s, const schema::SchemaLoc& loc);

  // ---- collections -------------------------------------------------------------------
  void CheckKeyLike(const BuiltCollection& bc, const std::string& ptr, const Where& w,
                    const std::string& owner, const std::string& what);

  void CheckCollection(const CollectionSpec& c);

  // ---- derivations -------------------------------------------------------------------
  std::shared_ptr<schema::Validator> Compile(const std::string& bundle);

  // Validates `doc` against `bundle`; returns "" or the formatted errors, and sets
  // `*at` (when given) to the document location of the first error.
  std::string Validate(const std::string& bundle, const doc::Node& n, std::string* at = nullptr);

  // The source position of byte `offset` of a scalar's value, for a single-line scalar or
  // a block scalar (`|`/`>`); other multi-line forms fall back to the scalar's start.
  Mark LocateInScalar(const Where& w, const std::string& value, size_t offset);

  // `shared`: the derivation's database with its sqlite bootstraps applied (null: none).
  // A sqlite lambda of a transform reading `source` (null when it is unknown): its query
  // compiles, and each of its parameters binds to a document it is given or to one of the
  // source's projections.
  void CheckSqlite(const LambdaSpec& l, const std::string& owner, lambda::SqliteDatabase* shared,
                   const BuiltCollection* source, bool update);

  // A database for the sqlite lambdas of derivation `d`, on which its sqlite bootstraps ran
  // (so that lambdas may read the tables they create), as they will when the task starts,
  // each bounded by its lambda timeout; null when it has none. A bootstrap that fails is an
  // error at the bootstrap.
  std::shared_ptr<lambda::SqliteDatabase> SqliteBootstraps(const DerivationSpec& d, const std::string& owner);

  // Files reachable from `url` through imports (including itself).
  const std::set<std::string>& Reachable(const std::string& url);

  void CheckRegister(const DerivationSpec& d, const std::string& owner, BuiltDerivation* out);
  void CheckShuffleTypes(const CollectionSpec& c, const BuiltDerivation& bd,
                         const std::vector<std::vector<uint8_t>>& shuffle_types);
  void CheckDerivation(const CollectionSpec& c);

  void CheckSelector(const BuiltCollection& c, const PartitionSelectorSpec& sel,
                     const std::string& owner);

  void CheckCycles();

  // ---- materializations --------------------------------------------------------------
  void CheckMaterializations();

  // ---- dead letters ------------------------------------------------------------------
  // A transform or binding that names `deadLetters`: what its dead letters say of it
  // (runtime/dead_letter.h), and the collections it may not name.
  struct DeadLetterUser {
    std::string task;       // the derivation's collection, or the materialization
    std::string task_kind;  // "derivation" or "materialization"
    std::string binding;    // the transform, or the table
    std::string source;     // its source collection
    std::string own;        // the derivation's collection; empty for a materialization
  };

  // Checks `name`, the dead-letter collection of `user` written at `w` (SPEC 9): it exists,
  // is captured, is neither the source nor the derivation's own collection, and takes a dead
  // letter as runtime/dead_letter.h writes it, key included. False when `name` is empty or
  // the collection is unusable (reported, unless its own checks failed).
  bool CheckDeadLetters(const std::string& name, const Where& w, const std::string& owner,
                        const DeadLetterUser& user);

  // A document that a chain of tasks carries from a transform or binding with `deadLetters`
  // back to its source can fail at every step and go round forever, each dead letter
  // wrapping the last (so the journals grow quadratically and `run --until-idle` never
  // idles). The graph: collections, with an edge source → derived collection for each
  // transform and source → dead-letter collection for each `deadLetters`. A way back from a
  // dead-letter edge to its source is an error at its `deadLetters` value, with the shortest
  // such cycle; a cycle found again from another of its dead-letter edges is not reported
  // again. Cycles of derivations alone are CheckCycles' business, and a `deadLetters` that
  // names its own source or a derived collection adds no edge (it is reported, once, there).
  void CheckDeadLetterCycles();

  // ---- captures ----------------------------------------------------------------------
  void CheckCaptures();

  // ---- tests -------------------------------------------------------------------------
  void CheckTests();

  const Catalog& cat_;
  const schema::Index& index_;
  Built* out_;
  Diagnostics* diags_;
  std::map<std::string, std::shared_ptr<schema::Validator>> validators_;
  std::map<std::string, std::string> compile_errors_;
  std::map<std::string, std::set<std::string>> reachable_;
};

}  // namespace flow::catalog::checker
