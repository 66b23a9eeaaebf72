// Writing HTML safely: every value that comes from a catalog goes through one of these
// escapes before it reaches a page. Escaped text is safe both as element content and inside
// double- or single-quoted attribute values; JSON for a <script> element cannot end the
// element early. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace flow::site {

// Appends `s` to `*out` with `&`, `<`, `>`, `"` and `'` replaced by character references.
void AppendEscaped(std::string* out, std::string_view s);

// `s` escaped for HTML text and attribute values (see AppendEscaped).
std::string Escape(std::string_view s);

// `s` as a JSON string literal that is safe inside a <script> element: besides JSON's own
// escapes, `<`, `>` and `&` become \u003c, \u003e and \u0026 (so `</script>` and `<!--`
// cannot appear), and U+2028/U+2029 become \u2028/\u2029 (line terminators in older
// JavaScript).
std::string ScriptJsonQuote(std::string_view s);

// The first `max` code points of `s`, with "…" in place of the rest when it is longer
// (UTF-8 aware, for labels of fixed width).
std::string Ellipsize(std::string_view s, size_t max);

// `s` percent-encoded for a URL path or fragment: bytes other than ASCII letters, digits
// and `-._~/` become %XX.
std::string UrlEncode(std::string_view s);

// The page of collection `name`, relative to the site root: `collections/<file>.html`,
// where <file> is the name with `/` written as `~` (not a name character, so distinct names
// get distinct files, and a name cannot climb out of the directory) and any byte outside
// letters, digits and `-_.` as `!XX`. Very long names are cut and given a hash suffix to
// stay within file-name limits.
std::string CollectionPage(std::string_view name);

}  // namespace flow::site
