#include "base/url.h"

#include <filesystem>
#include <vector>

namespace flow {
namespace {

struct Parts {
  std::string scheme, authority, path, query, fragment;
  bool has_authority = false, has_query = false, has_fragment = false;
};

Parts Parse(std::string_view u) {
  Parts p;
  if (auto hash = u.find('#'); hash != std::string_view::npos) {
    p.fragment = std::string(u.substr(hash + 1));
    p.has_fragment = true;
    u = u.substr(0, hash);
  }
  if (auto q = u.find('?'); q != std::string_view::npos) {
    p.query = std::string(u.substr(q + 1));
    p.has_query = true;
    u = u.substr(0, q);
  }
  // scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"
  size_t i = 0;
  while (i < u.size() && (std::isalnum(static_cast<unsigned char>(u[i])) || u[i] == '+' ||
                          u[i] == '-' || u[i] == '.')) {
    ++i;
  }
  if (i > 0 && i < u.size() && u[i] == ':' && std::isalpha(static_cast<unsigned char>(u[0]))) {
    p.scheme = std::string(u.substr(0, i));
    u = u.substr(i + 1);
  }
  if (u.substr(0, 2) == "//") {
    u = u.substr(2);
    size_t slash = u.find('/');
    p.authority = std::string(u.substr(0, slash));
    p.has_authority = true;
    u = slash == std::string_view::npos ? std::string_view() : u.substr(slash);
  }
  p.path = std::string(u);
  return p;
}

std::string RemoveDotSegments(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  bool absolute = !path.empty() && path[0] == '/';
  std::string seg;
  bool trailing_slash = false;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    seg = path.substr(i, j - i);
    trailing_slash = false;
    if (seg == "..") {
      if (!out.empty()) out.pop_back();
      trailing_slash = true;
    } else if (seg == ".") {
      trailing_slash = true;
    } else if (!(seg.empty() && i == 0 && absolute)) {
      out.push_back(seg);
    }
    i = j + 1;
  }
  std::string r = absolute ? "/" : "";
  for (size_t k = 0; k < out.size(); ++k) {
    if (k) r += '/';
    r += out[k];
  }
  if (trailing_slash && (r.empty() || r.back() != '/')) r += '/';
  return r;
}

std::string Compose(const Parts& p) {
  std::string r;
  if (!p.scheme.empty()) r += p.scheme + ":";
  if (p.has_authority) r += "//" + p.authority;
  r += p.path;
  if (p.has_query) r += "?" + p.query;
  if (p.has_fragment) r += "#" + p.fragment;
  return r;
}

}  // namespace

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

void SplitFragment(std::string_view url, std::string* base, std::string* fragment) {
  auto hash = url.find('#');
  if (hash == std::string_view::npos) {
    *base = std::string(url);
    fragment->clear();
  } else {
    *base = std::string(url.substr(0, hash));
    *fragment = PercentDecode(url.substr(hash + 1));
  }
}

std::string ResolveUrl(std::string_view base_url, std::string_view ref_url) {
  Parts r = Parse(ref_url), b = Parse(base_url), t;
  if (!r.scheme.empty()) {
    t = r;
    t.path = RemoveDotSegments(r.path);
  } else {
    if (r.has_authority) {
      t.authority = r.authority;
      t.has_authority = true;
      t.path = RemoveDotSegments(r.path);
      t.query = r.query;
      t.has_query = r.has_query;
    } else {
      if (r.path.empty()) {
        t.path = b.path;
        t.query = r.has_query ? r.query : b.query;
        t.has_query = r.has_query || b.has_query;
      } else {
        if (r.path[0] == '/') {
          t.path = RemoveDotSegments(r.path);
        } else {
          std::string merged;
          if (b.has_authority && b.path.empty()) {
            merged = "/" + r.path;
          } else {
            auto slash = b.path.rfind('/');
            merged = (slash == std::string::npos ? "" : b.path.substr(0, slash + 1)) + r.path;
          }
          t.path = RemoveDotSegments(merged);
        }
        t.query = r.query;
        t.has_query = r.has_query;
      }
      t.authority = b.authority;
      t.has_authority = b.has_authority;
    }
    t.scheme = b.scheme;
  }
  t.fragment = r.fragment;
  t.has_fragment = r.has_fragment;
  return Compose(t);
}

std::string FileUrl(const std::string& path) {
  std::filesystem::path p = std::filesystem::absolute(path).lexically_normal();
  std::string s = p.string(), out = "file://";
  for (char c : s) {
    if (c == ' ' || c == '#' || c == '?' || c == '%') {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

bool IsFileUrl(std::string_view url) { return url.substr(0, 7) == "file://"; }

bool IsHttpUrl(std::string_view url) {
  return url.substr(0, 7) == "http://" || url.substr(0, 8) == "https://";
}

std::string FilePathOfUrl(std::string_view url) {
  std::string base, frag;
  SplitFragment(url, &base, &frag);
  Parts p = Parse(base);
  return PercentDecode(p.path);
}

std::string DisplayName(std::string_view url) {
  if (!IsFileUrl(url)) return std::string(url);
  std::string path = FilePathOfUrl(url);
  std::error_code ec;
  auto rel = std::filesystem::relative(path, std::filesystem::current_path(ec), ec);
  if (ec || rel.empty()) return path;
  std::string r = rel.string();
  if (r.rfind("..", 0) == 0) return path;  // outside the working directory: absolute is clearer
  return r;
}

}  // namespace flow
