// The heads easedge forwards, built from its own parse and never edited from the peer's bytes: the
// end-to-end fields that may cross, exactly one framing field easedge computed, then the proxy's identity.
#pragma once

#include "auth/client_certificate.h"
#include "config/config.h"
#include "mapping/account_mapper.h"
#include "proxy/message_framing.h"

#include <boost/beast/http/message.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace easedge::proxy {

namespace http = boost::beast::http;

struct ForwardedIdentity {
  std::string user{};                              // the UPN (Kerberos, logs)
  std::string forwarded_user{};                    // upstream.identity_header's value; empty = not sent
  const auth::ClientCertificate* certificate = nullptr;  // upstream.client_cert_header when present
  std::string client_address{};                    // X-Forwarded-For
  std::string authorization{};                     // Authorization to send (Kerberos); the device's never goes
};

// Headers through which Exchange, IIS (URL Rewrite, ARR), SOGo and common frameworks take the user, the
// client's address or certificate, the route or the method: only easedge may speak for those, so a
// device's are dropped in any case or '_'/'-' spelling. docs/security.md lists them with the reasons.
inline constexpr std::string_view identity_and_routing_headers[]{
    "x-forwarded-user", "x-forwarded-client-cert", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
    "x-forwarded-port", "x-forwarded-prefix", "x-forwarded-server", "forwarded", "x-real-ip",
    "x-client-ip", "true-client-ip", "x-cluster-client-ip", "x-original-url", "x-rewrite-url",
    "x-original-host", "x-webobjects-remote-user", "x-remote-user", "remote-user", "x-authenticated-user",
    "x-ms-client-principal-name", "x-ms-client-principal", "x-arr-clientcert", "x-arr-ssl", "x-client-cert",
    "x-ssl-client-cert", "client-cert", "client-cert-chain", "x-http-method-override", "x-http-method",
    "x-method-override"};

// How one backend wants its requests (upstream.* keys): the headers it reads the user and the certificate
// from, where its ActiveSync endpoint lives, whether it keeps connections.
struct UpstreamForm {
  std::string identity_header = "X-Forwarded-User";
  config::IdentityFormat identity_format = config::IdentityFormat::upn;
  std::string client_cert_header = "X-Forwarded-Client-Cert";  // "" = not sent
  std::string path_prefix{};  // "" or a clean absolute path ("/SOGo") put before the device's target
  bool keep_alive = true;     // false: every forwarded request says Connection: close
};

// Which of a device's request headers easedge never forwards, and the form the backend gets: the list above,
// upstream.strip_headers, the form's identity and certificate headers (so a device can never send its own in
// any spelling), hop-by-hop and framing fields (easedge writes its own), Authorization (the identity easedge
// vouches for is the only one the backend may see) and the method override some frameworks honour.
class HeaderPolicy {
public:
  explicit HeaderPolicy(const std::vector<std::string>& extra_strip = {}, UpstreamForm form = {});

  // `name` as sent, in any case or '_'/'-' spelling (compared with same_header_name).
  bool strips_request_header(std::string_view name) const;
  // The same for a parsed field: one that Beast's parser recognised (`known` is not http::field::unknown) is
  // decided by its enum, without comparing names; the others as above.
  bool strips_request_field(http::field known, std::string_view name) const;
  const UpstreamForm& form() const { return form_; }

private:
  // Every name stripped, canonical, grouped by length: a field is compared only with names as long as its own.
  std::vector<std::vector<std::string>> stripped_by_length_;
  // Indexed by http::field: the stripped names Beast has an enum for. Beast recognises a name only in the
  // '-' spelling (any case), which is the canonical one, so the two answers agree for every field.
  std::vector<bool> stripped_known_;
  UpstreamForm form_;
};

// The name of `account` that `format` asks for; "" when the account has none (no UPN, no mail in the
// directory) or it could not go into a header as is.
std::string forwarded_user_name(const mapping::MappedAccount& account, config::IdentityFormat format);

// A head easedge writes to the next hop: the bytes of its start line, its fields and the empty line, built
// from easedge's own parse, and how the body after it is framed (see OutgoingBody).
struct OutgoingHead {
  std::string bytes;
  bool chunked = false;    // the body goes out as chunks easedge frames
  bool keep_alive = true;  // what the head told the next hop about the connection
};

// The request easedge sends upstream for a device's checked head: HTTP/1.1, the same method, the target
// after the form's path prefix (query byte-identical), Host, the fields `policy` lets through, `framing` as
// Content-Length or chunked (a bodiless POST says Content-Length: 0), then the identity headers in the form's
// names, and `request_id` as X-Request-Id (a device's own never crosses). Trailers never cross: they belong to
// the parser's message. `out.bytes` keeps its capacity.
void write_forwarded_request(OutgoingHead& out, const RequestHead& parsed, const Framing& framing,
                             const HeaderPolicy& policy, const ForwardedIdentity& identity,
                             std::string_view request_id);

// The response easedge sends a device for an upstream's checked head: its status, its end-to-end fields,
// and framing for the device's HTTP version. A body of unknown length is chunked for HTTP/1.1 and ends the
// connection for HTTP/1.0, so `out.keep_alive` is what the connection does next.
void write_device_response(OutgoingHead& out, const ResponseHead& parsed, const Framing& upstream_framing,
                           unsigned device_version, bool keep_alive);

// Envoy's XFCC form, appended to `out`: Hash=<sha256 hex>;Subject="<RFC 2253 subject>".
void append_client_cert_header_value(std::string& out, const auth::ClientCertificate& certificate);

// True when `value` can go into a header as is: no CR, LF, NUL or other control bytes except TAB.
bool is_safe_header_value(std::string_view value);

}  // namespace easedge::proxy
