#include "doc/value.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace flow::doc {
// The key to GenericValue's private raw setters: GenericValue befriends every
// GenericDocument, so a specialization for a type of ours may build values directly
// (member and element arrays allocated once at their final size, strings copied once).
struct CopyTag {};
}  // namespace flow::doc

namespace rapidjson {
template <>
class GenericDocument<UTF8<>, flow::doc::Allocator, flow::doc::CopyTag> {
 public:
  using V = flow::doc::Value;
  static void Copy(const V& from, V& to, flow::doc::Allocator& alloc) {
    switch (from.data_.f.flags) {
      case V::kObjectFlag: {
        SizeType n = from.data_.o.size;
        V::Member* m = n ? static_cast<V::Member*>(alloc.Malloc(n * sizeof(V::Member))) : nullptr;
        const V::Member* src = from.GetMembersPointer();
        for (SizeType i = 0; i < n; ++i) {
          new (&m[i]) V::Member();
          Copy(src[i].name, m[i].name, alloc);
          Copy(src[i].value, m[i].value, alloc);
        }
        to.data_.f.flags = V::kObjectFlag;
        to.data_.o.size = to.data_.o.capacity = n;
        to.SetMembersPointer(m);
        return;
      }
      case V::kArrayFlag: {
        SizeType n = from.data_.a.size;
        V* e = n ? static_cast<V*>(alloc.Malloc(n * sizeof(V))) : nullptr;
        const V* src = from.GetElementsPointer();
        for (SizeType i = 0; i < n; ++i) {
          new (&e[i]) V();
          Copy(src[i], e[i], alloc);
        }
        to.data_.f.flags = V::kArrayFlag;
        to.data_.a.size = to.data_.a.capacity = n;
        to.SetElementsPointer(e);
        return;
      }
      case V::kCopyStringFlag: {
        SizeType n = from.data_.s.length;
        char* str = static_cast<char*>(alloc.Malloc(n + 1));
        std::memcpy(str, from.GetStringPointer(), n + 1);
        to.data_.f.flags = V::kCopyStringFlag;
        to.data_.s.length = n;
        to.SetStringPointer(str);
        return;
      }
      default:  // null, booleans, numbers, inline and constant strings: the bits are the value
        to.data_ = from.data_;
        return;
    }
  }
  // Whether `v` holds no memory of its own: its bits are its whole value.
  static bool Flat(const V& v) {
    return v.data_.f.flags != V::kObjectFlag && v.data_.f.flags != V::kArrayFlag &&
           v.data_.f.flags != V::kCopyStringFlag;
  }
  static bool AssignInPlace(V& to, const V& from) {
    if (Flat(from) && Flat(to)) {
      to.data_ = from.data_;
      return true;
    }
    if (from.data_.f.flags == V::kCopyStringFlag) return AssignString(to, from);
    if (from.data_.f.flags != V::kObjectFlag || to.data_.f.flags != V::kObjectFlag) return false;
    SizeType n = from.data_.o.size;
    if (to.data_.o.size != n) return false;
    V::Member* t = to.GetMembersPointer();
    const V::Member* f = from.GetMembersPointer();
    for (SizeType i = 0; i < n; ++i) {
      if (!SameName(t[i].name, f[i].name) || !AssignInPlace(t[i].value, f[i].value)) return false;
    }
    return true;
  }
  // Member names are strings: compared by their bytes, inline (V's operator== is a call that
  // dispatches on both types first).
  static bool SameName(const V& a, const V& b) {
    return a.GetStringLength() == b.GetStringLength() &&
           std::memcmp(a.GetString(), b.GetString(), a.GetStringLength()) == 0;
  }
  static bool AssignString(V& to, const V& from) {
    if (to.data_.f.flags != V::kCopyStringFlag || !from.IsString()) return false;
    SizeType n = from.GetStringLength();
    if (n > to.data_.s.length) return false;
    // (The buffer is the string's own: Copy and RapidJSON's allocating setters never share one.)
    std::memcpy(const_cast<char*>(to.GetStringPointer()), from.GetString(), n);
    const_cast<char*>(to.GetStringPointer())[n] = '\0';
    to.data_.s.length = n;
    return true;
  }
};
}  // namespace rapidjson

namespace flow::doc {

Value Copy(const Value& v, Allocator& alloc) {
  Value out;
  rapidjson::GenericDocument<rapidjson::UTF8<>, Allocator, CopyTag>::Copy(v, out, alloc);
  return out;
}

bool AssignString(Value& to, const Value& from) {
  return rapidjson::GenericDocument<rapidjson::UTF8<>, Allocator, CopyTag>::AssignString(to, from);
}

bool AssignInPlace(Value& to, const Value& from) {
  return rapidjson::GenericDocument<rapidjson::UTF8<>, Allocator, CopyTag>::AssignInPlace(to, from);
}

namespace {

int TypeRank(const Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType: return 0;
    case rapidjson::kFalseType:
    case rapidjson::kTrueType: return 1;
    case rapidjson::kNumberType: return 2;
    case rapidjson::kStringType: return 3;
    case rapidjson::kArrayType: return 4;
    case rapidjson::kObjectType: return 5;
  }
  return 0;
}

int CompareNumbers(const Value& a, const Value& b) {
  if (IsInteger(a) && IsInteger(b)) {
    if (a.IsInt64() && b.IsInt64()) {
      int64_t x = a.GetInt64(), y = b.GetInt64();
      return x < y ? -1 : x > y;
    }
    // At least one exceeds int64, so it is a uint64 above INT64_MAX.
    if (!a.IsUint64()) return -1;  // a is negative
    if (!b.IsUint64()) return 1;
    uint64_t x = a.GetUint64(), y = b.GetUint64();
    return x < y ? -1 : x > y;
  }
  // long double holds every int64, uint64 and double exactly (x86-64 and AArch64).
  auto wide = [](const Value& v) -> long double {
    if (v.IsInt64()) return static_cast<long double>(v.GetInt64());
    if (v.IsUint64()) return static_cast<long double>(v.GetUint64());
    return static_cast<long double>(v.GetDouble());
  };
  long double x = wide(a), y = wide(b);
  return x < y ? -1 : x > y;
}

int CompareStrings(const Value& a, const Value& b) {
  size_t n = a.GetStringLength(), m = b.GetStringLength();
  int c = std::memcmp(a.GetString(), b.GetString(), std::min(n, m));
  if (c) return c < 0 ? -1 : 1;
  return n < m ? -1 : n > m;
}

}  // namespace

std::vector<const Value::Member*> SortedMembers(const Value& v) {
  std::vector<const Value::Member*> out;
  out.reserve(v.MemberCount());
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) out.push_back(&*it);
  std::stable_sort(out.begin(), out.end(), [](const Value::Member* x, const Value::Member* y) {
    return CompareStrings(x->name, y->name) < 0;
  });
  return out;
}

int Compare(const Value& a, const Value& b) {
  int ra = TypeRank(a), rb = TypeRank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 0: return 0;
    case 1: return a.GetBool() == b.GetBool() ? 0 : (a.GetBool() ? 1 : -1);
    case 2: return CompareNumbers(a, b);
    case 3: return CompareStrings(a, b);
    case 4: {
      rapidjson::SizeType n = a.Size(), m = b.Size();
      for (rapidjson::SizeType i = 0; i < n && i < m; ++i) {
        if (int c = Compare(a[i], b[i])) return c;
      }
      return n < m ? -1 : n > m;
    }
    default: {
      auto x = SortedMembers(a), y = SortedMembers(b);
      for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
        if (int c = CompareStrings(x[i]->name, y[i]->name)) return c;
        if (int c = Compare(x[i]->value, y[i]->value)) return c;
      }
      return x.size() < y.size() ? -1 : x.size() > y.size();
    }
  }
}

int CompareAt(const Value& a, const Value& b, const std::vector<Pointer>& ptrs) {
  static const Value kNull;
  for (const auto& p : ptrs) {
    const Value* x = Lookup(a, p);
    const Value* y = Lookup(b, p);
    if (int c = Compare(x ? *x : kNull, y ? *y : kNull)) return c;
  }
  return 0;
}

const Value* Lookup(const Value& v, const Pointer& ptr) {
  const Value* cur = &v;
  for (const auto& token : ptr.tokens()) {
    if (cur->IsObject()) {
      auto it = cur->FindMember(
          Value(rapidjson::StringRef(token.data(), static_cast<rapidjson::SizeType>(token.size()))));
      if (it == cur->MemberEnd()) return nullptr;
      cur = &it->value;
    } else if (cur->IsArray()) {
      auto index = Pointer::AsIndex(token);
      if (!index || *index >= cur->Size()) return nullptr;
      cur = &(*cur)[static_cast<rapidjson::SizeType>(*index)];
    } else {
      return nullptr;
    }
  }
  return cur;
}

Value* Create(Value& v, const Pointer& ptr, Allocator& alloc) {
  Value* cur = &v;
  const auto& tokens = ptr.tokens();
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& token = tokens[i];
    if (cur->IsNull()) {
      if (token == "-" || token == "0") {
        cur->SetArray();
      } else {
        cur->SetObject();
      }
    }
    if (cur->IsObject()) {
      Value name(rapidjson::StringRef(token.data(), static_cast<rapidjson::SizeType>(token.size())));
      auto it = cur->FindMember(name);
      if (it == cur->MemberEnd()) {
        cur->AddMember(Value(token.c_str(), static_cast<rapidjson::SizeType>(token.size()), alloc),
                       Value(), alloc);
        cur = &(cur->MemberEnd() - 1)->value;
      } else {
        cur = &it->value;
      }
    } else if (cur->IsArray()) {
      size_t index = cur->Size();
      if (token != "-") {
        auto parsed = Pointer::AsIndex(token);
        if (!parsed || *parsed > cur->Size()) return nullptr;
        index = *parsed;
      }
      if (index == cur->Size()) cur->PushBack(Value(), alloc);
      cur = &(*cur)[static_cast<rapidjson::SizeType>(index)];
    } else {
      return nullptr;
    }
  }
  return cur;
}

void AppendJson(const Value& v, std::string* out) {
  // RapidJSON's string buffer writes without per-character bounds checks.
  thread_local rapidjson::StringBuffer buf;
  buf.Clear();
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  out->append(buf.GetString(), buf.GetSize());
  if (buf.GetSize() > (1 << 20)) buf.ShrinkToFit();
}

const char* KindName(const Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType: return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType: return "boolean";
    case rapidjson::kNumberType: return IsInteger(v) ? "integer" : "number";
    case rapidjson::kStringType: return "string";
    case rapidjson::kArrayType: return "array";
    case rapidjson::kObjectType: return "object";
  }
  return "value";
}

}  // namespace flow::doc
