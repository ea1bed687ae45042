// The traces of a finished request: the requests counter, the access log line, the console's entry.
#include "proxy/request_log.h"

#include "eas/command.h"

namespace easedge::proxy {

void log_finished_request(ThreadContext& context, AccessLogWriter* access_log, const FinishedRequest& request) {
  const auto& record = request.record;
  const auto* certificate = request.certificate;
  auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                        record.started);
  const auto finished = std::chrono::system_clock::now();  // the access log's and the console's time alike
  context.metrics.requests(record.status, request.verdict.eas.command).inc();
  const auto& eas = request.verdict.eas;
  std::string_view command = eas.command ? eas::command_name(*eas.command) : std::string_view();
  if (access_log) {
    std::string_view target = record.target;
    auto question = target.find('?');
    AccessLogRecord entry{
        .time = finished,
        .server_ip = request.server_address,
        .server_port = request.server_port,
        .client_ip = request.client_address,
        .client_port = request.client_port,
        .method = record.method,
        .uri_stem = target.substr(0, question),
        .uri_query = question == std::string_view::npos ? std::string_view() : target.substr(question + 1),
        .user = record.user,  // never the query's User=: that is the device's claim, not who it is
        .cert_sha256 = certificate ? std::string_view(certificate->sha256_hex) : std::string_view(),
        .user_agent = request.user_agent,
        .eas_command = command,
        .device_id = eas.device_id,
        .device_type = eas.device_type,
        .status = record.status,
        .substatus = record.substatus,
        .win32_status = 0,
        .bytes_in = record.bytes_in,
        .bytes_out = record.bytes_out,
        .duration = elapsed,
        .upstream_status = record.upstream_status,
        .request_id = record.id,
    };
    access_log->write(entry);
  }
  // ---- operator console: the one place a finished request (refused or not) reaches the console log ----
  context.shared.console_log().record({.time = finished,
                                       .client_address = request.client_address,
                                       .subject = certificate ? std::string_view(certificate->subject) : "",
                                       .cert_sha256 = certificate ? std::string_view(certificate->sha256_hex) : "",
                                       .user = record.user,
                                       .device_id = eas.device_id,
                                       .device_type = eas.device_type,
                                       .command = command,
                                       .status = record.status,
                                       .substatus = record.substatus,
                                       .refusal = record.refusal,
                                       .detail = record.detail,
                                       .request_id = record.id},
                                      context.index);
  // ---- end operator console ----
}

}  // namespace easedge::proxy
