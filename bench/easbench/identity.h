// Device identities for easbench: certificate + key + EAS names of each simulated device, kept in memory.
#pragma once

#include "auth/client_certificate.h"
#include "auth/openssl.h"

#include "bench/easbench/options.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace easedge::bench {

// Keys are shared: RSA-2048 minting reuses a small pool of keys across devices (keygen is slow).
using PkeyShared = std::shared_ptr<EVP_PKEY>;

struct DeviceIdentity {
  std::string user;       // value of User= (user<i>)
  std::string upn;        // UPN SAN (user<i>@domain)
  std::string device_id;  // EAS DeviceId, unique per device
  auth::OwnedX509 cert;
  PkeyShared key;
};

// Start-up failure with a one-line, human-readable reason (unreadable file, key mismatch, ...).
struct IdentityError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// What the minted certificates look like (the Workspace ONE device template).
std::string device_user(std::uint32_t index);       // "user<i>", i from 1
std::string device_id_for(std::uint32_t index);     // "EASB" + 12 hex digits of i
inline constexpr const char* upn_oid = "1.3.6.1.4.1.311.20.2.3";

// One identity from PEM files (--cert/--key); the UPN SAN (if any) names the user.
DeviceIdentity load_identity(const std::filesystem::path& cert, const std::filesystem::path& key);

// Mints `count` identities signed by the CA, using `threads` threads; `progress(done)` is called from
// the calling thread now and then. RSA-2048 keys come from a pool of at most rsa_key_pool keys.
inline constexpr std::uint32_t rsa_key_pool = 32;
std::vector<DeviceIdentity> mint_identities(const std::filesystem::path& ca_cert, const std::filesystem::path& ca_key,
                                            std::uint32_t count, const std::string& upn_domain, KeyType key_type,
                                            unsigned threads, const std::function<void(std::uint32_t)>& progress);

using auth::upn_of;

}  // namespace easedge::bench
