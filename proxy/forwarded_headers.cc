// Header sanitising and identity headers.
#include "proxy/forwarded_headers.h"

#include <algorithm>
#include <array>
#include <vector>

namespace easedge::proxy {

namespace {

// Lower-case with '_' folded to '-': IIS and CGI-style upstreams treat X_Forwarded_User as X-Forwarded-User.
std::string canonical(std::string_view name) {
  std::string out(name);
  for (auto& c : out) {
    if (c == '_') c = '-';
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

constexpr std::array<std::string_view, 7> identity_headers{
    "x-forwarded-user", "x-forwarded-client-cert", "x-forwarded-for", "x-forwarded-proto",
    "x-forwarded-host", "forwarded",               "x-real-ip"};
constexpr std::array<std::string_view, 7> hop_by_hop_headers{
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "proxy-authorization"};

bool listed(std::string_view name, const auto& list) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

// Names listed in Connection: they are hop-by-hop for this message (RFC 9110 7.6.1).
std::vector<std::string> connection_tokens(const http::fields& fields) {
  std::vector<std::string> tokens;
  for (auto range = fields.equal_range(http::field::connection); range.first != range.second; ++range.first) {
    std::string_view value = range.first->value();
    std::size_t start = 0;
    while (start <= value.size()) {
      auto end = value.find(',', start);
      if (end == std::string_view::npos) end = value.size();
      auto token = value.substr(start, end - start);
      while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
      if (!token.empty()) tokens.push_back(canonical(token));
      start = end + 1;
    }
  }
  return tokens;
}

template <typename Drop>
void erase_if(http::fields& fields, Drop drop) {
  for (auto it = fields.begin(); it != fields.end();) {
    if (drop(canonical(it->name_string())))
      it = fields.erase(it);
    else
      ++it;
  }
}

}  // namespace

void sanitize_request_headers(http::fields& fields, bool drop_authorization) {
  auto tokens = connection_tokens(fields);
  erase_if(fields, [&](const std::string& name) {
    return listed(name, identity_headers) || listed(name, hop_by_hop_headers) || name == "expect" ||
           (drop_authorization && name == "authorization") ||
           std::find(tokens.begin(), tokens.end(), name) != tokens.end();
  });
}

void sanitize_response_headers(http::fields& fields) {
  auto tokens = connection_tokens(fields);
  erase_if(fields, [&](const std::string& name) {
    return listed(name, hop_by_hop_headers) || std::find(tokens.begin(), tokens.end(), name) != tokens.end();
  });
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

void add_forwarded_headers(http::fields& fields, const ForwardedIdentity& identity) {
  if (!identity.user.empty()) fields.set("X-Forwarded-User", identity.user);
  if (identity.certificate != nullptr && identity.certificate->leaf)
    fields.set("X-Forwarded-Client-Cert", client_cert_header_value(*identity.certificate));
  if (!identity.client_address.empty()) fields.set("X-Forwarded-For", identity.client_address);
  fields.set("X-Forwarded-Proto", "https");
  if (!identity.authorization.empty()) fields.set(http::field::authorization, identity.authorization);
}

}  // namespace easedge::proxy
