// Typed catalog specs: what the YAML sources say, parsed and located. Every spec records
// where it was written (`Where`) so later checks can point at it. Specs borrow doc::Nodes
// owned by their Catalog's SourceFiles (documents of tests, inline schemas, `initial`).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/diagnostics.h"
#include "doc/node.h"

namespace flow::catalog {

struct Where {
  std::string url;      // resource URL of the file
  std::string file;     // display name of the file
  Mark mark;
  std::string pointer;  // JSON pointer of the value within the file
};

struct SchemaSpec {
  bool present = false;
  // Absolute URL (with fragment) of the schema; for an inline schema its own URL,
  // `<file URL>?ptr=<pointer>` (schema::InlineSchemaUrl).
  std::string url;
  const doc::Node* inline_node = nullptr;  // set when written inline
  Where where;
};

struct ProjectionSpec {
  std::string field;
  std::string location;
  bool partition = false;
  Where where;
};

struct LambdaSpec {
  enum class Kind { kNodeJS, kSqlite, kRemote };
  Kind kind = Kind::kNodeJS;
  std::string body;  // TypeScript body, SQL query, or URL
  Where where;
  static const char* KindName(Kind k) {
    return k == Kind::kNodeJS ? "nodeJS" : k == Kind::kSqlite ? "sqlite" : "remote";
  }
};

// `partitions: {include: {field: [values]}, exclude: {...}}`.
struct PartitionSelectorSpec {
  bool present = false;
  struct Term {
    std::string field;
    std::vector<const doc::Node*> values;
    Where where;
  };
  std::vector<Term> include, exclude;
  Where where;
  const doc::Node* node = nullptr;
};

struct TransformSpec {
  std::string name;
  Where where;
  std::string source;
  Where source_where;
  SchemaSpec source_schema;
  PartitionSelectorSpec partitions;
  bool has_shuffle = false;
  std::vector<std::string> shuffle;
  std::vector<Where> shuffle_where;
  Where shuffle_list_where;
  std::string read_delay;  // as written
  int64_t read_delay_seconds = 0;
  Where read_delay_where;
  // `lambdaTimeout`: how long its update and publish lambdas may take per invocation
  // (0: the derivation's, else kDefaultLambdaTimeoutSeconds).
  int64_t lambda_timeout_seconds = 0;
  std::optional<LambdaSpec> update, publish;
  // `deadLetters`: the collection that receives the source documents this transform cannot
  // process, each with its error, instead of halting the derivation (SPEC 9). Empty: halt.
  std::string dead_letters;
  Where dead_letters_where;
};

struct DerivationSpec {
  Where where;
  SchemaSpec register_schema;        // absent: any value
  const doc::Node* register_initial = nullptr;  // absent: null
  bool register_malformed = false;  // had errors: `initial` is not checked against it
  Where initial_where;
  // `bootstrap`: lambdas run once, in order, each time the derivation's task starts.
  std::vector<LambdaSpec> bootstrap;
  std::vector<TransformSpec> transforms;
  // `lambdaTimeout`: the default of its transforms and the timeout of its bootstraps (0:
  // kDefaultLambdaTimeoutSeconds).
  int64_t lambda_timeout_seconds = 0;

  // The timeout of the bootstraps, and of the lambdas of `t` (one of `transforms`).
  int64_t BootstrapTimeoutSeconds() const;
  int64_t LambdaTimeoutSeconds(const TransformSpec& t) const;
};

// The lambda timeout without `lambdaTimeout` (SPEC 9), and the most it may be set to.
constexpr int64_t kDefaultLambdaTimeoutSeconds = 30;
constexpr int64_t kMaxLambdaTimeoutSeconds = 86400;

struct CollectionSpec {
  std::string name;
  Where where;
  SchemaSpec schema;
  std::vector<std::string> key;
  std::vector<Where> key_where;
  Where key_list_where;
  std::vector<ProjectionSpec> projections;
  std::optional<DerivationSpec> derivation;
  // `journals: {fragments: {...}}`: how the collection's journals become lake fragments.
  // Empty / zero: the defaults (gzip, 64 MiB, no age trigger outside `develop`).
  std::string fragment_codec;      // "gzip", "zstd" or "none"
  uint64_t fragment_length = 0;    // bytes
  int64_t flush_interval = 0;      // seconds
};

struct TargetSpec {
  std::string name;
  Where where;
  std::string kind;     // "sqlite" or "postgres"
  std::string address;  // sqlite: absolute path; postgres: connection URI
  std::string written;  // as written in the source
  // Declared by a materialization's inline form (SPEC 1.7) rather than under
  // `materializationTargets`: it has that materialization's name (which no other target
  // may have, names being unique across both), and only that materialization uses it.
  bool is_inline = false;
};

struct FieldSelectionSpec {
  bool present = false;
  std::vector<std::string> include, exclude;
  std::vector<Where> include_where, exclude_where;
};

struct MaterializationBindingSpec {
  std::string source;
  Where source_where;
  std::string table;
  Where table_where;
  FieldSelectionSpec fields;
  bool delta_updates = false;
  // `deadLetters`: the collection that receives the documents of keys this binding cannot
  // store, each with its error, instead of halting the materialization (SPEC 9). Empty: halt.
  std::string dead_letters;
  Where dead_letters_where;
  Where where;
};

struct MaterializationSpec {
  std::string name;
  Where where;
  std::string target;
  Where target_where;
  std::vector<MaterializationBindingSpec> bindings;
  // Written in the earliest preview form, `{collection, sqlite|postgres: {..., table}}`:
  // one binding into its own inline target (TargetSpec::is_inline), named like it.
  bool is_inline = false;
};

struct CaptureSpec {
  std::string name;
  Where where;
  std::string kind = "fileDrop";
  std::string path;     // absolute directory
  std::string format;   // json, csv or tsv
  struct Binding {
    std::string target;
    Where where;
  };
  std::vector<Binding> bindings;
};

struct TestStepSpec {
  enum class Kind { kIngest, kVerify };
  Kind kind = Kind::kIngest;
  std::string collection;
  Where collection_where;
  const doc::Node* documents = nullptr;
  Where documents_where;
  PartitionSelectorSpec partitions;
  Where where;
};

struct TestSpec {
  std::string name;
  Where where;
  std::vector<TestStepSpec> steps;
};

struct NodeDependencySpec {
  std::string package;
  std::string version;
  Where where;
};

// One source file of the catalog, as read.
struct SourceFile {
  std::string url;
  std::string display;
  std::string content;
  std::string kind;  // "catalog" or "schema"
  doc::Node root;
  std::vector<std::string> imports;  // resolved URLs
  std::vector<Mark> import_marks;    // where each import is written
};

struct Catalog {
  std::string root_url;
  std::vector<std::unique_ptr<SourceFile>> files;  // in load order; root first
  std::vector<CollectionSpec> collections;
  std::vector<TargetSpec> targets;
  std::vector<MaterializationSpec> materializations;
  std::vector<CaptureSpec> captures;
  std::vector<TestSpec> tests;
  std::vector<NodeDependencySpec> node_dependencies;

  const SourceFile* File(const std::string& url) const;
  const CollectionSpec* Collection(const std::string& name) const;
};

// Parses the `readDelay` grammar ("2h", "1h30m", "90s"; units s, m, h, d). Returns false
// on malformed input.
bool ParseDuration(const std::string& text, int64_t* seconds);

}  // namespace flow::catalog
