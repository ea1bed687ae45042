// What a finished request leaves behind, written once at its end with every field known by then (as nginx
// does): the requests counter, the access log line and the operator console's entry.
#pragma once

#include "auth/client_certificate.h"
#include "proxy/access_log.h"
#include "proxy/admission.h"
#include "proxy/request_record.h"
#include "proxy/thread_context.h"

#include <cstdint>
#include <string_view>

namespace easedge::proxy {

// One answered request (refused or not) and its connection's facts. `record.id` is drawn.
struct FinishedRequest {
  const RequestRecord& record;
  const AdmissionOutcome& verdict;               // the ActiveSync facts
  const auth::ClientCertificate* certificate;    // null: client certificates are off
  std::string_view user_agent;
  std::string_view client_address;
  std::uint16_t client_port;
  std::string_view server_address;
  std::uint16_t server_port;
};

// `access_log` null: the access log is off.
void log_finished_request(ThreadContext& context, AccessLogWriter* access_log, const FinishedRequest& request);

}  // namespace easedge::proxy
