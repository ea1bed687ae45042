#include "mapping/strong_binding.h"

#include "auth/openssl.h"

namespace easedge::mapping {
namespace {

using config::StrongBinding;
using State = CertificateSid::State;

// A SID in the certificate that cannot be trusted to agree with the account denies in both enforcing modes.
std::string sid_problem(const BindingEvidence& e) {
  switch (e.certificate_sid.state) {
    case State::absent: return "";
    case State::malformed: return "the certificate's SID extension or SID URI is malformed";
    case State::conflict: return "the certificate's SID extension and SID URI name different SIDs";
    case State::present:
      if (e.account_sid.empty())
        return "the certificate carries SID " + e.certificate_sid.sid + " but the account has no objectSid";
      if (e.certificate_sid.sid != e.account_sid)
        return "the certificate's SID " + e.certificate_sid.sid + " does not match the account's objectSid " +
               e.account_sid;
      return "";
  }
  return "";
}

}  // namespace

const char* to_string(StrongBinding mode) {
  switch (mode) {
    case StrongBinding::disabled: return "disabled";
    case StrongBinding::compatibility: return "compatibility";
    case StrongBinding::full: return "full";
  }
  return "full";
}

BindingVerdict check_strong_binding(StrongBinding mode, const BindingEvidence& e,
                                    std::chrono::seconds backdating_compensation) {
  bool sid_matches = e.certificate_sid.state == State::present && !e.account_sid.empty() &&
                     e.certificate_sid.sid == e.account_sid;
  BindingVerdict verdict{true, e.strong_method || sid_matches, ""};
  if (mode == StrongBinding::disabled) {
    if (!verdict.strong) verdict.reason = "weak mapping (" + e.method + ") allowed because strong_binding is disabled";
    return verdict;
  }
  if (auto problem = sid_problem(e); !problem.empty()) return {false, false, problem};
  if (verdict.strong) return verdict;

  if (mode == StrongBinding::full)
    return {false, false,
            "weak mapping (" + e.method +
                ") refused: strong_binding is full and the certificate has no SID extension matching the account "
                "and no strong altSecurityIdentities binding (issuer+serial, SKI or SHA1-PUKEY)"};
  // Compatibility: a weak mapping is refused for a certificate issued before the account existed.
  if (e.not_before && e.when_created && *e.not_before + backdating_compensation < *e.when_created)
    return {false, false,
            "weak mapping (" + e.method + ") refused: the certificate (notBefore " + auth::format_time(*e.not_before) +
                ") predates the account (whenCreated " + auth::format_time(*e.when_created) + ")"};
  verdict.reason = "weak mapping (" + e.method + ") allowed in compatibility mode; full enforcement will refuse it";
  return verdict;
}

}  // namespace easedge::mapping
