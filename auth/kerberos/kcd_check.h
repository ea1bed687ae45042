// The set-up doctor behind `easedge kcd-check`: keytab, TGT, S4U2Self, S4U2Proxy, token, each with its fix.
#pragma once

#include "config/config.h"

#include <ostream>
#include <string>

namespace easedge::auth::kerberos {

// Walks the constrained-delegation chain for USER with upstream.kerberos of CONFIG, contacting the KDC
// like the proxy does, and prints each step's result with the concrete fix for each known failure.
// Returns 0 when a service ticket for the SPN was obtained and a Negotiate token built, 1 otherwise.
int run_kcd_check(const config::Config& config, const std::string& user, std::ostream& out);

}  // namespace easedge::auth::kerberos
