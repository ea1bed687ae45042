// Classifies krb5 errors from each delegation step into the proxy's failure kinds, with cause and fix.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace easedge::auth::kerberos {

// What the proxy answers: user_refused -> 403, setup_error -> 502 (log names cause and fix),
// kdc_unavailable -> 503 + Retry-After (users with cached credentials keep working).
enum class FailureKind { user_refused, setup_error, kdc_unavailable };

// The step of constrained delegation that failed; the same krb5 code means different things per step
// (an unknown client is the service account itself for the TGT, the device's user for S4U2Self).
enum class Stage {
  keytab,          // reading the service account's key
  service_ticket,  // AS exchange: the service account's own TGT from its keytab
  s4u2self,        // protocol transition: a ticket for the user to the service account itself
  s4u2proxy,       // constrained delegation: a ticket for the user to Exchange's SPN
  token,           // building the SPNEGO token from cached tickets (no KDC involved)
};

struct Diagnosis {
  FailureKind kind = FailureKind::setup_error;
  std::string cause;  // one sentence: what the KDC (or the library) said, in AD terms
  std::string fix;    // the concrete change that resolves it; empty when there is nothing to change
};

// The configured names, so each fix names the operator's own account and SPN.
struct SetupNames {
  std::string principal;  // easproxy@CORP.EXAMPLE.TEST
  std::string spn;        // HTTP/exchange.corp.example.test

  std::string account() const;  // the principal without realm: the sAMAccountName to change in AD
};

// CODE is a krb5_error_code (the minor status of a krb5-mechanism GSSAPI call, or a krb5 API result).
Diagnosis classify(Stage stage, std::int32_t code, const SetupNames& names);

std::string_view to_string(FailureKind kind);
std::string_view to_string(Stage stage);

}  // namespace easedge::auth::kerberos
