// Building forwarded heads from easedge's own parse, and the request header strip list.
#include "proxy/forwarded_headers.h"

#include "proxy/request_id.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <iterator>

namespace easedge::proxy {

namespace {

// Hop-by-hop fields (RFC 9110 7.6.1) and the ones easedge always writes itself: framing, Host, Expect
// (easedge answers 100-continue), Authorization (see HeaderPolicy), the request id (a device's is replaced, so
// Exchange's logs join easedge's access log on easedge's id).
constexpr std::string_view request_fields_easedge_writes[]{
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "proxy-authorization",
    "content-length", "transfer-encoding", "host", "expect", "authorization", request_id_header};
constexpr std::string_view response_fields_easedge_writes[]{
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "proxy-authenticate",
    "content-length", "transfer-encoding"};

template <typename List>
bool listed(std::string_view name, const List& list) {
  return std::any_of(std::begin(list), std::end(list), [&](std::string_view entry) { return same_header_name(name, entry); });
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

void append_number(std::string& out, std::uint64_t number) {
  char digits[20];
  auto end = std::to_chars(std::begin(digits), std::end(digits), number).ptr;
  out.append(digits, end);
}

// Appends the fields of `from` that `keep` accepts (by Beast's enum and the name as sent) and that no Connection
// field names, as Beast parsed them: a name is a token, a value has no CR, LF or NUL, so none can start another.
template <typename Keep>
void append_end_to_end(std::string& out, const HeadFields& from, Keep keep) {
  auto hop_by_hop = connection_tokens(from);
  for (const auto& field : from) {
    auto name = field.name_string();
    if (!keep(field.name(), name) || listed(name, hop_by_hop)) continue;
    append_field(out, name, field.value());
  }
}

// HeaderPolicy stripped every spelling of these names from the device's fields: each appears once, easedge's.
void append_identity(std::string& out, const ForwardedIdentity& identity, const UpstreamForm& form) {
  if (!identity.forwarded_user.empty()) append_field(out, form.identity_header, identity.forwarded_user);
  if (identity.certificate != nullptr && identity.certificate->leaf && !form.client_cert_header.empty()) {
    out.append(form.client_cert_header).append(": ");
    append_client_cert_header_value(out, *identity.certificate);
    out.append("\r\n");
  }
  if (!identity.client_address.empty()) append_field(out, "X-Forwarded-For", identity.client_address);
  append_field(out, "X-Forwarded-Proto", "https");
  if (!identity.authorization.empty()) append_field(out, "Authorization", identity.authorization);
}

}  // namespace

HeaderPolicy::HeaderPolicy(const std::vector<std::string>& extra_strip, UpstreamForm form) : form_(std::move(form)) {
  auto strip = [&](std::string_view name) {
    auto canonical = canonical_header_name(name);
    if (auto known = static_cast<std::size_t>(http::string_to_field(canonical)); known != 0) {
      if (known >= stripped_known_.size()) stripped_known_.resize(known + 1);
      stripped_known_[known] = true;
    }
    if (canonical.size() >= stripped_by_length_.size()) stripped_by_length_.resize(canonical.size() + 1);
    stripped_by_length_[canonical.size()].push_back(std::move(canonical));
  };
  for (auto name : identity_and_routing_headers) strip(name);
  for (auto name : request_fields_easedge_writes) strip(name);
  for (const auto& name : extra_strip) strip(name);
  for (const auto* name : {&form_.identity_header, &form_.client_cert_header})
    if (!name->empty()) strip(*name);
}

bool HeaderPolicy::strips_request_header(std::string_view name) const {
  if (name.size() >= stripped_by_length_.size()) return false;
  const auto& candidates = stripped_by_length_[name.size()];
  return std::any_of(candidates.begin(), candidates.end(),
                     [&](const std::string& stripped) { return same_header_name(name, stripped); });
}

bool HeaderPolicy::strips_request_field(http::field known, std::string_view name) const {
  if (known == http::field::unknown) return strips_request_header(name);
  auto index = static_cast<std::size_t>(known);
  return index < stripped_known_.size() && stripped_known_[index];
}

void write_forwarded_request(OutgoingHead& out, const RequestHead& parsed, const Framing& framing,
                             const HeaderPolicy& policy, const ForwardedIdentity& identity,
                             std::string_view request_id) {
  const auto& form = policy.form();
  auto& bytes = out.bytes;
  bytes.clear();
  // The method as sent (method() would be unknown for a verb Beast does not know); the target in origin form,
  // so it starts with '/' after any prefix.
  bytes.append(parsed.method_string()).append(" ").append(form.path_prefix).append(parsed.target());
  bytes.append(" HTTP/1.1\r\n");
  append_field(bytes, "Host", field_value(parsed, http::field::host));
  append_end_to_end(bytes, parsed,
                    [&](http::field known, std::string_view name) { return !policy.strips_request_field(known, name); });
  out.chunked = framing.kind == BodyFraming::chunked;
  switch (framing.kind) {
    case BodyFraming::chunked: append_field(bytes, "Transfer-Encoding", "chunked"); break;
    case BodyFraming::content_length:
      bytes.append("Content-Length: ");
      append_number(bytes, framing.length);
      bytes.append("\r\n");
      break;
    case BodyFraming::none:
    case BodyFraming::until_close:
      if (parsed.method() == http::verb::post) append_field(bytes, "Content-Length", "0");  // IIS answers 411 without
      break;
  }
  out.keep_alive = form.keep_alive;
  if (!form.keep_alive) append_field(bytes, "Connection", "close");
  append_identity(bytes, identity, form);
  append_field(bytes, request_id_header, request_id);
  bytes.append("\r\n");
}

void write_device_response(OutgoingHead& out, const ResponseHead& parsed, const Framing& upstream_framing,
                           unsigned device_version, bool keep_alive) {
  bool http11 = device_version >= 11;
  auto& bytes = out.bytes;
  bytes.clear();
  bytes.append(http11 ? "HTTP/1.1 " : "HTTP/1.0 ");
  append_number(bytes, parsed.result_int());  // three digits: Beast's parser takes no other status
  bytes.append(" ").append(parsed.reason()).append("\r\n");
  append_end_to_end(bytes, parsed,
                    [](http::field, std::string_view name) { return !listed(name, response_fields_easedge_writes); });
  out.chunked = false;
  switch (upstream_framing.kind) {
    case BodyFraming::content_length:
      bytes.append("Content-Length: ");
      append_number(bytes, upstream_framing.length);
      bytes.append("\r\n");
      break;
    case BodyFraming::chunked:
    case BodyFraming::until_close:
      if (http11) {
        out.chunked = true;
        append_field(bytes, "Transfer-Encoding", "chunked");
      } else {
        keep_alive = false;  // HTTP/1.0 has no chunked coding: the body ends when the connection does
      }
      break;
    case BodyFraming::none: break;
  }
  out.keep_alive = keep_alive;
  if (http11 && !keep_alive) append_field(bytes, "Connection", "close");
  if (!http11 && keep_alive) append_field(bytes, "Connection", "keep-alive");
  bytes.append("\r\n");
}

std::string forwarded_user_name(const mapping::MappedAccount& account, config::IdentityFormat format) {
  std::string name;
  switch (format) {
    case config::IdentityFormat::upn: name = account.user_principal_name; break;
    case config::IdentityFormat::sam_account_name: name = account.sam_account_name; break;
    case config::IdentityFormat::upn_local_part:
      name = account.user_principal_name.substr(0, account.user_principal_name.rfind('@'));
      break;
    case config::IdentityFormat::mail: name = account.mail; break;
  }
  if (!is_safe_header_value(name)) name.clear();
  return name;  // returned in place (a conditional expression here would copy it)
}

void append_client_cert_header_value(std::string& out, const auth::ClientCertificate& certificate) {
  out.append("Hash=").append(certificate.sha256_hex).append(";Subject=\"");
  // A quoted-string: '"' and '\\' escaped; the runs between them (usually the whole subject) appended whole.
  std::string_view rest = certificate.subject;
  for (auto special = rest.find_first_of("\"\\"); special != std::string_view::npos;
       special = rest.find_first_of("\"\\")) {
    out.append(rest.substr(0, special)).push_back('\\');
    out.push_back(rest[special]);
    rest.remove_prefix(special + 1);
  }
  out.append(rest).push_back('"');
}

bool is_safe_header_value(std::string_view value) {
  return std::none_of(value.begin(), value.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && u != '\t') || u == 0x7f;
  });
}

}  // namespace easedge::proxy
