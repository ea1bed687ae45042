#include "auth/kerberos/s4u.h"

#include <openssl/evp.h>

#include <stdexcept>

namespace easedge::auth::kerberos {
namespace {

bool import_name(const std::string& text, gss_const_OID type, GssName& name) {
  gss_buffer_desc buffer{text.size(), const_cast<char*>(text.data())};
  OM_uint32 minor = 0;
  return !GSS_ERROR(gss_import_name(&minor, &buffer, const_cast<gss_OID>(type), name.out()));
}

Krb5Failure gss_failure(Stage stage, OM_uint32 major, OM_uint32 minor) {
  return Krb5Failure{stage, static_cast<std::int32_t>(minor), gss_status_text(major, minor)};
}

std::chrono::seconds gss_lifetime(OM_uint32 value) {
  return value == GSS_C_INDEFINITE ? std::chrono::seconds(86400) : std::chrono::seconds(value);
}

// SPNEGO (1.3.6.1.5.5.2): the mechanism HTTP Negotiate (RFC 4559) carries. MIT does not export it.
gss_OID_desc spnego_mechanism_oid{6, const_cast<char*>("\x2b\x06\x01\x05\x05\x02")};

std::string base64(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<std::size_t>(written));
  return out;
}

}  // namespace

// The SPN as a full principal name. Imported as a krb5 principal rather than a host-based service
// (HTTP@host) so that exactly the configured SPN is asked for: no DNS canonicalisation, which would
// silently turn a CNAME or load-balancer name into a different SPN.
std::string target_principal(const config::KerberosConfig& config) {
  if (config.service.find('@') != std::string::npos) return config.service;
  auto at = config.principal.rfind('@');
  if (at != std::string::npos) return config.service + config.principal.substr(at);
  Krb5Context context;
  char* realm = nullptr;
  if (context.init_error() != 0 || krb5_get_default_realm(context.get(), &realm) != 0) {
    throw std::runtime_error("upstream.kerberos: principal '" + config.principal +
                             "' has no realm and krb5.conf names no default_realm; write it as user@REALM");
  }
  std::string result = config.service + "@" + realm;
  krb5_free_default_realm(context.get(), realm);
  return result;
}

DelegatedCredential::~DelegatedCredential() {
  cred.reset();
  destroy_ccache(ccache_name);
}

DelegationOutcome delegate(const ServiceCredential& service, const std::string& user, UserNameForm form,
                           const std::string& target) {
  DelegationOutcome out;
  // Enterprise name: the KDC looks the UPN up (implicit UPNs sAMAccountName@dns.domain too), whatever
  // its suffix, instead of reading it as user "alice" in a realm "corp.example.test".
  GssName user_name;
  gss_const_OID type = form == UserNameForm::enterprise ? GSS_KRB5_NT_ENTERPRISE_NAME : GSS_KRB5_NT_PRINCIPAL_NAME;
  if (!import_name(user, type, user_name)) {
    out.failure = Krb5Failure{Stage::s4u2self, KRB5_PARSE_MALFORMED, "'" + user + "' is not a valid principal name"};
    return out;
  }
  GssName target_name;
  if (!import_name(target, GSS_KRB5_NT_PRINCIPAL_NAME, target_name)) {
    out.failure = Krb5Failure{Stage::s4u2proxy, KRB5_PARSE_MALFORMED, "'" + target + "' is not a valid principal name"};
    return out;
  }

  // S4U2Self with the krb5 mechanism alone: its minor status is the KDC's error code (through SPNEGO
  // the mechglue renumbers it), and a krb5+SPNEGO set would run S4U2Self once per mechanism.
  gss_OID_set_desc krb5_only{1, const_cast<gss_OID>(gss_mech_krb5)};
  GssCred impersonated;
  OM_uint32 minor = 0;
  OM_uint32 major = gss_acquire_cred_impersonate_name(&minor, service.gss(), user_name.get(), GSS_C_INDEFINITE,
                                                       &krb5_only, GSS_C_INITIATE, impersonated.out(), nullptr,
                                                       nullptr);
  if (GSS_ERROR(major)) {
    out.failure = gss_failure(Stage::s4u2self, major, minor);
    return out;
  }

  // Copy the evidence ticket into a ccache of ours and acquire it again for SPNEGO and krb5: SPNEGO
  // needs a credential element of its own, and this costs no second S4U2Self.
  {
    Krb5Context context;
    Krb5Ccache ccache(context.get());
    krb5_error_code code = context.init_error();
    if (code == 0) code = krb5_cc_new_unique(context.get(), "MEMORY", nullptr, ccache.out());
    if (code != 0) {
      out.failure = Krb5Failure{Stage::token, code, context.message(code)};
      return out;
    }
    out.credential = std::make_shared<DelegatedCredential>(std::string("MEMORY:") +
                                                           krb5_cc_get_name(context.get(), ccache.get()));
  }
  DelegatedCredential& credential = *out.credential;
  gss_key_value_element_desc element{"ccache", credential.ccache_name.c_str()};
  gss_key_value_set_desc store{1, &element};
  major = gss_store_cred_into(&minor, impersonated.get(), GSS_C_INITIATE, const_cast<gss_OID>(gss_mech_krb5), 1, 0,
                              &store, nullptr, nullptr);
  if (GSS_ERROR(major)) {
    out.failure = gss_failure(Stage::token, major, minor);
    return out;
  }
  impersonated.reset();
  gss_OID_desc both[2] = {spnego_mechanism_oid, *gss_mech_krb5};
  gss_OID_set_desc spnego_and_krb5{2, both};
  OM_uint32 evidence_lifetime = 0;
  major = gss_acquire_cred_from(&minor, GSS_C_NO_NAME, GSS_C_INDEFINITE, &spnego_and_krb5, GSS_C_INITIATE, &store,
                                credential.cred.out(), nullptr, &evidence_lifetime);
  if (GSS_ERROR(major)) {
    out.failure = gss_failure(Stage::token, major, minor);
    return out;
  }

  // S4U2Proxy, again through the krb5 mechanism for the KDC's error code. The service ticket lands in
  // our ccache, so every later token (SPNEGO) is built locally.
  GssContext context;
  GssBuffer token;
  OM_uint32 ticket_lifetime = 0;
  major = gss_init_sec_context(&minor, credential.cred.get(), context.out(), target_name.get(),
                               const_cast<gss_OID>(gss_mech_krb5), 0, 0, GSS_C_NO_CHANNEL_BINDINGS, GSS_C_NO_BUFFER,
                               nullptr, token.out(), nullptr, &ticket_lifetime);
  if (GSS_ERROR(major)) {
    out.failure = gss_failure(Stage::s4u2proxy, major, minor);
    auto code = static_cast<krb5_error_code>(minor);
    if (code == KRB5KDC_ERR_BADOPTION || code == KRB5KDC_ERR_POLICY) {
      // The KDC says the same for "SPN not in the delegation list" and "evidence not forwardable";
      // the evidence ticket tells them apart.
      for (const TicketInfo& ticket : list_tickets(credential.ccache_name)) {
        if (ticket.server == service.tgt().client && !ticket.forwardable) out.failure->code = KRB5_TKT_NOT_FORWARDABLE;
      }
    }
    return out;
  }
  out.lifetime = std::min(gss_lifetime(evidence_lifetime), gss_lifetime(ticket_lifetime));
  return out;
}

boost::system::result<std::string, Krb5Failure> negotiate_header(const DelegatedCredential& credential,
                                                                 const std::string& target) {
  GssName target_name;
  if (!import_name(target, GSS_KRB5_NT_PRINCIPAL_NAME, target_name)) {
    return Krb5Failure{Stage::token, KRB5_PARSE_MALFORMED, "'" + target + "' is not a valid principal name"};
  }
  GssContext context;
  GssBuffer token;
  OM_uint32 minor = 0;
  // No mutual authentication: the reply token is never read (the upstream connection is verified by TLS).
  OM_uint32 major = gss_init_sec_context(&minor, credential.cred.get(), context.out(), target_name.get(),
                                         &spnego_mechanism_oid, 0, 0, GSS_C_NO_CHANNEL_BINDINGS, GSS_C_NO_BUFFER,
                                         nullptr, token.out(), nullptr, nullptr);
  if (GSS_ERROR(major) || token.size() == 0) return gss_failure(Stage::token, major, minor);
  return "Negotiate " + base64(token.data(), token.size());
}

std::vector<TicketInfo> list_tickets(const std::string& ccache_name) {
  std::vector<TicketInfo> tickets;
  Krb5Context context;
  if (context.init_error() != 0) return tickets;
  krb5_context c = context.get();
  Krb5Ccache ccache(c);
  if (krb5_cc_resolve(c, ccache_name.c_str(), ccache.out()) != 0) return tickets;
  krb5_cc_cursor cursor;
  if (krb5_cc_start_seq_get(c, ccache.get(), &cursor) != 0) return tickets;
  krb5_creds creds;
  while (krb5_cc_next_cred(c, ccache.get(), &cursor, &creds) == 0) {
    if (!krb5_is_config_principal(c, creds.server)) tickets.push_back(describe_ticket(c, creds));
    krb5_free_cred_contents(c, &creds);
  }
  krb5_cc_end_seq_get(c, ccache.get(), &cursor);
  return tickets;
}

}  // namespace easedge::auth::kerberos
