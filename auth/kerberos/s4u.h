// S4U2Self + S4U2Proxy for one user through GSSAPI, leaving the delegated tickets in a private ccache.
#pragma once

#include "auth/kerberos/handles.h"
#include "auth/kerberos/service_credential.h"
#include "config/config.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace easedge::auth::kerberos {

// The user's delegated credential: evidence ticket (S4U2Self) and the target's service ticket
// (S4U2Proxy) in a private MEMORY ccache, usable by the SPNEGO and krb5 mechanisms.
struct DelegatedCredential {
  explicit DelegatedCredential(std::string name) : ccache_name(std::move(name)) {}
  ~DelegatedCredential();
  DelegatedCredential(const DelegatedCredential&) = delete;
  DelegatedCredential& operator=(const DelegatedCredential&) = delete;

  std::string ccache_name;
  GssCred cred;
};

struct DelegationOutcome {
  std::optional<Krb5Failure> failure;  // empty on success; else stage s4u2self / s4u2proxy / token + krb5 code
  // Set once S4U2Self succeeded, also when S4U2Proxy then failed (its evidence ticket can be inspected).
  std::shared_ptr<DelegatedCredential> credential;
  std::chrono::seconds lifetime{0};    // on success: until the first of evidence and service ticket expires
};

enum class UserNameForm {
  enterprise,  // UPN (or implicit UPN sAMAccountName@dns.domain), looked up by the KDC: what the proxy uses
  principal,   // plain user@REALM (sAMAccountName): kcd-check's cross-check for enterprise-name problems
};

// The configured SPN as a full principal name (HTTP/host@REALM, the realm taken from the service account
// or krb5.conf's default_realm). Start-up only: throws std::runtime_error when no realm can be found.
std::string target_principal(const config::KerberosConfig& config);

// Blocks on KDC round trips: call on a worker thread. TARGET is a full principal name (SPN@REALM).
DelegationOutcome delegate(const ServiceCredential& service, const std::string& user, UserNameForm form,
                           const std::string& target);

// "Negotiate <base64 SPNEGO token>" for TARGET from CREDENTIAL's cached tickets: local crypto only, no KDC.
// Each call builds a new context, so every token carries a fresh authenticator.
boost::system::result<std::string, Krb5Failure> negotiate_header(const DelegatedCredential& credential,
                                                                 const std::string& target);

// The tickets in the ccache NAME (configuration entries skipped).
std::vector<TicketInfo> list_tickets(const std::string& ccache_name);

}  // namespace easedge::auth::kerberos
