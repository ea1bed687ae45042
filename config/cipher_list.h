// Checks a TLS 1.2 cipher list (OpenSSL syntax) at load time, so a typo is a config error, not a silent gap.
#pragma once

#include <boost/system/result.hpp>

#include <string>

namespace easedge::config {

// Nothing when `list` can be used as tls.ciphers, or why not. OpenSSL skips names it does not know, so
// each plain element (a suite name or alias; not an operator such as !X, -X, +X or @STRENGTH) must select a
// TLS 1.2 suite on its own, and the whole list must select at least one.
boost::system::result<void, std::string> check_cipher_list(const std::string& list);

}  // namespace easedge::config
