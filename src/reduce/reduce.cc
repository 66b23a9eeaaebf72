#include "reduce/reduce.h"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "base/strings.h"
#include "doc/node.h"

namespace flow::reduce {
namespace {

using doc::Allocator;
using doc::Value;
using schema::Applied;
using schema::ReduceSpec;
using schema::Strategy;

// A place in a document: a member's name (pointing into the document) or an array index.
struct Step {
  std::string_view name;
  size_t index = 0;
  bool is_index = false;
};

// A reduction error: "<strategy> at <location>: <detail>". The location is collected while
// the failure unwinds (Run::At), so that reducing keeps no path of its own.
struct Failure {
  std::string strategy, detail;
  std::vector<Step> path;  // innermost first
  std::string Message() const {
    std::string location;
    for (auto t = path.rbegin(); t != path.rend(); ++t) {
      location += "/" + (t->is_index ? std::to_string(t->index) : doc::Pointer::Escape(t->name));
    }
    return fmt::format("{} at {}: {}", strategy, location.empty() ? "/" : location, detail);
  }
};

std::string_view NameOf(const Value& v) { return {v.GetString(), v.GetStringLength()}; }

std::string Show(const Value& v) { return Truncate(doc::JsonText(v), 80); }

// A vector that keeps its first N items inline (objects are usually small).
template <typename T, size_t N>
class SmallVec {
 public:
  void push_back(T v) {
    if (n_ < N) {
      inline_[n_] = v;
    } else {
      if (n_ == N) heap_.assign(inline_, inline_ + N);
      heap_.push_back(v);
    }
    ++n_;
  }
  T* begin() { return n_ <= N ? inline_ : heap_.data(); }
  T* end() { return begin() + n_; }
  const T* begin() const { return n_ <= N ? inline_ : heap_.data(); }
  const T* end() const { return begin() + n_; }
  size_t size() const { return n_; }
  T& operator[](size_t i) { return begin()[i]; }
  T& back() { return begin()[n_ - 1]; }
  void pop_back() { resize_down(n_ - 1); }
  void resize_down(size_t n) {
    if (n_ > N && n <= N) std::copy(heap_.begin(), heap_.begin() + static_cast<std::ptrdiff_t>(n), inline_);
    if (n_ > N && n > N) heap_.resize(n);
    n_ = n;
  }

 private:
  T inline_[N];
  std::vector<T> heap_;
  size_t n_ = 0;
};

struct Part;
struct SetValue;
class SetOps;

class Run {
 public:
  Run(const schema::Annotations& a, Allocator& alloc, bool full, bool copy)
      : a_(a), alloc_(alloc), full_(full), copy_(copy) {}

  void Reduce(Value& l, Value& r, const Applied& ap);
  void Finalize(Value& v, const Applied& ap);

 private:
  [[noreturn]] void Fail(const ReduceSpec* spec, const std::string& what, const Value& l, const Value& r);
  // Moves `r` into `l`, or deep-copies it when the right-hand side lives in another
  // allocator (what fits into `l`'s own memory is written over it: no garbage). That relies
  // on `l`'s strings having buffers of their own, which nothing else points into: Copy,
  // the parsers and RapidJSON's copying constructors never share one between values.
  void Adopt(Value& l, Value& r) {
    if (copy_) {
      if (doc::AssignInPlace(l, r)) return;
      l = doc::Copy(r, alloc_);
    } else {
      l = std::move(r);
    }
  }
  // Takes `r` where there is no left-hand value.
  void Take(Value& l, Value& r, const Applied& ap) {
    if (full_ && ap.HasSet()) Finalize(r, ap);
    Adopt(l, r);
  }
  void Sum(Value& l, Value& r, const ReduceSpec* spec);
  void MergeObjects(Value& l, Value& r, const Applied& ap);
  // MergeObjects when r has l's members, in the order of the last such r of as many
  // members (ShapeMemo); false, having changed nothing, otherwise.
  bool MergeSameShape(Value& l, Value& r, const Applied& ap);
  void MergeArraysByIndex(Value& l, Value& r, const Applied& ap);
  void MergeArraysByKey(Value& l, Value& r, const Applied& ap, const std::vector<doc::Pointer>& key);
  void DeepMerge(Value& l, Value& r, const Applied& ap);
  void Set(Value& l, Value& r, const Applied& ap, const ReduceSpec* spec);
  void ParseSet(Value& v, SetValue* out, const char* side, const Value& l, const Value& r,
                const ReduceSpec* spec);
  Part UniteSetParts(const SetOps& ops, int form, const Applied& ap, const Part& x, Part& y,
                     const char* part_name, Value* y_part);
  // Runs `f`, which reduces at `step` below the current place: a Failure from it gets the
  // step added to its location (no cost unless something fails).
  template <typename F>
  static void At(Step step, const F& f) {
    try {
      f();
    } catch (Failure& failure) {
      failure.path.push_back(step);
      throw;
    }
  }

  const schema::Annotations& a_;
  Allocator& alloc_;
  bool full_;
  bool copy_;
};

void Run::Fail(const ReduceSpec* spec, const std::string& what, const Value& l, const Value& r) {
  throw Failure{std::string(schema::StrategyName(spec ? spec->strategy : Strategy::kLastWriteWins)),
                fmt::format("{}; left {}, right {}", what, Show(l), Show(r)),
                {}};
}

void Run::Reduce(Value& l, Value& r, const Applied& ap) {
  const ReduceSpec* spec = ap.Reduce();
  Strategy s = spec ? spec->strategy : Strategy::kLastWriteWins;
  switch (s) {
    case Strategy::kLastWriteWins:
      Take(l, r, ap);
      return;
    case Strategy::kFirstWriteWins:
      return;
    case Strategy::kAppend:
      if (!r.IsArray() && !r.IsNull()) Fail(spec, fmt::format("cannot append a {}", doc::KindName(r)), l, r);
      if (l.IsNull()) return;
      if (!l.IsArray()) Fail(spec, fmt::format("cannot append to a {}", doc::KindName(l)), l, r);
      if (r.IsNull()) {
        l.SetNull();
        return;
      }
      {
        Applied item;
        size_t base = l.Size();
        l.Reserve(l.Size() + r.Size(), alloc_);
        for (rapidjson::SizeType i = 0; i < r.Size(); ++i) {
          if (full_ && ap.HasSet()) {
            a_.Item(ap, base + i, r[i], &item);
            Finalize(r[i], item);
          }
          Value item_value;
          Adopt(item_value, r[i]);
          l.PushBack(item_value, alloc_);
        }
      }
      return;
    case Strategy::kSum:
      Sum(l, r, spec);
      return;
    case Strategy::kMinimize:
    case Strategy::kMaximize: {
      // Without a key, equal values are interchangeable and the right one wins (merging
      // them would change the compared value and break associativity).
      int c = spec->key.empty() ? doc::Compare(l, r) : doc::CompareAt(l, r, spec->key);
      if (c == 0 && !spec->key.empty()) {
        DeepMerge(l, r, ap);
      } else if (c == 0 || (c > 0) == (s == Strategy::kMinimize)) {
        Take(l, r, ap);
      }
      return;
    }
    case Strategy::kMerge:
      if (r.IsNull()) {
        l.SetNull();
      } else if (l.IsNull()) {
        if (!r.IsObject() && !r.IsArray()) Fail(spec, fmt::format("cannot merge a {}", doc::KindName(r)), l, r);
      } else if (l.IsObject() && r.IsObject()) {
        MergeObjects(l, r, ap);
      } else if (l.IsArray() && r.IsArray()) {
        if (spec->key.empty()) {
          MergeArraysByIndex(l, r, ap);
        } else {
          MergeArraysByKey(l, r, ap, spec->key);
        }
      } else {
        Fail(spec, fmt::format("cannot merge a {} with a {}", doc::KindName(l), doc::KindName(r)), l, r);
      }
      return;
    case Strategy::kSet:
      Set(l, r, ap, spec);
      return;
  }
}

void Run::Sum(Value& l, Value& r, const ReduceSpec* spec) {
  if (r.IsNull()) return;
  if (l.IsNull() && r.IsNumber()) {
    Adopt(l, r);
    return;
  }
  if (!l.IsNumber() || !r.IsNumber()) {
    const Value& bad = !r.IsNumber() ? r : l;
    Fail(spec, fmt::format("cannot sum a {}", doc::KindName(bad)), l, r);
  }
  if (doc::IsInteger(l) && doc::IsInteger(r)) {
    auto wide = [](const Value& v) {
      return v.IsInt64() ? static_cast<__int128>(v.GetInt64()) : static_cast<__int128>(v.GetUint64());
    };
    __int128 s = wide(l) + wide(r);
    if (s > static_cast<__int128>(UINT64_MAX) || s < static_cast<__int128>(INT64_MIN)) {
      Fail(spec, "integer overflow (the sum is outside the 64-bit range)", l, r);
    }
    if (s > INT64_MAX) {
      l.SetUint64(static_cast<uint64_t>(s));
    } else {
      l.SetInt64(static_cast<int64_t>(s));
    }
    return;
  }
  l.SetDouble(l.GetDouble() + r.GetDouble());
}

bool SortedByName(const Value& obj) {
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd() && it + 1 != obj.MemberEnd(); ++it) {
    if (CompareBytes(NameOf(it->name), NameOf((it + 1)->name)) >= 0) return false;
  }
  return true;
}

using Members = SmallVec<Value::Member*, 24>;

// The members of an object sorted by name; a duplicate name keeps its last value, as a
// JSON parser would.
Members SortedMembers(Value& obj) {
  Members out;
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) out.push_back(&*it);
  auto less = [](const Value::Member* a, const Value::Member* b) {
    return CompareBytes(NameOf(a->name), NameOf(b->name)) < 0;
  };
  if (out.size() <= 32) {
    // Insertion sort: stable, and without the buffer std::stable_sort allocates per call.
    Value::Member** v = out.begin();
    for (size_t i = 1; i < out.size(); ++i) {
      Value::Member* m = v[i];
      size_t j = i;
      for (; j > 0 && less(m, v[j - 1]); --j) v[j] = v[j - 1];
      v[j] = m;
    }
  } else {
    std::stable_sort(out.begin(), out.end(), less);
  }
  size_t n = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (n > 0 && NameOf(out[n - 1]->name) == NameOf(out[i]->name)) {
      out[n - 1] = out[i];
    } else {
      out[n++] = out[i];
    }
  }
  out.resize_down(n);
  return out;
}

// The order by name of the members of the last object of each member count that
// MergeObjects reduced in place into an object of the same names: documents of a collection
// usually list their members in one order, so the next one is checked against it instead of
// being sorted again. Per thread; checked name by name before it is used.
struct ShapeMemo {
  static constexpr size_t kMaxMembers = 32;
  uint32_t order[kMaxMembers + 1][kMaxMembers];  // [member count][k]: r's k-th member by name
  bool known[kMaxMembers + 1] = {};
};
thread_local ShapeMemo shape_memo;

bool SameName(const Value& a, const Value& b) { return SameBytes(NameOf(a), NameOf(b)); }

// Per member count and thread: the schemas each member of the last object MergeSameShape
// reduced falls under by its name (Annotations::Named), for the next object of the same
// names under the same parent schemas (at most 4), of the same Annotations (by id: an
// address may be reused).
struct NamedMemo {
  static constexpr size_t kMaxParents = 4;
  uint64_t annotations = 0;
  size_t parents = 0;  // how many of `parent` there are
  const schema::SchemaNode* parent[kMaxParents] = {};
  std::vector<std::string> names;
  std::vector<Applied> named;

  bool SameParent(const Applied& ap) const {
    if (ap.size() != parents) return false;
    for (size_t i = 0; i < parents; ++i) {
      if (ap[i] != parent[i]) return false;
    }
    return true;
  }
};
thread_local NamedMemo named_memo[ShapeMemo::kMaxMembers + 1];

bool Run::MergeSameShape(Value& l, Value& r, const Applied& ap) {
  size_t n = r.MemberCount();
  if (n == 0 || n > ShapeMemo::kMaxMembers || l.MemberCount() != n || !shape_memo.known[n]) return false;
  // A copy: reducing a member may reduce a nested object of as many members, which
  // remembers its own order in the same place.
  uint32_t order[ShapeMemo::kMaxMembers];
  std::memcpy(order, shape_memo.order[n], n * sizeof(uint32_t));
  auto* lm = &*l.MemberBegin();
  auto* rm = &*r.MemberBegin();
  // l's names strictly ascending (so unique) and each r's member by name at its place: r
  // holds exactly l's names, once each.
  for (size_t k = 0; k < n; ++k) {
    if (!SameName(lm[k].name, rm[order[k]].name)) return false;
    if (k > 0 && CompareBytes(NameOf(lm[k - 1].name), NameOf(lm[k].name)) >= 0) return false;
  }
  NamedMemo& nm = named_memo[n];
  bool named = ap.size() <= NamedMemo::kMaxParents;
  if (named && (nm.annotations != a_.id() || !nm.SameParent(ap) || nm.names.size() != n ||
                !std::equal(nm.names.begin(), nm.names.end(), lm, [](const std::string& x, const Value::Member& y) {
                  return SameBytes(x, NameOf(y.name));
                }))) {
    nm.annotations = a_.id();
    nm.parents = ap.size();
    for (size_t i = 0; i < ap.size(); ++i) nm.parent[i] = ap[i];
    nm.names.resize(n);
    nm.named.resize(n);
    for (size_t k = 0; k < n; ++k) {
      nm.names[k] = NameOf(lm[k].name);
      a_.Named(ap, nm.names[k], &nm.named[k]);
    }
  }
  // Every member's schemas first: reducing one may reduce a nested object of as many
  // members, which uses the same NamedMemo.
  Applied children[ShapeMemo::kMaxMembers];
  for (size_t k = 0; k < n; ++k) {
    Value::Member& m = rm[order[k]];
    if (named) {
      children[k] = nm.named[k];
      a_.ExpandNamed(m.value, &children[k]);
    } else {
      a_.Property(ap, NameOf(m.name), m.value, &children[k]);
    }
  }
  for (size_t k = 0; k < n; ++k) {
    Value::Member& m = rm[order[k]];
    At(Step{NameOf(m.name)}, [&] { Reduce(lm[k].value, m.value, children[k]); });
  }
  return true;
}

// Sorts the members of `obj` by name in place (stably, with no allocation); false, with
// them sorted, when a name repeats.
bool SortInPlace(Value& obj) {
  Value::Member* m = obj.MemberCount() ? &*obj.MemberBegin() : nullptr;
  size_t n = obj.MemberCount();
  for (size_t i = 1; i < n; ++i) {
    for (size_t j = i; j > 0 && CompareBytes(NameOf(m[j].name), NameOf(m[j - 1].name)) < 0; --j) {
      m[j].name.Swap(m[j - 1].name);
      m[j].value.Swap(m[j - 1].value);
    }
  }
  for (size_t i = 1; i < n; ++i) {
    if (SameName(m[i - 1].name, m[i].name)) return false;
  }
  return true;
}

void Run::MergeObjects(Value& l, Value& r, const Applied& ap) {
  if (MergeSameShape(l, r, ap)) return;
  Applied child;
  auto rs = SortedMembers(r);
  // An object of as many members as r, not yet sorted (the first document of a key, kept as
  // it came): sorted in place, which is what the merge below would build as a new object
  // (its members by name, a repeated name's last value) when the names are r's, without
  // the garbage of the old one (a few hundred bytes a key).
  if (l.MemberCount() == rs.size() && !SortedByName(l)) SortInPlace(l);
  // Fast path: l is sorted and has every property of r: reduce in place.
  if (SortedByName(l)) {
    SmallVec<Value*, 24> targets;
    auto it = l.MemberBegin();
    for (auto* m : rs) {
      std::string_view name = NameOf(m->name);
      int c = -1;
      while (it != l.MemberEnd() && (c = CompareBytes(NameOf(it->name), name)) < 0) ++it;
      if (c != 0) break;
      targets.push_back(&it->value);
    }
    if (targets.size() == rs.size()) {
      size_t n = rs.size();
      if (n == r.MemberCount() && n == l.MemberCount() && n <= ShapeMemo::kMaxMembers) {
        for (size_t k = 0; k < n; ++k)
          shape_memo.order[n][k] = static_cast<uint32_t>(rs[k] - &*r.MemberBegin());
        shape_memo.known[n] = true;
      }
      for (size_t k = 0; k < rs.size(); ++k) {
        a_.Property(ap, NameOf(rs[k]->name), rs[k]->value, &child);
        At(Step{NameOf(rs[k]->name)}, [&] { Reduce(*targets[k], rs[k]->value, child); });
      }
      return;
    }
  }
  auto ls = SortedMembers(l);
  Value out(rapidjson::kObjectType);
  size_t i = 0, j = 0;
  while (i < ls.size() || j < rs.size()) {
    int c = i == ls.size() ? 1 : j == rs.size() ? -1 : CompareBytes(NameOf(ls[i]->name), NameOf(rs[j]->name));
    if (c < 0) {
      out.AddMember(ls[i]->name, ls[i]->value, alloc_);
      ++i;
    } else {
      Value::Member* m = rs[j];
      a_.Property(ap, NameOf(m->name), m->value, &child);
      At(Step{NameOf(m->name)}, [&] {
        if (c == 0) {
          Reduce(ls[i]->value, m->value, child);
          out.AddMember(ls[i]->name, ls[i]->value, alloc_);
          ++i;
        } else {
          Value taken;
          Take(taken, m->value, child);
          Value name;
          Adopt(name, m->name);
          out.AddMember(name, taken, alloc_);
        }
      });
      ++j;
    }
  }
  l = std::move(out);
}

void Run::MergeArraysByIndex(Value& l, Value& r, const Applied& ap) {
  Applied item;
  rapidjson::SizeType n = l.Size();
  for (rapidjson::SizeType i = 0; i < r.Size(); ++i) {
    a_.Item(ap, i, r[i], &item);
    At(Step{{}, i, true}, [&] {
      if (i < n) {
        Reduce(l[i], r[i], item);
      } else {
        Value taken;
        Take(taken, r[i], item);
        l.PushBack(taken, alloc_);
      }
    });
  }
}

void Run::MergeArraysByKey(Value& l, Value& r, const Applied& ap, const std::vector<doc::Pointer>& key) {
  Applied item;
  Value out(rapidjson::kArrayType);
  out.Reserve(l.Size() + r.Size(), alloc_);
  rapidjson::SizeType i = 0, j = 0;
  while (i < l.Size() || j < r.Size()) {
    int c = i == l.Size() ? 1 : j == r.Size() ? -1 : doc::CompareAt(l[i], r[j], key);
    if (c < 0) {
      out.PushBack(l[i++], alloc_);
      continue;
    }
    a_.Item(ap, j, r[j], &item);
    At(Step{{}, j, true}, [&] {
      if (c == 0) {
        Reduce(l[i], r[j], item);
        out.PushBack(l[i++], alloc_);
      } else {
        Value taken;
        Take(taken, r[j], item);
        out.PushBack(taken, alloc_);
      }
    });
    ++j;
  }
  l = std::move(out);
}

void Run::DeepMerge(Value& l, Value& r, const Applied& ap) {
  if (l.IsObject() && r.IsObject()) {
    MergeObjects(l, r, ap);
  } else if (l.IsArray() && r.IsArray()) {
    MergeArraysByIndex(l, r, ap);
  } else {
    Take(l, r, ap);
  }
}

// ---- set ---------------------------------------------------------------------------

// One part (add, intersect or remove) of a set instruction: its members in order.
struct Part {
  bool present = false;
  std::vector<Value*> names;   // map form: member names (parallel to values)
  std::vector<Value*> values;  // map form: member values; array form: items
};

struct SetValue {
  Part add, intersect, remove;
  int form = 0;  // from non-empty parts: 0 unknown, 1 map, 2 array
  int hint = 0;  // from empty parts, which fit either form
};

class SetOps {
 public:
  SetOps(const ReduceSpec* spec, int form) : spec_(spec), form_(form) {}

  int Compare(const Part& x, size_t i, const Part& y, size_t j) const {
    if (form_ == 1) return NameOf(*x.names[i]).compare(NameOf(*y.names[j]));
    return spec_->key.empty() ? doc::Compare(*x.values[i], *y.values[j])
                              : doc::CompareAt(*x.values[i], *y.values[j], spec_->key);
  }

  void Sort(Part* p) const {
    std::vector<size_t> idx(p->values.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return Compare(*p, a, *p, b) < 0; });
    Part sorted;
    sorted.present = p->present;
    for (size_t i : idx) {
      if (form_ == 1) sorted.names.push_back(p->names[i]);
      sorted.values.push_back(p->values[i]);
    }
    *p = std::move(sorted);
  }

  void Keep(Part* out, const Part& x, size_t i) const {
    if (form_ == 1) out->names.push_back(x.names[i]);
    out->values.push_back(x.values[i]);
  }

  // x ∩ y (x's values) or x − y.
  Part Filter(const Part& x, const Part& y, bool keep_common) const {
    Part out;
    out.present = true;
    size_t i = 0, j = 0;
    while (i < x.values.size()) {
      int c = j == y.values.size() ? -1 : Compare(x, i, y, j);
      if (c < 0) {
        if (!keep_common) Keep(&out, x, i);
        ++i;
      } else if (c > 0) {
        ++j;
      } else {
        if (keep_common) Keep(&out, x, i);
        ++i;
      }
    }
    return out;
  }

  const ReduceSpec* spec_;
  int form_;
};

// One side of a set instruction, `v` (`side`: "left" or "right"), read into `out`; `l` and
// `r` are both sides, for messages.
void Run::ParseSet(Value& v, SetValue* out, const char* side, const Value& l, const Value& r,
                   const ReduceSpec* spec) {
  if (!v.IsObject()) {
    Fail(spec,
         fmt::format("malformed set: the {} side is a {}, not an object of add/intersect/remove",
                     side, doc::KindName(v)),
         l, r);
  }
  for (auto& m : v.GetObject()) {
    std::string_view name = NameOf(m.name);
    Part* p = name == "add"         ? &out->add
              : name == "intersect" ? &out->intersect
              : name == "remove"    ? &out->remove
                                    : nullptr;
    if (!p) {
      Fail(spec,
           fmt::format("malformed set: unknown property `{}` (a set has add, intersect and remove)",
                       name),
           l, r);
    }
    int form = m.value.IsObject() ? 1 : m.value.IsArray() ? 2 : 0;
    if (form == 0)
      Fail(spec, fmt::format("malformed set: `{}` must be an object or an array", name), l, r);
    bool empty = form == 1 ? m.value.MemberCount() == 0 : m.value.Empty();
    if (empty) {
      out->hint = form;
    } else {
      if (out->form && out->form != form) {
        Fail(spec,
             fmt::format("malformed set: `{}` must be {} like the other parts", name,
                         out->form == 2 ? "an array" : "an object"),
             l, r);
      }
      out->form = form;
    }
    p->present = true;
    if (form == 1) {
      for (auto& mm : m.value.GetObject()) {
        p->names.push_back(&mm.name);
        p->values.push_back(&mm.value);
      }
    } else {
      for (auto& item : m.value.GetArray()) p->values.push_back(&item);
    }
  }
}

// Union of x and y: common members deep-reduced (x.v ⊕ y.v) under y's annotations at
// /<part>/<member>; y-only members taken.
Part Run::UniteSetParts(const SetOps& ops, int form, const Applied& ap, const Part& x, Part& y,
                        const char* part_name, Value* y_part) {
  Part out;
  out.present = true;
  Applied part_ap, member;
  static const Value kNull;
  a_.Property(ap, part_name, y_part ? *y_part : kNull, &part_ap);
  At(Step{part_name}, [&] {
    size_t i = 0, j = 0;
    while (i < x.values.size() || j < y.values.size()) {
      int c = i == x.values.size() ? 1 : j == y.values.size() ? -1 : ops.Compare(x, i, y, j);
      if (c < 0) {
        ops.Keep(&out, x, i++);
        continue;
      }
      Step step{{}, j, true};
      if (form == 1) {
        a_.Property(part_ap, NameOf(*y.names[j]), *y.values[j], &member);
        step = Step{NameOf(*y.names[j])};
      } else {
        a_.Item(part_ap, j, *y.values[j], &member);
      }
      At(step, [&] {
        if (c == 0) {
          Reduce(*x.values[i], *y.values[j], member);
          ops.Keep(&out, x, i++);
        } else {
          if (full_ && member.HasSet()) Finalize(*y.values[j], member);
          ops.Keep(&out, y, j);
        }
      });
      ++j;
    }
  });
  return out;
}

void Run::Set(Value& l, Value& r, const Applied& ap, const ReduceSpec* spec) {
  SetValue L, R;
  ParseSet(l, &L, "left", l, r, spec);
  ParseSet(r, &R, "right", l, r, spec);
  if (L.form && R.form && L.form != R.form) {
    Fail(spec, "malformed set: one side uses objects and the other arrays", l, r);
  }
  // Empty parts fit either form; the leftmost one decides when nothing else does. With no
  // part on either side the result is the empty instruction `{}`.
  int form = R.form ? R.form : L.form ? L.form : L.hint ? L.hint : R.hint;
  if (!form) {
    l.SetObject();
    return;
  }
  SetOps ops(spec, form);
  for (Part* p : {&L.add, &L.intersect, &L.remove, &R.add, &R.intersect, &R.remove}) ops.Sort(p);

  auto part_value = [&](Value& v, const char* name) -> Value* {
    auto it = v.FindMember(name);
    return it == v.MemberEnd() ? nullptr : &it->value;
  };

  Part add, intersect, remove;
  if (R.intersect.present) {
    Part kept = ops.Filter(L.add, R.intersect, true);
    add = UniteSetParts(ops, form, ap, kept, R.add, "add", part_value(r, "add"));
    if (!full_) intersect = L.intersect.present ? ops.Filter(L.intersect, R.intersect, true)
                                                : ops.Filter(R.intersect, L.remove, false);
  } else {
    Part kept = ops.Filter(L.add, R.remove, false);
    add = UniteSetParts(ops, form, ap, kept, R.add, "add", part_value(r, "add"));
    if (!full_) {
      if (L.intersect.present) {
        intersect = ops.Filter(L.intersect, R.remove, false);
      } else if (L.remove.present || R.remove.present) {
        remove =
            UniteSetParts(ops, form, ap, L.remove, R.remove, "remove", part_value(r, "remove"));
      }
    }
  }

  auto build = [&](const Part& p) {
    Value v(form == 1 ? rapidjson::kObjectType : rapidjson::kArrayType);
    if (form == 1) {
      for (size_t i = 0; i < p.values.size(); ++i) v.AddMember(*p.names[i], *p.values[i], alloc_);
    } else {
      v.Reserve(static_cast<rapidjson::SizeType>(p.values.size()), alloc_);
      for (Value* item : p.values) v.PushBack(*item, alloc_);
    }
    return v;
  };
  Value out(rapidjson::kObjectType);
  out.AddMember("add", build(add), alloc_);
  if (intersect.present) out.AddMember("intersect", build(intersect), alloc_);
  if (remove.present) out.AddMember("remove", build(remove), alloc_);
  // Members taken from the right-hand side may live in its allocator.
  Adopt(l, out);
}

void Run::Finalize(Value& v, const Applied& ap) {
  if (!ap.HasSet()) return;
  const ReduceSpec* spec = ap.Reduce();
  if (spec && spec->strategy == Strategy::kSet) {
    Value absent(rapidjson::kObjectType);
    // absent ⊕f v: a reduction into an empty set.
    bool saved = full_;
    full_ = true;
    Set(absent, v, ap, spec);
    full_ = saved;
    v = std::move(absent);
    return;
  }
  Applied child;
  if (v.IsObject()) {
    for (auto& m : v.GetObject()) {
      a_.Property(ap, NameOf(m.name), m.value, &child);
      At(Step{NameOf(m.name)}, [&] { Finalize(m.value, child); });
    }
  } else if (v.IsArray()) {
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      a_.Item(ap, i, v[i], &child);
      At(Step{{}, i, true}, [&] { Finalize(v[i], child); });
    }
  }
}

}  // namespace

Result<bool> Reducer::Reduce(Value& lhs, Value& rhs, bool full, Allocator& alloc, bool copy_rhs) const {
  Run run(*annotations_, alloc, full, copy_rhs);
  Applied ap;
  annotations_->Root(rhs, &ap);
  try {
    run.Reduce(lhs, rhs, ap);
  } catch (const Failure& f) {
    return Error::User(f.Message());
  }
  return true;
}

Result<bool> Reducer::Finalize(Value& doc, Allocator& alloc) const {
  if (!Finalizes()) return true;
  Run run(*annotations_, alloc, true, false);
  Applied ap;
  annotations_->Root(doc, &ap);
  if (!ap.HasSet()) return true;
  try {
    run.Finalize(doc, ap);
  } catch (const Failure& f) {
    return Error::User(f.Message());
  }
  return true;
}

}  // namespace flow::reduce
