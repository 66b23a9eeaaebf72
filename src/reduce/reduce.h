// Reduction of documents by their schema's `reduce` annotations (SPEC section 2; exact
// semantics in docs/reductions.md). Reduction works in place on RapidJSON values that
// share one allocator: the right-hand document is consumed and its parts are moved into
// the left-hand one, so repeated reductions allocate little.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "doc/value.h"
#include "schema/annotations.h"

namespace flow::reduce {

class Reducer {
 public:
  explicit Reducer(std::shared_ptr<const schema::Annotations> annotations)
      : annotations_(std::move(annotations)) {}

  // lhs ⊕ rhs into `lhs`. `full`: lhs is fully reduced (reduce), else both are deltas
  // (combine). `rhs` is left in an unspecified state. `lhs` must come from `alloc`; so
  // must `rhs` unless `copy_rhs`, in which case the parts of rhs that are kept are copied
  // into `alloc` (rhs may then live in a scratch allocator that is cleared afterwards).
  // On a runtime type error returns a user error naming the location, the strategy and
  // both values; `lhs` is then unspecified too.
  Result<bool> Reduce(doc::Value& lhs, doc::Value& rhs, bool full, doc::Allocator& alloc,
                      bool copy_rhs = false) const;

  // absent ⊕ doc, fully reduced: every `set` location keeps only its `add`.
  Result<bool> Finalize(doc::Value& doc, doc::Allocator& alloc) const;
  // Whether Finalize can change a document: the schema has a `set` somewhere.
  bool Finalizes() const { return annotations_->AnySet(); }

  const schema::Annotations& annotations() const { return *annotations_; }

 private:
  std::shared_ptr<const schema::Annotations> annotations_;
};

}  // namespace flow::reduce
