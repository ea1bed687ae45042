// The one table that maps every reason the proxy refuses a request to an HTTP status and IIS-style substatus.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace easedge::proxy {

enum class Refusal : std::uint8_t {
  no_client_certificate,      // 403.7
  certificate_revoked,        // 403.13
  revocation_unavailable,     // 403.13 (on_unavailable: deny)
  certificate_untrusted,      // 403.16
  certificate_wrong_usage,    // 403.16 (EKU without clientAuth)
  certificate_unmappable,     // 403.16 (no UPN, no matching account, strong binding refused)
  certificate_expired,        // 403.17
  certificate_not_yet_valid,  // 403.17
  user_mismatch,              // 403 (User= names another account)
  device_blocked,             // 403 (device access rules)
  account_refused_by_kdc,     // 403 (user unknown or disabled at the KDC)
  directory_unavailable,      // 503 + Retry-After
  kdc_unavailable,            // 503 + Retry-After
  upstreams_down,             // 503 + Retry-After (every Exchange server is down)
  delegation_misconfigured,   // 502 (Kerberos set-up error)
  upstream_unreachable,       // 502.3
  upstream_rejected_identity, // 502 (Exchange answered 401 to a fresh Kerberos token)
  upstream_bad_response,      // 502.2 (ambiguous or malformed framing from the upstream)
  upstream_timeout,           // 504
  not_found,                  // 404
  method_not_allowed,         // 405
  bad_request,                // 400
  malformed_eas_query,        // 400
  body_too_large,             // 413 (limits.upload_read_ahead_bytes)
  header_too_large,           // 431
  request_timeout,            // 408
  overloaded,                 // counted only: at the connection limit a connection is closed before TLS
};

struct RefusalInfo {
  std::uint16_t status;
  std::uint16_t substatus;   // IIS substatus, 0 when there is none
  std::string_view name;     // stable identifier for logs and metrics
  std::string_view text;     // what the device (and the admin reading the body) is told
  bool retry_after;          // send Retry-After: a transient condition the device should wait out
  bool close_connection;     // the connection cannot safely carry another request
};

const RefusalInfo& describe(Refusal reason);

// "403.13", or "404" when there is no substatus.
std::string status_text(const RefusalInfo& info);

// The body a device gets: the class of refusal and the request id, nothing else. The detail (paths, account
// names, SIDs, DNs) goes to the operator's log line under the same id, never to the device: there is no
// parameter for it here on purpose.
std::string refusal_body(Refusal reason, std::string_view request_id);

// Every reason, for metrics pre-registration and tests.
inline constexpr std::uint8_t refusal_count = static_cast<std::uint8_t>(Refusal::overloaded) + 1;

}  // namespace easedge::proxy
