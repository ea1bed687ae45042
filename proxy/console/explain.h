// The console's "explain a certificate": map-cert's mapping answer plus the chain verdict and revocation status.
#pragma once

#include "proxy/runtime.h"

#include <functional>
#include <string>
#include <string_view>

namespace easedge::proxy::console {

// Explains the certificate in `bytes` (PEM or DER) under `runtime`: certificate summary, chain verdict (the
// validator the proxy uses), revocation status from the current data (no network), and the mapping as
// `easedge map-cert --json` reports it (the same code). `done` gets the HTTP status (200, or 400 when `bytes`
// hold no certificate) and a JSON document; it runs inline, or on a directory worker thread for LDAP.
void explain_certificate(std::shared_ptr<const Runtime> runtime, std::string_view bytes,
                         std::function<void(unsigned status, std::string json)> done);

}  // namespace easedge::proxy::console
