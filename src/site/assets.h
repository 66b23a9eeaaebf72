// The site's static files: one stylesheet for every page and the index's search script.
// They are compiled in so that the binary alone can write a complete site.
#pragma once

namespace flow::site {

extern const char kStyleCss[];
extern const char kSearchJs[];

}  // namespace flow::site
