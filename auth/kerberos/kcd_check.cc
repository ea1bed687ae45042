#include "auth/kerberos/kcd_check.h"

#include "auth/kerberos/classify.h"
#include "auth/kerberos/s4u.h"
#include "auth/kerberos/service_credential.h"

#include <fmt/chrono.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <string_view>

namespace easedge::auth::kerberos {
namespace {

constexpr int step_count = 5;
// More offset than this to the KDC is worth a warning even though Kerberos tolerates 5 minutes.
constexpr std::chrono::seconds clock_warning{60};

bool is_aes(std::int32_t enctype) {
  return enctype == ENCTYPE_AES128_CTS_HMAC_SHA1_96 || enctype == ENCTYPE_AES256_CTS_HMAC_SHA1_96 ||
         enctype == ENCTYPE_AES128_CTS_HMAC_SHA256_128 || enctype == ENCTYPE_AES256_CTS_HMAC_SHA384_192;
}

std::string utc(std::chrono::system_clock::time_point t) {
  return fmt::format("{:%Y-%m-%d %H:%M:%S} UTC", fmt::gmtime(std::chrono::system_clock::to_time_t(t)));
}

// One step of the report: a title, then OK / WARN / FAIL lines, each problem with its fix.
class Report {
public:
  explicit Report(std::ostream& out) : out_(out) {}

  void step(int number, std::string_view name, const std::string& detail) {
    step_ = number;
    name_ = name;
    out_ << "\n[" << number << "/" << step_count << "] " << name << ": " << detail << "\n";
  }
  void ok(const std::string& text) { out_ << "      OK    " << text << "\n"; }
  void info(const std::string& text) { out_ << "            " << text << "\n"; }
  void warn(const std::string& text, const std::string& fix) {
    out_ << "      WARN  " << text << "\n";
    if (!fix.empty()) out_ << "            fix: " << fix << "\n";
  }
  // Prints the failure and the result line; returns the exit code.
  int fail(const Diagnosis& d, const std::string& detail) {
    out_ << "      FAIL  " << d.cause << "\n";
    if (!detail.empty()) out_ << "            krb5: " << detail << "\n";
    if (!d.fix.empty()) out_ << "            fix: " << d.fix << "\n";
    out_ << "\nRESULT: FAILED at step " << step_ << " (" << name_ << ")";
    if (d.kind == FailureKind::user_refused) out_ << "; the proxy answers this user 403";
    if (d.kind == FailureKind::setup_error) out_ << "; the proxy answers 502 until this is fixed";
    if (d.kind == FailureKind::kdc_unavailable) out_ << "; the proxy answers 503 while the KDC is unreachable";
    out_ << "\n";
    return 1;
  }
  int fail(const Krb5Failure& failure, const SetupNames& names) {
    return fail(classify(failure.stage, failure.code, names), failure.message);
  }

private:
  std::ostream& out_;
  int step_ = 0;
  std::string name_;
};

std::string normalised_principal(const std::string& name) {
  Krb5Context context;
  Krb5Principal principal(context.get());
  if (context.init_error() != 0 || krb5_parse_name(context.get(), name.c_str(), principal.out()) != 0) return name;
  return unparse_principal(context.get(), principal.get());
}

void describe_krb5_conf(std::ostream& out) {
  const char* configured = std::getenv("KRB5_CONFIG");
  out << "krb5.conf: " << (configured != nullptr ? std::string(configured) + " (KRB5_CONFIG)" : "/etc/krb5.conf")
      << "\n";
  Krb5Context context;
  char* realm = nullptr;
  if (context.init_error() != 0) {
    out << "           unreadable: " << context.message(context.init_error()) << "\n";
  } else if (krb5_get_default_realm(context.get(), &realm) == 0) {
    out << "           default realm " << realm << "\n";
    krb5_free_default_realm(context.get(), realm);
  } else {
    out << "           no default_realm\n";
  }
}

// Step 1. Returns false when the keytab is unusable (the report then already says why).
bool check_keytab_step(Report& report, const config::KerberosConfig& k, const SetupNames& names, int& exit_code) {
  report.step(1, "keytab", k.keytab.string());
  auto read = read_keytab(k.keytab);
  if (!read) {
    exit_code = report.fail(read.error(), names);
    return false;
  }
  const auto& entries = *read;
  std::string principal = normalised_principal(k.principal);
  std::set<std::string> others;
  std::string keys;
  unsigned kvno = 0;
  bool aes = false;
  int count = 0;
  for (const KeytabEntry& entry : entries) {
    if (entry.principal != principal) {
      others.insert(entry.principal);
      continue;
    }
    ++count;
    kvno = std::max(kvno, entry.kvno);
    aes = aes || is_aes(entry.enctype);
    keys += (keys.empty() ? "" : ", ") + enctype_name(entry.enctype) + " (kvno " + std::to_string(entry.kvno) + ")";
  }
  if (count == 0) {
    std::string held;
    for (const auto& other : others) held += (held.empty() ? "" : ", ") + other;
    Diagnosis d = classify(Stage::keytab, KRB5_KT_NOTFOUND, names);
    exit_code = report.fail(d, "the keytab holds " + (held.empty() ? std::string("no keys at all") : held));
    return false;
  }
  report.ok(std::to_string(count) + " key(s) for " + principal + ": " + keys);
  if (!aes) {
    Diagnosis d = classify(Stage::keytab, KRB5KDC_ERR_ETYPE_NOSUPP, names);
    report.warn("no AES key: RC4 is disabled on current domain controllers", d.fix);
  }
  report.info("the KDC encrypts with the account's current key: kvno " + std::to_string(kvno) +
              " must equal the account's msDS-KeyVersionNumber (step 2 fails otherwise)");
  return true;
}

// The cross-check for enterprise-name problems: does the plain sAMAccountName form of USER work?
void cross_check_user(Report& report, const ServiceCredential& service, const std::string& user,
                      const std::string& target) {
  auto at = user.find('@');
  auto realm_at = service.tgt().client.rfind('@');
  if (at == std::string::npos || realm_at == std::string::npos) return;
  std::string account = user.substr(0, at);
  std::string plain = account + service.tgt().client.substr(realm_at);
  DelegationOutcome outcome = delegate(service, plain, UserNameForm::principal, target);
  if (outcome.failure && outcome.failure->stage == Stage::s4u2self) {
    report.info("cross-check: no account with sAMAccountName '" + account +
                "' either: check which account the certificate maps to (easedge map-cert)");
    return;
  }
  report.warn("cross-check: " + plain + " (sAMAccountName) exists, but no account has userPrincipalName '" + user +
                  "'",
              "give the account that UPN (Set-ADUser " + account + " -UserPrincipalName " + user +
                  "; a new suffix must first be added: Set-ADForest -UPNSuffixes @{Add='" + user.substr(at + 1) +
                  "'}), or map certificates to the UPN the account has");
}

const TicketInfo* find_ticket(const std::vector<TicketInfo>& tickets, const std::string& server) {
  auto it = std::find_if(tickets.begin(), tickets.end(), [&](const TicketInfo& t) { return t.server == server; });
  return it == tickets.end() ? nullptr : &*it;
}

// The whole check for one SPN (k.service).
int check_delegation(const config::Config& config, const config::KerberosConfig& k, const std::string& user,
                     std::ostream& out) {
  SetupNames names{k.principal, k.service};
  out << "kcd-check: " << k.principal << " delegating " << user << " to " << k.service << "\n";
  describe_krb5_conf(out);
  if (config.upstream.auth != config::UpstreamAuth::kerberos) {
    out << "note: upstream.auth is forward-headers; set auth: kerberos to use this set-up\n";
  }
  Report report(out);
  std::string target;
  try {
    target = target_principal(k);
  } catch (const std::runtime_error& e) {
    report.step(1, "realm", "of " + k.principal);
    return report.fail(Diagnosis{FailureKind::setup_error, e.what(), ""}, "");
  }

  int exit_code = 1;
  if (!check_keytab_step(report, k, names, exit_code)) return exit_code;

  report.step(2, "service TGT", k.principal + " from the keytab (AS exchange)");
  auto acquired = ServiceCredential::acquire(k.principal, k.keytab);
  if (!acquired) return report.fail(acquired.error(), names);
  const ServiceCredential& service = **acquired;
  const TicketInfo& tgt = service.tgt();
  report.ok(tgt.server + ", " + (tgt.forwardable ? "forwardable" : "NOT forwardable") + ", ticket " +
            enctype_name(tgt.ticket_enctype) + ", valid until " + utc(tgt.end_time));
  if (!tgt.forwardable) {
    report.warn("a TGT that is not forwardable yields evidence tickets that are not forwardable: S4U2Proxy will fail",
                "clear 'Account is sensitive and cannot be delegated' on " + names.account() +
                    " (Set-ADAccountControl " + names.account() + " -AccountNotDelegated $false)");
  }
  auto offset = std::chrono::duration_cast<std::chrono::seconds>(tgt.auth_time - std::chrono::system_clock::now());
  if (offset > clock_warning || -offset > clock_warning) {
    report.warn("this host's clock differs from the KDC's by " + std::to_string(offset.count()) + " s",
                classify(Stage::service_ticket, KRB5KRB_AP_ERR_SKEW, names).fix);
  }

  report.step(3, "S4U2Self", "a ticket for " + user + " to " + tgt.client + " (protocol transition, enterprise name)");
  DelegationOutcome outcome = delegate(service, user, UserNameForm::enterprise, target);
  if (outcome.failure && outcome.failure->stage == Stage::s4u2self) {
    if (outcome.failure->code == KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN) cross_check_user(report, service, user, target);
    return report.fail(*outcome.failure, names);
  }
  std::vector<TicketInfo> tickets = outcome.credential ? list_tickets(outcome.credential->ccache_name)
                                                       : std::vector<TicketInfo>{};
  if (const TicketInfo* evidence = find_ticket(tickets, tgt.client)) {
    report.ok("evidence ticket for " + evidence->client + ", " +
              (evidence->forwardable ? "forwardable" : "NOT forwardable"));
    if (!evidence->forwardable) {
      report.warn("not forwardable: only resource-based constrained delegation accepts such evidence (step 4)", "");
    }
  }

  report.step(4, "S4U2Proxy", "a ticket for " + user + " to " + target + " (constrained delegation)");
  if (outcome.failure) return report.fail(*outcome.failure, names);
  const TicketInfo* ticket = find_ticket(tickets, target);
  if (ticket != nullptr) {
    report.ok("service ticket for " + ticket->client + ", ticket " + enctype_name(ticket->ticket_enctype) +
              ", valid until " + utc(ticket->end_time));
    if (!is_aes(ticket->ticket_enctype)) {
      report.warn("the service ticket is not AES-encrypted", classify(Stage::s4u2proxy, KRB5KDC_ERR_ETYPE_NOSUPP, names).fix);
    }
  }

  report.step(5, "Negotiate token", "for " + k.service + ", what the proxy sends upstream");
  auto header = negotiate_header(*outcome.credential, target);
  if (!header) return report.fail(header.error(), names);
  const std::string& value = *header;
  report.ok("Authorization: " + value.substr(0, std::min<std::size_t>(value.size(), 40)) + "... (" +
            std::to_string(value.size()) + " characters)");

  out << "\nRESULT: OK: " << k.service << " will see " << (ticket != nullptr ? ticket->client : user) << "\n";
  return 0;
}

}  // namespace

// Every server's SPN in turn (servers sharing an SPN are checked once).
int run_kcd_check(const config::Config& config, const std::string& user, std::ostream& out) {
  if (!config.upstream.kerberos) {
    out << "kcd-check: " << config.source_file.string()
        << " has no upstream.kerberos section (keytab, principal, service): nothing to check\n";
    return 1;
  }
  std::vector<std::string> checked;
  int result = 0;
  for (const auto& server : config.upstream.servers) {
    if (std::find(checked.begin(), checked.end(), server.service) != checked.end()) continue;
    checked.push_back(server.service);
    if (checked.size() > 1) out << "\n";
    auto kerberos = *config.upstream.kerberos;
    kerberos.service = server.service;
    result = std::max(result, check_delegation(config, kerberos, user, out));
  }
  return result;
}

}  // namespace easedge::auth::kerberos
