// The shared OpenSSL helpers: PEM reading, RFC 2253 names, ASN1 times, error text.
#include "auth/openssl.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <ctime>
#include <stdexcept>

namespace easedge::auth {

SharedX509 share(X509* cert) {
  if (cert == nullptr) return nullptr;
  X509_up_ref(cert);
  return SharedX509(cert, X509_free);
}

SharedX509 share(OwnedX509 cert) { return SharedX509(cert.release(), X509_free); }

std::vector<OwnedX509> read_pem_certificates(const std::filesystem::path& file) {
  OwnedBio bio(BIO_new_file(file.c_str(), "r"));
  if (!bio) throw std::runtime_error(file.string() + ": cannot open");
  std::vector<OwnedX509> certs;
  while (OwnedX509 cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) certs.push_back(std::move(cert));
  ERR_clear_error();  // the loop always ends on a "no start line" error
  if (certs.empty()) throw std::runtime_error(file.string() + ": no PEM certificate in the file");
  return certs;
}

std::string rfc2253(const X509_NAME* name) {
  OwnedBio bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

std::optional<SystemTime> time_of(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return std::nullopt;
  return clamped_time(timegm(&tm));
}

SystemTime clamped_time(std::int64_t seconds) {
  using std::chrono::duration_cast;
  constexpr auto lowest = duration_cast<std::chrono::seconds>(SystemTime::min().time_since_epoch()).count();
  constexpr auto highest = duration_cast<std::chrono::seconds>(SystemTime::max().time_since_epoch()).count();
  return SystemTime(std::chrono::seconds(std::clamp(seconds, lowest, highest)));
}

std::string format_time(SystemTime t) {
  auto seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string last_openssl_error() {
  unsigned long error = ERR_get_error();
  ERR_clear_error();
  if (error == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(error, text, sizeof text);
  return text;
}

}  // namespace easedge::auth
