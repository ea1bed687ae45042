// The console's static files (HTML, JS, CSS, SVG), compiled into the binary from proxy/console/static/.
#pragma once

#include <optional>
#include <string_view>

namespace easedge::proxy::console {

struct Asset {
  std::string_view content_type;
  std::string_view body;
};

// The file static/NAME (e.g. "console.js"), or nothing.
std::optional<Asset> find_asset(std::string_view name);

}  // namespace easedge::proxy::console
