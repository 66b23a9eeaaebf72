#include "store/naming.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/strings.h"

namespace flow::store {
namespace {

bool Unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("-_.~$&+:=@").find(static_cast<char>(c)) != std::string_view::npos;
}

}  // namespace

bool EncodePartitionValue(const doc::Value& v, std::string* out) {
  if (v.IsBool()) {
    out->append(v.GetBool() ? "true" : "false");
  } else if (v.IsInt64()) {
    out->append(std::to_string(v.GetInt64()));
  } else if (v.IsUint64()) {
    out->append(std::to_string(v.GetUint64()));
  } else if (v.IsString()) {
    static const char* kHex = "0123456789ABCDEF";
    for (size_t i = 0; i < v.GetStringLength(); ++i) {
      auto c = static_cast<unsigned char>(v.GetString()[i]);
      if (Unreserved(c)) {
        out->push_back(static_cast<char>(c));
      } else {
        out->push_back('%');
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xf]);
      }
    }
  } else {
    return false;
  }
  return true;
}

bool DecodePartitionString(std::string_view text, std::string* out) {
  out->clear();
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out->push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return false;
    int hi = HexDigit(text[i + 1]), lo = HexDigit(text[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi << 4 | lo));
    i += 2;
  }
  return true;
}

bool JournalName(std::string_view collection, std::vector<std::pair<std::string, const doc::Value*>> fields,
                 std::string* out) {
  std::sort(fields.begin(), fields.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  out->assign(collection);
  for (const auto& [field, value] : fields) {
    out->push_back('/');
    out->append(field);
    out->push_back('=');
    if (!value || !EncodePartitionValue(*value, out)) return false;
  }
  out->append("/pivot=00");
  return true;
}

const char* CodecExtension(Codec c) {
  switch (c) {
    case Codec::kGzip: return ".gz";
    case Codec::kZstd: return ".zst";
    case Codec::kNone: return ".raw";
  }
  return "";
}

std::string FragmentPath(std::string_view journal, std::time_t started, uint64_t begin, uint64_t end,
                         std::string_view sha1_hex, Codec codec) {
  std::tm tm{};
  gmtime_r(&started, &tm);
  return fmt::format("{}/utc_date={:04d}-{:02d}-{:02d}/utc_hour={:02d}/{:016x}-{:016x}-{}{}", journal,
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, begin, end, sha1_hex,
                     CodecExtension(codec));
}

}  // namespace flow::store
