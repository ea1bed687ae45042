#include "auth/kerberos/classify.h"

#include <krb5/krb5.h>

#include <cerrno>

namespace easedge::auth::kerberos {
namespace {

std::string fix_keytab(const SetupNames& n) {
  return "export the keytab again (after every password change of " + n.account() +
         ") with AES keys: ktpass /princ " + n.principal + " /mapuser " + n.account() +
         " /crypto AES256-SHA1 /ptype KRB5_NT_PRINCIPAL /pass * /out easproxy.keytab, or samba-tool domain "
         "exportkeytab FILE --principal=" + n.principal +
         "; `klist -kte FILE` must show the kvno of the account's msDS-KeyVersionNumber";
}
std::string fix_delegation_list(const SetupNames& n) {
  return "add " + n.spn + " to the delegation list of " + n.account() +
         ": Active Directory Users and Computers > " + n.account() +
         " > Delegation > 'Trust this user for delegation to specified services only' > Add; PowerShell: "
         "Set-ADUser " + n.account() + " -Add @{'msDS-AllowedToDelegateTo'='" + n.spn + "'}";
}
std::string fix_protocol_transition(const SetupNames& n) {
  return "allow protocol transition for " + n.account() +
         ": Delegation tab > 'Use any authentication protocol'; PowerShell: Set-ADAccountControl " + n.account() +
         " -TrustedToAuthForDelegation $true (userAccountControl TRUSTED_TO_AUTH_FOR_DELEGATION); the user "
         "must not be 'Account is sensitive and cannot be delegated' nor in Protected Users";
}
std::string fix_enctypes(const SetupNames& n) {
  return "enable AES: Set-ADUser " + n.account() +
         " -Replace @{'msDS-SupportedEncryptionTypes'=24}, the same on the account holding " + n.spn +
         ", then export the keytab again with AES keys";
}
constexpr std::string_view fix_clock =
    "synchronise the clocks of this host and the domain controllers (NTP/chrony against the DCs); "
    "Kerberos allows 5 minutes of skew";
constexpr std::string_view fix_kdc =
    "check that the realm's KDCs listed in krb5.conf ([realms] kdc = ...) are reachable on port 88 "
    "(TCP and UDP) from this host";
constexpr std::string_view fix_diagnose = "run easedge kcd-check --config FILE --user UPN for a step-by-step diagnosis";

Diagnosis make(FailureKind kind, std::string cause, std::string_view fix = {}) {
  return Diagnosis{kind, std::move(cause), std::string(fix)};
}

// Failures that mean the same in every step.
bool classify_common(std::int32_t code, const SetupNames& n, Diagnosis& out) {
  switch (code) {
    case KRB5_KDC_UNREACH:
      out = make(FailureKind::kdc_unavailable, "no KDC of the realm answered", fix_kdc);
      return true;
    case KRB5_REALM_CANT_RESOLVE:
      out = make(FailureKind::kdc_unavailable, "the host names of the realm's KDCs could not be resolved",
                 "check DNS for the KDC names in krb5.conf, or list the KDCs by address");
      return true;
    case KRB5KDC_ERR_SVC_UNAVAILABLE:
      out = make(FailureKind::kdc_unavailable, "the KDC answered that it is busy or unavailable", fix_kdc);
      return true;
    case KRB5KRB_AP_ERR_SKEW:
    case KRB5_KDCREP_SKEW:
      out = make(FailureKind::setup_error, "the clocks of this host and the KDC differ too much", fix_clock);
      return true;
    case KRB5KDC_ERR_ETYPE_NOSUPP:
    case KRB5_PROG_ETYPE_NOSUPP:
    case KRB5_BAD_ENCTYPE:
      out = make(FailureKind::setup_error, "no encryption type is supported by both sides", fix_enctypes(n));
      return true;
    case KRB5_REALM_UNKNOWN:
    case KRB5_CONFIG_NODEFREALM:
    case KRB5_CONFIG_CANTOPEN:
    case KRB5_CONFIG_BADFORMAT:
      out = make(FailureKind::setup_error, "krb5.conf does not describe the realm",
                 "point KRB5_CONFIG at a krb5.conf with default_realm and a [realms] entry listing the KDCs");
      return true;
    default:
      return false;
  }
}

Diagnosis classify_keytab(std::int32_t code, const SetupNames& n) {
  switch (code) {
    case ENOENT:
      return make(FailureKind::setup_error, "the keytab file does not exist", fix_keytab(n));
    case EACCES:
    case EPERM:
      return make(FailureKind::setup_error, "the keytab file is not readable by the proxy's user",
                  "chown/chmod the keytab so that the user easedge runs as (config 'user') can read it, mode 0600");
    case KRB5_KT_NOTFOUND:
    case KRB5_KT_END:
      return make(FailureKind::setup_error, "the keytab holds no key for " + n.principal, fix_keytab(n));
    case KRB5_KT_KVNONOTFOUND:
      return make(FailureKind::setup_error, "the keytab holds no key with the account's current kvno", fix_keytab(n));
    default:
      return make(FailureKind::setup_error, "the keytab could not be read", fix_keytab(n));
  }
}

Diagnosis classify_service_ticket(std::int32_t code, const SetupNames& n) {
  switch (code) {
    case KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN:
      return make(FailureKind::setup_error, "the KDC does not know the service account " + n.principal,
                  "set upstream.kerberos.principal to the account's sAMAccountName@REALM");
    case KRB5KDC_ERR_CLIENT_REVOKED:
    case KRB5KDC_ERR_POLICY:
    case KRB5KDC_ERR_CLIENT_NOTYET:
      return make(FailureKind::setup_error, "the service account " + n.account() + " is disabled, locked out or restricted",
                  "enable it and remove logon restrictions: Enable-ADAccount " + n.account() + "; Unlock-ADAccount " +
                      n.account());
    case KRB5KDC_ERR_KEY_EXP:
      return make(FailureKind::setup_error, "the password of the service account " + n.account() + " has expired",
                  "set 'Password never expires' on " + n.account() + ", reset its password and export the keytab again");
    case KRB5KDC_ERR_PREAUTH_FAILED:
    case KRB5KRB_AP_ERR_BAD_INTEGRITY:
    case KRB5_PREAUTH_FAILED:
    case KRB5KRB_AP_ERR_MODIFIED:
      return make(FailureKind::setup_error,
                  "the keytab's key does not match the password of " + n.account() + " (stale keytab, wrong kvno)",
                  fix_keytab(n));
    case KRB5_KT_NOTFOUND:
    case KRB5_KT_KVNONOTFOUND:
    case KRB5_KT_END:
    case ENOENT:
    case EACCES:
    case EPERM:
      return classify_keytab(code, n);
    default:
      return make(FailureKind::setup_error, "the service account could not obtain its ticket-granting ticket",
                  fix_diagnose);
  }
}

Diagnosis classify_s4u2self(std::int32_t code, const SetupNames& n) {
  switch (code) {
    case KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN:
    case KRB5KDC_ERR_WRONG_REALM:
      return make(FailureKind::user_refused, "the KDC knows no account with this user principal name");
    case KRB5KDC_ERR_CLIENT_REVOKED:
    case KRB5KDC_ERR_POLICY:
    case KRB5KDC_ERR_CLIENT_NOTYET:
    case KRB5KDC_ERR_KEY_EXP:
    case KRB5KDC_ERR_NAME_EXP:
      return make(FailureKind::user_refused, "the user's account is disabled, locked out, expired or restricted");
    case KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN:
      return make(FailureKind::setup_error, "the KDC refused a ticket to the service account itself",
                  "give " + n.account() + " an SPN of its own (setspn -S HTTP/<proxy host> " + n.account() +
                      "): S4U2Self needs it");
    case KRB5KDC_ERR_BADOPTION:
      return make(FailureKind::setup_error, "the KDC refused protocol transition (S4U2Self)",
                  fix_protocol_transition(n));
    default:
      return make(FailureKind::setup_error, "protocol transition (S4U2Self) failed", fix_diagnose);
  }
}

Diagnosis classify_s4u2proxy(std::int32_t code, const SetupNames& n) {
  switch (code) {
    case KRB5_TKT_NOT_FORWARDABLE:
      return make(FailureKind::setup_error,
                  "the S4U2Self evidence ticket is not forwardable, so the KDC refuses S4U2Proxy: " + n.account() +
                      " may not use protocol transition, or the user is marked sensitive",
                  fix_protocol_transition(n));
    case KRB5KDC_ERR_BADOPTION:
    case KRB5KDC_ERR_POLICY:
      return make(FailureKind::setup_error,
                  "the KDC refused constrained delegation to " + n.spn + " (S4U2Proxy): the SPN is not in the "
                  "msDS-AllowedToDelegateTo of " + n.account(),
                  fix_delegation_list(n));
    case KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN:
      return make(FailureKind::setup_error, "no account holds the SPN " + n.spn + " (upstream.kerberos.service)",
                  "register it on the account Exchange runs as (setspn -S " + n.spn +
                      " EXCH-ASA, or the Exchange servers' computer accounts) or correct the spelling; "
                      "setspn -Q " + n.spn + " shows the owner");
    case KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN:
    case KRB5KDC_ERR_CLIENT_REVOKED:
      return make(FailureKind::user_refused, "the user's account is no longer valid for delegation");
    default:
      return make(FailureKind::setup_error, "constrained delegation (S4U2Proxy) failed", fix_diagnose);
  }
}

}  // namespace

std::string SetupNames::account() const {
  auto at = principal.rfind('@');
  return at == std::string::npos ? principal : principal.substr(0, at);
}

Diagnosis classify(Stage stage, std::int32_t code, const SetupNames& names) {
  Diagnosis common;
  if (classify_common(code, names, common)) return common;
  switch (stage) {
    case Stage::keytab:
      return classify_keytab(code, names);
    case Stage::service_ticket:
      return classify_service_ticket(code, names);
    case Stage::s4u2self:
      return classify_s4u2self(code, names);
    case Stage::s4u2proxy:
      return classify_s4u2proxy(code, names);
    case Stage::token:
      break;
  }
  return make(FailureKind::setup_error, "the SPNEGO token could not be built from the cached tickets", fix_diagnose);
}

std::string_view to_string(FailureKind kind) {
  switch (kind) {
    case FailureKind::user_refused:
      return "user_refused";
    case FailureKind::setup_error:
      return "setup_error";
    case FailureKind::kdc_unavailable:
      return "kdc_unavailable";
  }
  return "unknown";
}

std::string_view to_string(Stage stage) {
  switch (stage) {
    case Stage::keytab:
      return "keytab";
    case Stage::service_ticket:
      return "service TGT";
    case Stage::s4u2self:
      return "S4U2Self";
    case Stage::s4u2proxy:
      return "S4U2Proxy";
    case Stage::token:
      return "SPNEGO token";
  }
  return "unknown";
}

}  // namespace easedge::auth::kerberos
