// The JSON Schema of catalog source files, printed by `flowctl json-schema` for editors
// and linters. Tests keep it in step with the parser (every example and golden catalog
// validates against it).
#pragma once

#include <string_view>

namespace flow::catalog {

std::string_view CatalogSourceSchema();

}  // namespace flow::catalog
