// The refusal table: status, substatus and wording per reason, in one place.
#include "proxy/refusal.h"

#include <array>

namespace easedge::proxy {

namespace {

constexpr std::array<RefusalInfo, refusal_count> table{{
    {403, 7, "no_client_certificate", "Forbidden: client certificate required.", false, false},
    {403, 13, "certificate_revoked", "Forbidden: client certificate revoked.", false, false},
    {403, 13, "revocation_unavailable", "Forbidden: client certificate revocation status is unavailable.", false,
     false},
    {403, 16, "certificate_untrusted", "Forbidden: client certificate is untrusted or invalid.", false, false},
    {403, 16, "certificate_wrong_usage", "Forbidden: client certificate is not valid for client authentication.",
     false, false},
    {403, 16, "certificate_unmappable", "Forbidden: client certificate does not map to an account.", false, false},
    {403, 17, "certificate_expired", "Forbidden: client certificate has expired.", false, false},
    {403, 17, "certificate_not_yet_valid", "Forbidden: client certificate is not yet valid.", false, false},
    {403, 0, "user_mismatch", "Forbidden: the request names another user than the certificate.", false, false},
    {403, 0, "device_blocked", "Forbidden: this device is not allowed to synchronize.", false, false},
    {403, 0, "account_refused_by_kdc", "Forbidden: the account cannot be used.", false, false},
    {503, 0, "directory_unavailable", "Service unavailable: the directory cannot be reached, try again later.",
     true, false},
    {503, 0, "kdc_unavailable", "Service unavailable: the Kerberos KDC cannot be reached, try again later.", true,
     false},
    {503, 0, "upstreams_down", "Service unavailable: no mail server can be reached, try again later.", true,
     false},
    {502, 0, "delegation_misconfigured", "Bad gateway: Kerberos delegation to the mail server failed.", false,
     false},
    {502, 3, "upstream_unreachable", "Bad gateway: the mail server cannot be reached.", false, false},
    {502, 0, "upstream_rejected_identity", "Bad gateway: the mail server rejected the delegated identity.", false,
     false},
    {502, 2, "upstream_bad_response", "Bad gateway: the mail server sent an invalid response.", false, true},
    {504, 0, "upstream_timeout", "Gateway timeout: the mail server did not answer in time.", false, true},
    {404, 0, "not_found", "Not found.", false, false},
    {405, 0, "method_not_allowed", "Method not allowed.", false, false},
    {400, 0, "bad_request", "Bad request.", false, true},
    {400, 0, "malformed_eas_query", "Bad request: malformed ActiveSync query.", false, false},
    {413, 0, "body_too_large", "Request entity too large.", false, true},
    {431, 0, "header_too_large", "Request header fields too large.", false, true},
    {408, 0, "request_timeout", "Request timeout.", false, true},
    {503, 0, "overloaded", "Service unavailable: too many connections, try again later.", true, true},
}};

}  // namespace

const RefusalInfo& describe(Refusal reason) { return table[static_cast<std::size_t>(reason)]; }

std::string status_text(const RefusalInfo& info) {
  std::string text = std::to_string(info.status);
  if (info.substatus != 0) text += "." + std::to_string(info.substatus);
  return text;
}

std::string refusal_body(Refusal reason, std::string_view request_id) {
  const auto& info = describe(reason);
  std::string body = status_text(info);
  body += ' ';
  body += info.text;
  body += "\r\nRequest-Id: ";
  body += request_id;
  body += "\r\n";
  return body;
}

}  // namespace easedge::proxy
