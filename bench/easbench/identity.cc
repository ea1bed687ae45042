#include "bench/easbench/identity.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

namespace easedge::bench {

namespace {

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};

std::unique_ptr<FILE, FileCloser> open_file(const std::filesystem::path& p) {
  std::unique_ptr<FILE, FileCloser> f(std::fopen(p.c_str(), "rb"));
  if (!f) throw IdentityError("cannot open '" + p.string() + "'");
  return f;
}

auth::OwnedX509 read_cert(const std::filesystem::path& p) {
  try {
    return std::move(auth::read_pem_certificates(p).front());
  } catch (const std::runtime_error& e) {
    throw IdentityError(e.what());
  }
}

PkeyShared read_key(const std::filesystem::path& p) {
  auto f = open_file(p);
  EVP_PKEY* key = PEM_read_PrivateKey(f.get(), nullptr, nullptr, const_cast<char*>(""));
  if (!key) throw IdentityError("'" + p.string() + "' holds no unencrypted PEM private key (" + auth::last_openssl_error() + ")");
  return PkeyShared(key, auth::OpenSslFree<EVP_PKEY_free>{});
}

PkeyShared generate_key(KeyType type) {
  EVP_PKEY* key = type == KeyType::p256 ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
  if (!key) throw IdentityError("key generation failed (" + auth::last_openssl_error() + ")");
  return PkeyShared(key, auth::OpenSslFree<EVP_PKEY_free>{});
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) throw IdentityError("cannot build extension '" + value + "' (" + auth::last_openssl_error() + ")");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// The Workspace ONE device template: CN=WorkspaceONEUEM.<user>, UPN + email SANs, EKU clientAuth.
auth::OwnedX509 mint_cert(X509* ca, EVP_PKEY* ca_key, EVP_PKEY* key, KeyType key_type, const std::string& user,
                  const std::string& upn) {
  auth::OwnedX509 cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca));
  X509_NAME* name = X509_get_subject_name(cert.get());
  const std::string cn = "WorkspaceONEUEM." + user;
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  // Valid from an hour ago (clock skew) until 30 days from now, but never beyond the CA.
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30L * 24 * 3600);
  if (ASN1_TIME_compare(X509_get0_notAfter(cert.get()), X509_get0_notAfter(ca)) > 0) {
    X509_set1_notAfter(cert.get(), X509_get0_notAfter(ca));
  }
  X509_set_pubkey(cert.get(), key);
  add_ext(cert.get(), ca, NID_basic_constraints, "critical,CA:FALSE");
  add_ext(cert.get(), ca, NID_key_usage,
          key_type == KeyType::rsa2048 ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature");
  add_ext(cert.get(), ca, NID_ext_key_usage, "clientAuth");
  add_ext(cert.get(), ca, NID_subject_key_identifier, "hash");
  add_ext(cert.get(), ca, NID_authority_key_identifier, "keyid");
  add_ext(cert.get(), ca, NID_subject_alt_name,
          std::string("otherName:") + upn_oid + ";UTF8:" + upn + ",email:" + upn);
  if (X509_sign(cert.get(), ca_key, EVP_sha256()) == 0) {
    throw IdentityError("signing a device certificate failed (" + auth::last_openssl_error() + ")");
  }
  return cert;
}

}  // namespace

std::string device_user(std::uint32_t index) { return "user" + std::to_string(index); }

std::string device_id_for(std::uint32_t index) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "EASB%012X", index);
  return buf;
}

DeviceIdentity load_identity(const std::filesystem::path& cert_path, const std::filesystem::path& key_path) {
  DeviceIdentity id;
  id.cert = read_cert(cert_path);
  id.key = read_key(key_path);
  if (X509_check_private_key(id.cert.get(), id.key.get()) != 1) {
    ERR_clear_error();
    throw IdentityError("--key '" + key_path.string() + "' does not match --cert '" + cert_path.string() + "'");
  }
  id.upn = upn_of(id.cert.get());
  id.user = id.upn.empty() ? device_user(1) : id.upn.substr(0, id.upn.find('@'));
  id.device_id = device_id_for(1);
  return id;
}

std::vector<DeviceIdentity> mint_identities(const std::filesystem::path& ca_cert_path,
                                            const std::filesystem::path& ca_key_path, std::uint32_t count,
                                            const std::string& upn_domain, KeyType key_type, unsigned threads,
                                            const std::function<void(std::uint32_t)>& progress) {
  auth::OwnedX509 ca = read_cert(ca_cert_path);
  PkeyShared ca_key = read_key(ca_key_path);
  if (X509_check_private_key(ca.get(), ca_key.get()) != 1) {
    ERR_clear_error();
    throw IdentityError("--device-ca-key '" + ca_key_path.string() + "' does not match --device-ca '" +
                        ca_cert_path.string() + "'");
  }
  if (X509_check_ca(ca.get()) == 0) {
    throw IdentityError("--device-ca '" + ca_cert_path.string() + "' is not a CA certificate");
  }
  threads = std::max(1u, threads);
  std::vector<PkeyShared> rsa_pool(key_type == KeyType::rsa2048 ? std::min(count, rsa_key_pool) : 0);
  std::vector<DeviceIdentity> ids(count);
  std::atomic<std::uint32_t> done{0};
  std::atomic<bool> failed{false};
  std::string failure;
  std::mutex failure_mutex;
  auto make_keys = [&](unsigned t) {
    try {
      for (std::size_t k = t; k < rsa_pool.size() && !failed; k += threads) rsa_pool[k] = generate_key(key_type);
    } catch (const IdentityError& e) {
      std::lock_guard lock(failure_mutex);
      failure = e.what();
      failed = true;
    }
  };
  auto mint = [&](unsigned t) {
    try {
      for (std::uint32_t i = t; i < count && !failed; i += threads) {
        DeviceIdentity& id = ids[i];
        id.user = device_user(i + 1);
        id.upn = id.user + "@" + upn_domain;
        id.device_id = device_id_for(i + 1);
        id.key = rsa_pool.empty() ? generate_key(key_type) : rsa_pool[i % rsa_pool.size()];
        id.cert = mint_cert(ca.get(), ca_key.get(), id.key.get(), key_type, id.user, id.upn);
        done.fetch_add(1, std::memory_order_relaxed);
      }
    } catch (const IdentityError& e) {
      std::lock_guard lock(failure_mutex);
      failure = e.what();
      failed = true;
    }
  };
  // Runs fn on every thread; the calling thread reports progress until all of them finished.
  auto run_phase = [&](const std::function<void(unsigned)>& fn) {
    std::atomic<unsigned> finished{0};
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        fn(t);
        finished.fetch_add(1);
      });
    }
    while (finished.load() < threads) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      progress(done.load());
    }
    for (auto& th : pool) th.join();
  };
  run_phase(make_keys);
  if (!failed) run_phase(mint);
  if (failed) throw IdentityError(failure);
  progress(done.load());
  return ids;
}

}  // namespace easedge::bench
