// Reads YAML 1.2 (and so JSON) source text into doc::Nodes that remember positions.
// This file is the only user of yaml-cpp. Anchors, aliases, merge keys (`<<`) and complex
// keys work; plain scalars resolve by the YAML 1.2 core schema. Invalid UTF-8, nesting
// deeper than kMaxSourceDepth, aliases (and merge keys) expanding to more than
// kMaxAliasValues values, and more than kMaxSourceTextBytes bytes of strings and keys once
// aliases are expanded are errors, detected as the expansion proceeds (a "billion laughs"
// file is refused in a fraction of a second). A token the parser cannot consume (a `,`
// where a document should start, on which yaml-cpp 0.7's LoadAll loops) is an error too.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/diagnostics.h"
#include "doc/node.h"

namespace flow::catalog {

constexpr int kMaxSourceDepth = 512;             // levels of nested collections
constexpr size_t kMaxAliasValues = 2'000'000;    // values that aliases expand to
constexpr size_t kMaxSourceTextBytes = size_t{64} << 20;  // strings and keys, aliases expanded

// Parses `text`. On failure, adds a diagnostic located in `display_name` and returns
// nullopt. Multiple YAML documents in one file are an error.
std::optional<doc::Node> ReadYaml(std::string_view text, const std::string& display_name,
                                  Diagnostics* diags);

}  // namespace flow::catalog
