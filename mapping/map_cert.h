// `easedge map-cert`: the administrator's tool that explains how a certificate maps to an AD account.
#pragma once

#include "config/config.h"
#include "mapping/account_mapper.h"
#include "mapping/certificate_bindings.h"

#include <filesystem>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>

namespace easedge::mapping {

// Maps the certificate in `cert` (PEM, or DER) with the configured mapping and prints the account, the
// method, whether it is strong, the verdict under the configured strong_binding mode with the reason, and
// the strong altSecurityIdentities values to add. With `json`, prints one JSON object instead (mapped,
// account, method, strong, mode, reason, bindings). The issuing CA (for NTAuth) is looked up among the
// certificates of tls.client_ca. Returns 0 mapped, 1 not mapped (also when the directory is unavailable),
// 2 usage or configuration error (message on `err`).
int run_map_cert(const config::Config& config, const std::filesystem::path& cert, bool json, std::ostream& out,
                 std::ostream& err);

// The certificate in `bytes` (PEM, or DER), or null when there is none. map-cert and the console's explain form.
std::shared_ptr<X509> parse_certificate(std::string_view bytes);

// The JSON object map-cert --json prints (one line, no newline).
std::string map_result_json(const MapResult& result, const CertificateBindings& bindings, config::StrongBinding mode);

}  // namespace easedge::mapping
