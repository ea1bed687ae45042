// Building forwarded heads from easedge's own parse, and the request header strip list.
#include "proxy/forwarded_headers.h"

#include <algorithm>

namespace easedge::proxy {

namespace {

// Hop-by-hop fields (RFC 9110 7.6.1) and the ones easedge always writes itself: framing, Host, Expect
// (easedge answers 100-continue), Authorization (see HeaderPolicy).
constexpr std::string_view request_fields_easedge_writes[]{
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "proxy-authorization",
    "content-length", "transfer-encoding", "host", "expect", "authorization"};
constexpr std::string_view response_fields_easedge_writes[]{
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "proxy-authenticate",
    "content-length", "transfer-encoding"};

template <typename List>
bool listed(std::string_view name, const List& list) {
  return std::any_of(std::begin(list), std::end(list), [&](std::string_view entry) { return same_header_name(name, entry); });
}

// Copies the fields of `from` that `keep` accepts (by name as sent) and that no Connection field names.
template <typename Keep>
void copy_end_to_end(const http::fields& from, http::fields& to, Keep keep) {
  auto hop_by_hop = connection_tokens(from);
  for (const auto& field : from) {
    auto name = field.name_string();
    if (!keep(name) || listed(name, hop_by_hop)) continue;
    if (field.name() != http::field::unknown)
      to.insert(field.name(), name, field.value());  // no second lookup of a name Beast already knows
    else
      to.insert(name, field.value());
  }
}

// Inserted, not set: HeaderPolicy stripped every spelling of these names from the device's fields, so there is
// nothing to replace (set() would search the fields for each name first).
void add_identity(http::fields& fields, const ForwardedIdentity& identity, const UpstreamForm& form) {
  if (!identity.forwarded_user.empty()) fields.insert(form.identity_header, identity.forwarded_user);
  if (identity.certificate != nullptr && identity.certificate->leaf && !form.client_cert_header.empty())
    fields.insert(form.client_cert_header, client_cert_header_value(*identity.certificate));
  if (!identity.client_address.empty()) fields.insert("X-Forwarded-For", identity.client_address);
  fields.insert("X-Forwarded-Proto", "https");
  if (!identity.authorization.empty()) fields.insert(http::field::authorization, identity.authorization);
}

}  // namespace

HeaderPolicy::HeaderPolicy(const std::vector<std::string>& extra_strip, UpstreamForm form) : form_(std::move(form)) {
  for (const auto& name : extra_strip) extra_strip_.push_back(canonical_header_name(name));
  for (const auto* name : {&form_.identity_header, &form_.client_cert_header})
    if (!name->empty()) extra_strip_.push_back(canonical_header_name(*name));
}

bool HeaderPolicy::strips_request_header(std::string_view name) const {
  return listed(name, identity_and_routing_headers) || listed(name, request_fields_easedge_writes) ||
         listed(name, extra_strip_);
}

ForwardedRequest forwarded_request(const http::request_header<>& parsed, const Framing& framing,
                                   const HeaderPolicy& policy, const ForwardedIdentity& identity) {
  const auto& form = policy.form();
  ForwardedRequest out;
  out.version(11);
  out.method_string(parsed.method_string());  // never throws, unlike method() for a verb Beast does not know
  if (form.path_prefix.empty())
    out.target(parsed.target());
  else
    out.target(form.path_prefix + std::string(parsed.target()));  // origin form: the target starts with '/'
  out.set(http::field::host, parsed[http::field::host]);
  copy_end_to_end(parsed, out, [&](std::string_view name) { return !policy.strips_request_header(name); });
  switch (framing.kind) {
    case BodyFraming::chunked: out.chunked(true); break;
    case BodyFraming::content_length: out.content_length(framing.length); break;
    case BodyFraming::none:
    case BodyFraming::until_close:
      if (parsed.method() == http::verb::post) out.content_length(0);  // IIS answers 411 to a POST without one
      break;
  }
  if (!form.keep_alive) out.keep_alive(false);
  add_identity(out, identity, form);
  return out;
}

DeviceResponse device_response(const http::response_header<>& parsed, const Framing& upstream_framing,
                               unsigned device_version, bool keep_alive) {
  DeviceResponse out;
  out.version(device_version >= 11 ? 11 : 10);
  out.result(parsed.result_int());
  out.reason(parsed.reason());
  copy_end_to_end(parsed, out, [](std::string_view name) { return !listed(name, response_fields_easedge_writes); });
  switch (upstream_framing.kind) {
    case BodyFraming::content_length: out.content_length(upstream_framing.length); break;
    case BodyFraming::chunked:
    case BodyFraming::until_close:
      if (device_version >= 11)
        out.chunked(true);
      else
        keep_alive = false;  // HTTP/1.0 has no chunked coding: the body ends when the connection does
      break;
    case BodyFraming::none: break;
  }
  out.keep_alive(keep_alive);
  return out;
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
  return is_safe_header_value(name) ? name : std::string();
}

std::string client_cert_header_value(const auth::ClientCertificate& certificate) {
  std::string out = "Hash=" + certificate.sha256_hex + ";Subject=\"";
  for (char c : certificate.subject) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

bool is_safe_header_value(std::string_view value) {
  return std::none_of(value.begin(), value.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && u != '\t') || u == 0x7f;
  });
}

}  // namespace easedge::proxy
