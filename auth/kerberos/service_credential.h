// The proxy service account's forwardable TGT from its keytab, in a private MEMORY ccache, as a GSSAPI credential.
#pragma once

#include "auth/kerberos/classify.h"
#include "auth/kerberos/handles.h"

#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace easedge::auth::kerberos {

// A failed krb5/GSSAPI step: which step, the krb5 error code, and the library's own text.
struct Krb5Failure {
  Stage stage = Stage::service_ticket;
  std::int32_t code = 0;
  std::string message;
};

// What a ticket says about itself (the parts an operator needs to diagnose a set-up).
struct TicketInfo {
  std::string client;
  std::string server;
  bool forwardable = false;
  std::chrono::system_clock::time_point auth_time;
  std::chrono::system_clock::time_point end_time;
  std::int32_t ticket_enctype = 0;   // the key of the service the ticket is for
  std::int32_t session_enctype = 0;
};

TicketInfo describe_ticket(krb5_context context, const krb5_creds& creds);
std::string enctype_name(std::int32_t enctype);
std::string unparse_principal(krb5_context context, krb5_const_principal principal);

// One key of a keytab.
struct KeytabEntry {
  std::string principal;
  unsigned kvno = 0;
  std::int32_t enctype = 0;
};

// Every entry of KEYTAB, or the failure to read it (Stage::keytab).
boost::system::result<std::vector<KeytabEntry>, Krb5Failure> read_keytab(const std::filesystem::path& keytab);

// Whether KEYTAB holds a key for PRINCIPAL (no KDC contact); the failure says what is wrong (Stage::keytab).
boost::system::result<void, Krb5Failure> check_keytab(const std::string& principal, const std::filesystem::path& keytab);

class ServiceCredential;
using ServiceCredentialResult = boost::system::result<std::shared_ptr<ServiceCredential>, Krb5Failure>;

class ServiceCredential {
public:
  // AS exchange with the KDC (blocking: call it on a worker thread): a forwardable TGT for PRINCIPAL.
  static ServiceCredentialResult acquire(const std::string& principal, const std::filesystem::path& keytab);

  ~ServiceCredential();
  ServiceCredential(const ServiceCredential&) = delete;
  ServiceCredential& operator=(const ServiceCredential&) = delete;

  // A krb5-mechanism initiator credential; thread-safe for concurrent use (MIT locks it internally).
  gss_cred_id_t gss() const { return cred_.get(); }
  // "MEMORY:..." holding the TGT, for krb5 API calls (kcd-check's step-by-step S4U requests).
  const std::string& ccache_name() const { return ccache_name_; }
  const TicketInfo& tgt() const { return tgt_; }

private:
  ServiceCredential(std::string ccache_name, GssCred cred, TicketInfo tgt)
      : ccache_name_(std::move(ccache_name)), cred_(std::move(cred)), tgt_(std::move(tgt)) {}

  std::string ccache_name_;
  GssCred cred_;
  TicketInfo tgt_;
};

// Destroys the MEMORY ccache NAME (MEMORY caches otherwise live as long as the process).
void destroy_ccache(const std::string& name);

// The text of a GSSAPI status (major and the mechanism's minor), for log lines.
std::string gss_status_text(OM_uint32 major, OM_uint32 minor);

}  // namespace easedge::auth::kerberos
