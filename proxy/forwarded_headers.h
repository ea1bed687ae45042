// Request header hygiene at the edge: strips what a client could use to spoof identity or confuse the
// upstream, then adds the identity headers only the proxy may set.
#pragma once

#include "auth/client_certificate.h"

#include <boost/beast/http/fields.hpp>

#include <string>
#include <string_view>

namespace easedge::proxy {

namespace http = boost::beast::http;

struct ForwardedIdentity {
  std::string user;                                // X-Forwarded-User; empty = not sent
  const auth::ClientCertificate* certificate = nullptr;  // X-Forwarded-Client-Cert when present
  std::string client_address;                      // X-Forwarded-For
  std::string authorization;                       // Authorization to send instead of the client's (Kerberos)
};

// Removes, whatever their case or '_' / '-' spelling: the identity headers (X-Forwarded-User,
// X-Forwarded-Client-Cert, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, Forwarded, X-Real-IP),
// hop-by-hop headers (Connection and what it lists, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade,
// Proxy-Authorization), and Expect (the proxy answers 100-continue itself).
// With `drop_authorization`, the client's Authorization header goes too (Kerberos mode).
void sanitize_request_headers(http::fields& fields, bool drop_authorization);

// Removes hop-by-hop headers from an upstream response.
void sanitize_response_headers(http::fields& fields);

// Adds the proxy's own headers; the caller has sanitised first.
void add_forwarded_headers(http::fields& fields, const ForwardedIdentity& identity);

// Envoy's XFCC form: Hash=<sha256 hex>;Subject="<RFC 2253 subject>".
std::string client_cert_header_value(const auth::ClientCertificate& certificate);

// True when `value` can go into a header as is: no CR, LF, NUL or other control bytes except TAB.
bool is_safe_header_value(std::string_view value);

}  // namespace easedge::proxy
