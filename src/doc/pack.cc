#include "doc/pack.h"

#include <bit>
#include <cmath>
#include <cstring>

namespace flow::doc {
namespace {

enum Tag : uint8_t {
  kEnd = 0x00,
  kNull = 0x01,
  kFalse = 0x02,
  kTrue = 0x03,
  kNumber = 0x04,
  kString = 0x05,
  kArray = 0x06,
  kObject = 0x07,
};
constexpr uint8_t kExact = 0x80, kBelow = 0x7f, kAbove = 0x81;

void PutU64(uint64_t x, std::string* out) {
  char b[8];
  for (int i = 7; i >= 0; --i) {
    b[i] = static_cast<char>(x & 0xff);
    x >>= 8;
  }
  out->append(b, 8);
}

bool GetU64(std::string_view* in, uint64_t* x) {
  if (in->size() < 8) return false;
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>((*in)[i]);
  in->remove_prefix(8);
  *x = v;
  return true;
}

uint64_t OrderedBits(double d) {
  if (d == 0) d = 0;  // -0 == 0
  uint64_t bits = std::bit_cast<uint64_t>(d);
  return (bits & (1ull << 63)) ? ~bits : bits | (1ull << 63);
}

double FromOrderedBits(uint64_t bits) {
  bits = (bits & (1ull << 63)) ? bits & ~(1ull << 63) : ~bits;
  return std::bit_cast<double>(bits);
}

void PackString(const char* s, size_t n, std::string* out) {
  out->push_back(static_cast<char>(kString));
  const char* end = s + n;
  while (s < end) {
    const char* zero = static_cast<const char*>(std::memchr(s, 0, static_cast<size_t>(end - s)));
    if (!zero) {
      out->append(s, static_cast<size_t>(end - s));
      break;
    }
    out->append(s, static_cast<size_t>(zero - s));
    out->push_back('\0');
    out->push_back(static_cast<char>(0xff));
    s = zero + 1;
  }
  out->push_back('\0');
  out->push_back('\x01');
}

void PackNumber(const Value& v, std::string* out) {
  out->push_back(static_cast<char>(kNumber));
  if (v.IsDouble() || !IsInteger(v)) {
    PutU64(OrderedBits(v.GetDouble()), out);
    out->push_back(static_cast<char>(kExact));
    return;
  }
  __int128 x = v.IsInt64() ? static_cast<__int128>(v.GetInt64()) : static_cast<__int128>(v.GetUint64());
  double d = static_cast<double>(x);  // nearest
  PutU64(OrderedBits(d), out);
  __int128 rem = x - static_cast<__int128>(d);
  if (rem == 0) {
    out->push_back(static_cast<char>(kExact));
  } else {
    out->push_back(static_cast<char>(rem < 0 ? kBelow : kAbove));
    PutU64(static_cast<uint64_t>(static_cast<int64_t>(rem)) ^ (1ull << 63), out);
  }
}

}  // namespace

void PackValue(const Value& v, std::string* out) {
  switch (v.GetType()) {
    case rapidjson::kNullType:
      out->push_back(static_cast<char>(kNull));
      return;
    case rapidjson::kFalseType:
      out->push_back(static_cast<char>(kFalse));
      return;
    case rapidjson::kTrueType:
      out->push_back(static_cast<char>(kTrue));
      return;
    case rapidjson::kNumberType:
      PackNumber(v, out);
      return;
    case rapidjson::kStringType:
      PackString(v.GetString(), v.GetStringLength(), out);
      return;
    case rapidjson::kArrayType:
      out->push_back(static_cast<char>(kArray));
      for (const auto& item : v.GetArray()) PackValue(item, out);
      out->push_back(static_cast<char>(kEnd));
      return;
    case rapidjson::kObjectType: {
      out->push_back(static_cast<char>(kObject));
      for (const auto* m : SortedMembers(v)) {
        PackString(m->name.GetString(), m->name.GetStringLength(), out);
        PackValue(m->value, out);
      }
      out->push_back(static_cast<char>(kEnd));
      return;
    }
  }
}

void PackKey(const Value& doc, const std::vector<Pointer>& key, std::string* out) {
  for (const auto& p : key) {
    const Value* v = Lookup(doc, p);
    if (v) {
      PackValue(*v, out);
    } else {
      out->push_back(static_cast<char>(kNull));
    }
  }
}

namespace {

bool UnpackString(std::string_view* in, std::string* s) {
  s->clear();
  while (!in->empty()) {
    char c = in->front();
    in->remove_prefix(1);
    if (c != '\0') {
      s->push_back(c);
      continue;
    }
    if (in->empty()) return false;
    char next = in->front();
    in->remove_prefix(1);
    if (next == '\x01') return true;
    if (next != static_cast<char>(0xff)) return false;
    s->push_back('\0');
  }
  return false;
}

}  // namespace

bool UnpackValue(std::string_view* in, Value* out, Allocator& alloc) {
  if (in->empty()) return false;
  uint8_t tag = static_cast<uint8_t>(in->front());
  in->remove_prefix(1);
  switch (tag) {
    case kNull: out->SetNull(); return true;
    case kFalse: out->SetBool(false); return true;
    case kTrue: out->SetBool(true); return true;
    case kNumber: {
      uint64_t bits;
      if (!GetU64(in, &bits) || in->empty()) return false;
      double d = FromOrderedBits(bits);
      uint8_t exact = static_cast<uint8_t>(in->front());
      in->remove_prefix(1);
      __int128 rem = 0;
      if (exact == kBelow || exact == kAbove) {
        uint64_t r;
        if (!GetU64(in, &r)) return false;
        rem = static_cast<int64_t>(r ^ (1ull << 63));
      } else if (exact != kExact) {
        return false;
      }
      if (std::trunc(d) == d && std::fabs(d) <= 1.8446744073709552e19) {
        __int128 x = static_cast<__int128>(d) + rem;
        if (x >= 0 && x <= static_cast<__int128>(UINT64_MAX)) {
          if (x <= INT64_MAX) {
            out->SetInt64(static_cast<int64_t>(x));
          } else {
            out->SetUint64(static_cast<uint64_t>(x));
          }
          return true;
        }
        if (x < 0 && x >= INT64_MIN) {
          out->SetInt64(static_cast<int64_t>(x));
          return true;
        }
      }
      out->SetDouble(d);
      return true;
    }
    case kString: {
      std::string s;
      if (!UnpackString(in, &s)) return false;
      out->SetString(s.data(), static_cast<rapidjson::SizeType>(s.size()), alloc);
      return true;
    }
    case kArray: {
      out->SetArray();
      while (true) {
        if (in->empty()) return false;
        if (in->front() == '\0') {
          in->remove_prefix(1);
          return true;
        }
        Value item;
        if (!UnpackValue(in, &item, alloc)) return false;
        out->PushBack(item, alloc);
      }
    }
    case kObject: {
      out->SetObject();
      std::string name;
      while (true) {
        if (in->empty()) return false;
        if (in->front() == '\0') {
          in->remove_prefix(1);
          return true;
        }
        if (static_cast<uint8_t>(in->front()) != kString) return false;
        in->remove_prefix(1);
        if (!UnpackString(in, &name)) return false;
        Value value;
        if (!UnpackValue(in, &value, alloc)) return false;
        out->AddMember(Value(name.data(), static_cast<rapidjson::SizeType>(name.size()), alloc), value, alloc);
      }
    }
    default:
      return false;
  }
}

std::string KeyToJson(std::string_view packed) {
  rapidjson::Document d;
  d.SetArray();
  while (!packed.empty()) {
    Value v;
    if (!UnpackValue(&packed, &v, d.GetAllocator())) break;
    d.PushBack(v, d.GetAllocator());
  }
  std::string out;
  AppendJson(d, &out);
  return out;
}

}  // namespace flow::doc
