// The OpenSSL toolkit shared by auth/, mapping/ and bench/: owning handles, the PEM reader, names and times.
#pragma once

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace easedge::auth {

// Releases an OpenSSL object with its own free function (a function, not a macro such as sk_X509_free).
template <auto Free>
struct OpenSslFree {
  template <typename T>
  void operator()(T* p) const { Free(p); }
};

// The one owner of an OpenSSL object, so every early return releases what it acquired.
template <typename T, auto Free>
using Owned = std::unique_ptr<T, OpenSslFree<Free>>;

using OwnedBio = Owned<BIO, BIO_free>;
using OwnedX509 = Owned<X509, X509_free>;
using OwnedPkey = Owned<EVP_PKEY, EVP_PKEY_free>;
using OwnedCrl = Owned<X509_CRL, X509_CRL_free>;
using OwnedX509Store = Owned<X509_STORE, X509_STORE_free>;
using OwnedX509StoreCtx = Owned<X509_STORE_CTX, X509_STORE_CTX_free>;
using OwnedSslCtx = Owned<SSL_CTX, SSL_CTX_free>;
using OwnedSsl = Owned<SSL, SSL_free>;

// A certificate held by several owners at once (verdicts shared by connections, NTAuth CAs, work handed to
// another thread). Freed with X509_free when the last owner lets go.
using SharedX509 = std::shared_ptr<X509>;
// Takes a new reference on `cert` (X509_up_ref); null stays null.
SharedX509 share(X509* cert);
// Hands an owned certificate over to shared ownership.
SharedX509 share(OwnedX509 cert);

// Every certificate of a PEM file (one certificate or a CA bundle). Throws std::runtime_error naming the
// file when it cannot be opened or holds no PEM certificate.
std::vector<OwnedX509> read_pem_certificates(const std::filesystem::path& file);

// RFC 2253 form of a name (OpenSSL's XN_FLAG_RFC2253: control and non-ASCII bytes escaped, safe in a header).
std::string rfc2253(const X509_NAME* name);

using SystemTime = std::chrono::system_clock::time_point;
// An ASN1 UTCTime or GeneralizedTime (fractions and offsets allowed) as a time point; nullopt when null or
// unreadable.
std::optional<SystemTime> time_of(const ASN1_TIME* time);
// Seconds since 1970 as a time point, clamped to what the nanosecond clock holds (years 1678-2262): a CRL,
// certificate or directory may say 9999, which would otherwise overflow into a date in the past.
SystemTime clamped_time(std::int64_t seconds);
// "2026-01-31T12:00:00Z"
std::string format_time(SystemTime t);

// The last OpenSSL error as text (clears the queue).
std::string last_openssl_error();

// Empties this thread's OpenSSL error queue, which SSL_get_error() needs before every TLS call. OpenSSL 3.0's
// ERR_clear_error() resets all its slots whether or not anything is queued (~1,700 instructions a call, two
// calls per keep-alive request): a peek finds the queue empty nearly always.
inline void clear_openssl_errors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

}  // namespace easedge::auth
