// URLs of catalog resources: every source and schema is identified by an absolute URL
// (`file:///abs/path` or `http(s)://...`). Resolution follows RFC 3986 section 5.
#pragma once

#include <string>
#include <string_view>

namespace flow {

// Splits "base#fragment" into its parts; the fragment excludes '#'. Fragment is
// percent-decoded.
void SplitFragment(std::string_view url, std::string* base, std::string* fragment);

// Resolves `ref` against the absolute URL `base` (RFC 3986 5.2, with dot-segment removal).
std::string ResolveUrl(std::string_view base, std::string_view ref);

// `file://` URL of an absolute or cwd-relative filesystem path, and back.
std::string FileUrl(const std::string& path);
bool IsFileUrl(std::string_view url);
bool IsHttpUrl(std::string_view url);
std::string FilePathOfUrl(std::string_view url);

// A short name for messages: a cwd-relative path for file URLs, else the URL itself.
std::string DisplayName(std::string_view url);

// Percent-decoding (invalid escapes are kept literally).
std::string PercentDecode(std::string_view s);

}  // namespace flow
