// The operator console on the admin listener: its pages, their static files and the JSON API under /api/.
#pragma once

#include "proxy/admin_server.h"
#include "proxy/console/console_api.h"

#include <functional>

namespace easedge::proxy::console {

class Console {
public:
  explicit Console(ConsoleSources sources) : sources_(std::move(sources)) {}

  // An AdminRoutes handler: /, /devices, /revocation, /directory, /explain, /static/..., /api/...
  bool serve(const AdminRequest& request, std::function<void(AdminAnswer)> done) const;

  // The GET answer for `target` (everything but POST /api/explain). Null when the target is not the console's.
  std::optional<AdminAnswer> get(std::string_view target) const;

private:
  ConsoleSources sources_;
};

}  // namespace easedge::proxy::console
