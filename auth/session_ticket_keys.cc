// Ticket key files and the ticket key callback: the same keys on every node, so a ticket from one resumes on all.
#include "auth/session_ticket_keys.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

namespace easedge::auth {

namespace {

// Strict base64 (RFC 4648, padded, no whitespace): what `base64 -w0` writes. Nothing on any other byte.
std::optional<std::string> decode_base64(std::string_view text) {
  auto value = [](unsigned char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::size_t padding = text.ends_with("==") ? 2 : text.ends_with('=') ? 1 : 0;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    std::uint32_t group = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      bool pad = i + j >= text.size() - padding;
      int v = pad ? 0 : value(static_cast<unsigned char>(text[i + j]));
      if (v < 0) return std::nullopt;
      group = group << 6 | static_cast<std::uint32_t>(v);
    }
    out.push_back(static_cast<char>(group >> 16));
    out.push_back(static_cast<char>(group >> 8 & 0xff));
    out.push_back(static_cast<char>(group & 0xff));
  }
  out.resize(out.size() - padding);
  return out;
}

// Owned by the SSL_CTX through ex_data: freed with it.
int keys_index() {
  static const int index = SSL_CTX_get_ex_new_index(
      0, nullptr, nullptr, nullptr, [](void*, void* data, CRYPTO_EX_DATA*, int, long, void*) {
        auto* keys = static_cast<SessionTicketKeys*>(data);
        if (keys == nullptr) return;
        OPENSSL_cleanse(keys->data(), keys->size() * sizeof(SessionTicketKey));
        delete keys;
      });
  return index;
}

bool set_hmac_key(EVP_MAC_CTX* hmac, const SessionTicketKey& key) {
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(key.hmac.data()),
                                        key.hmac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end()};
  return EVP_MAC_CTX_set_params(hmac, params) == 1;
}

// OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb): encrypt with the first key; decrypt
// with the key the ticket names, asking for a fresh ticket (2) when that is not the first key any more.
int ticket_key_callback(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                        EVP_MAC_CTX* hmac, int encrypt) {
  const auto* keys = static_cast<const SessionTicketKeys*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), keys_index()));
  if (keys == nullptr || keys->empty()) return -1;
  if (encrypt == 1) {
    const auto& key = keys->front();
    std::memcpy(key_name, key.name.data(), key.name.size());
    const int iv_length = EVP_CIPHER_get_iv_length(EVP_aes_256_cbc());
    if (RAND_bytes(iv, iv_length) != 1) return -1;
    if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes.data(), iv) != 1) return -1;
    return set_hmac_key(hmac, key) ? 1 : -1;
  }
  auto found = std::find_if(keys->begin(), keys->end(), [&](const SessionTicketKey& key) {
    return std::memcmp(key.name.data(), key_name, key.name.size()) == 0;
  });
  if (found == keys->end()) return 0;  // unknown key: a full handshake, not an error
  if (!set_hmac_key(hmac, *found)) return -1;
  if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, found->aes.data(), iv) != 1) return -1;
  return found == keys->begin() ? 1 : 2;
}

}  // namespace

std::optional<SessionTicketKeys> parse_session_ticket_keys(std::string_view text, SessionTicketKeyProblem& problem) {
  SessionTicketKeys keys;
  std::size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    auto end = text.find('\n');
    auto line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    auto decoded = decode_base64(line);
    if (!decoded) {
      problem = {line_number, "not one base64 key (make one with: openssl rand 80 | base64 -w0)"};
      return std::nullopt;
    }
    if (decoded->size() != SessionTicketKey::total_bytes) {
      problem = {line_number, "a key is " + std::to_string(SessionTicketKey::total_bytes) + " bytes, this one is " +
                                  std::to_string(decoded->size())};
      return std::nullopt;
    }
    SessionTicketKey key;
    auto* bytes = reinterpret_cast<const unsigned char*>(decoded->data());
    std::copy_n(bytes, key.name.size(), key.name.begin());
    std::copy_n(bytes + key.name.size(), key.hmac.size(), key.hmac.begin());
    std::copy_n(bytes + key.name.size() + key.hmac.size(), key.aes.size(), key.aes.begin());
    bool repeated = std::any_of(keys.begin(), keys.end(), [&](const SessionTicketKey& k) { return k.name == key.name; });
    if (repeated) {
      problem = {line_number, "repeats the key name (first 16 bytes) of an earlier line"};
      return std::nullopt;
    }
    keys.push_back(key);
  }
  if (keys.empty()) {
    problem = {0, "holds no key"};
    return std::nullopt;
  }
  return keys;
}

void use_session_ticket_keys(SSL_CTX* context, SessionTicketKeys keys) {
  SSL_CTX_set_ex_data(context, keys_index(), new SessionTicketKeys(std::move(keys)));
  SSL_CTX_set_tlsext_ticket_key_evp_cb(context, ticket_key_callback);
}

}  // namespace easedge::auth
