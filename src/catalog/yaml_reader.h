// Reads YAML 1.2 (and so JSON) source text into doc::Nodes that remember positions.
// This file is the only user of yaml-cpp. Anchors, aliases, merge keys (`<<`) and complex
// keys work; plain scalars resolve by the YAML 1.2 core schema. Invalid UTF-8, nesting
// deeper than kMaxSourceDepth and alias expansion beyond kMaxSourceValues are errors.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/diagnostics.h"
#include "doc/node.h"

namespace flow::catalog {

constexpr int kMaxSourceDepth = 512;             // levels of nested collections
constexpr size_t kMaxSourceValues = 20'000'000;  // values after alias expansion

// Parses `text`. On failure, adds a diagnostic located in `display_name` and returns
// nullopt. Multiple YAML documents in one file are an error.
std::optional<doc::Node> ReadYaml(std::string_view text, const std::string& display_name,
                                  Diagnostics* diags);

}  // namespace flow::catalog
