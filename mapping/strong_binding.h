// KB5014754 strong certificate binding: whether a mapping found for a certificate may be used, per
// StrongCertificateBindingEnforcement mode (disabled / compatibility / full).
#pragma once

#include "config/config.h"
#include "mapping/certificate_bindings.h"

#include <chrono>
#include <optional>
#include <string>

namespace easedge::mapping {

// What the mapping rests on.
struct BindingEvidence {
  std::string method;                     // e.g. "upn", "altsec:ski"
  bool strong_method = false;             // a strong altSecurityIdentities value matched
  CertificateSid certificate_sid;         // SID extension / SAN URI of the certificate
  std::string account_sid;                // the account's objectSid ("" when unknown)
  std::optional<std::chrono::system_clock::time_point> not_before;    // of the certificate
  std::optional<std::chrono::system_clock::time_point> when_created;  // of the account
};

struct BindingVerdict {
  bool allowed = false;
  bool strong = false;   // a strong value matched, or the certificate's SID equals the objectSid
  std::string reason;    // why refused, or why allowed although weak; "" for a strong mapping
};

BindingVerdict check_strong_binding(config::StrongBinding mode, const BindingEvidence& evidence,
                                    std::chrono::seconds backdating_compensation);

const char* to_string(config::StrongBinding mode);

}  // namespace easedge::mapping
