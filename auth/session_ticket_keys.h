// Shared TLS session ticket keys (tls.session_ticket_keys): the key file's format, and the OpenSSL callback using it.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace easedge::auth {

// One ticket key: 80 bytes decoded, in this order (as nginx's ssl_session_ticket_key and HAProxy's tls-ticket-keys).
struct SessionTicketKey {
  static constexpr std::size_t name_bytes = 16;
  static constexpr std::size_t hmac_bytes = 32;
  static constexpr std::size_t aes_bytes = 32;
  static constexpr std::size_t total_bytes = name_bytes + hmac_bytes + aes_bytes;

  std::array<unsigned char, name_bytes> name{};
  std::array<unsigned char, hmac_bytes> hmac{};
  std::array<unsigned char, aes_bytes> aes{};
};

// The keys of one file: the first encrypts new tickets, every one decrypts.
using SessionTicketKeys = std::vector<SessionTicketKey>;

// Why a key file cannot be used: the 1-based line (0 = the file as a whole) and what is wrong with it.
struct SessionTicketKeyProblem {
  std::size_t line = 0;
  std::string problem;
};

// Parses a key file's text: one base64 key per line (`openssl rand 80 | base64 -w0`); empty lines and lines
// starting with '#' are skipped, a trailing CR is ignored. Sets `problem` and returns nothing on the first bad
// line (not base64, not 80 bytes, a key name seen before) or when no key is left.
std::optional<SessionTicketKeys> parse_session_ticket_keys(std::string_view text, SessionTicketKeyProblem& problem);

// Makes `context` encrypt and decrypt tickets with `keys` (AES-256-CBC, HMAC-SHA256) instead of its own random
// per-context key, so every node sharing the file, and this node after a reload or restart, accepts them. The
// context owns its copy of the keys.
void use_session_ticket_keys(SSL_CTX* context, SessionTicketKeys keys);

}  // namespace easedge::auth
