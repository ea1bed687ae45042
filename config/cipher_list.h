// Checks a TLS 1.2 cipher list (OpenSSL syntax) at load time, so a typo is a config error, not a silent gap.
#pragma once

#include <optional>
#include <string>

namespace easedge::config {

// Why `list` cannot be used as tls.ciphers, or nothing when it can. OpenSSL skips names it does not know, so
// each plain element (a suite name or alias; not an operator such as !X, -X, +X or @STRENGTH) must select a
// TLS 1.2 suite on its own, and the whole list must select at least one.
std::optional<std::string> cipher_list_problem(const std::string& list);

}  // namespace easedge::config
