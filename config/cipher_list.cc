// tls.ciphers validation against the OpenSSL the proxy runs with (the names it knows are the ones that count).
#include "config/cipher_list.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <memory>
#include <string_view>

namespace easedge::config {

namespace {

bool selects_a_tls12_suite(SSL_CTX* ctx, const std::string& list) {
  bool ok = SSL_CTX_set_cipher_list(ctx, list.c_str()) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace

boost::system::result<void, std::string> check_cipher_list(const std::string& list) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) return "OpenSSL cannot make a TLS context to check it";
  // OpenSSL separates elements by ':', ',', ' ' or ';'.
  constexpr std::string_view separators = ":, ;";
  std::string_view rest = list;
  while (!rest.empty()) {
    auto end = rest.find_first_of(separators);
    auto element = std::string(rest.substr(0, end));
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (element.empty() || std::string_view("!-+@").find(element.front()) != std::string_view::npos) continue;
    if (!selects_a_tls12_suite(ctx.get(), element))
      return "'" + element + "' names no TLS 1.2 cipher suite this OpenSSL knows (TLS 1.3 suites are not set here)";
  }
  if (!selects_a_tls12_suite(ctx.get(), list)) return "selects no TLS 1.2 cipher suite";
  return {};
}

}  // namespace easedge::config
