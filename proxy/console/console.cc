// Routes the console's requests: pages and static files from the binary, JSON from console_api, explain.
#include "proxy/console/console.h"

#include "proxy/console/assets.h"
#include "proxy/console/explain.h"

#include <openssl/ssl.h>

namespace easedge::proxy::console {
namespace {

constexpr const char* json_type = "application/json; charset=utf-8";
constexpr const char* text_type = "text/plain; charset=utf-8";
// Rows in the "most active" tables.
constexpr std::size_t activity_rows = 20;

bool is_page(std::string_view path) {
  return path == "/" || path == "/devices" || path == "/revocation" || path == "/directory" || path == "/explain";
}

}  // namespace

std::optional<AdminAnswer> Console::get(std::string_view target) const {
  const auto path = target.substr(0, target.find('?'));
  if (is_page(path)) {
    auto page = find_asset("console.html");
    return AdminAnswer{200, std::string(page->content_type), std::string(page->body)};
  }
  if (path.starts_with("/static/")) {
    if (auto asset = find_asset(path.substr(8)))
      return AdminAnswer{200, std::string(asset->content_type), std::string(asset->body)};
    return AdminAnswer{404, text_type, "not found\n"};
  }
  if (!path.starts_with("/api/")) return std::nullopt;
  const auto now = Clock::now();
  auto json = [](const boost::json::value& v) { return AdminAnswer{200, json_type, serialize_for_browser(v)}; };
  if (path == "/api/overview") {
    // OpenSSL's count of resumed sessions (tickets) on the server context; a reload starts a new one.
    const auto resumed = SSL_CTX_sess_hits(sources_.runtime()->server_context.get());
    return json(overview_json(*sources_.metrics, *sources_.log, now, static_cast<std::uint64_t>(resumed)));
  }
  if (path == "/api/refusals") return json(refusals_json(sources_.log->refusals()));
  if (path == "/api/activity") return json(activity_json(*sources_.log, activity_rows));
  if (path == "/api/revocation") return json(revocation_json(*sources_.runtime(), now));
  if (path == "/api/directory")
    return json(directory_json(*sources_.runtime(), *sources_.metrics,
                               sources_.readiness ? sources_.readiness() : std::vector<ReadinessCheck>{}));
  if (path == "/api/explain") return AdminAnswer{405, text_type, "POST a PEM certificate to /api/explain\n"};
  return AdminAnswer{404, json_type, serialize_for_browser({{"error", "no such API endpoint"}})};
}

bool Console::serve(const AdminRequest& request, std::function<void(AdminAnswer)> done) const {
  const auto path = request.target.substr(0, request.target.find('?'));
  if (request.method == "POST") {
    if (path != "/api/explain") return false;
    explain_certificate(sources_.runtime(), request.body, [done = std::move(done)](unsigned status, std::string json) {
      done(AdminAnswer{status, json_type, std::move(json)});
    });
    return true;
  }
  auto answer = get(request.target);
  if (!answer) return false;
  done(std::move(*answer));
  return true;
}

}  // namespace easedge::proxy::console
