// The per-request access log: IIS W3C extended or JSON-lines formatting, and a buffered thread-safe writer.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include "config/config.h"

namespace easedge::proxy {

// Everything known about a request when it ends. The string views must stay valid for the duration of the
// write()/format call only: formatting copies what it needs. Empty means unknown ('-' in W3C, "" in JSON).
struct AccessLogRecord {
  std::chrono::system_clock::time_point time;  // when the request ended (IIS logs completion time too)
  std::string_view server_ip;
  std::uint16_t server_port = 0;
  std::string_view client_ip;                  // the device, after PROXY protocol when a load balancer is used
  std::uint16_t client_port = 0;
  std::string_view method;
  std::string_view uri_stem;                   // path, without the query
  std::string_view uri_query;                  // as received (still percent-encoded), without the '?'
  std::string_view user;                       // the mapped account; empty until a certificate maps (never
                                               // the query's User=, which is the device's unverified claim)
  std::string_view cert_sha256;                // hex SHA-256 of the device certificate
  std::string_view user_agent;
  std::string_view eas_command;                // decoded from either query form, e.g. "Sync"
  std::string_view device_id;
  std::string_view device_type;
  unsigned status = 0;
  unsigned substatus = 0;                      // IIS substatus, e.g. 7 for 403.7
  std::uint32_t win32_status = 0;
  std::uint64_t bytes_in = 0;                  // request bytes read from the device, headers included
  std::uint64_t bytes_out = 0;                 // response bytes written to the device, headers included
  std::chrono::microseconds duration{0};
  unsigned upstream_status = 0;                // Exchange's status; 0 when the request never reached it
  std::string_view request_id;                 // also in a refusal's body and X-Request-Id header
};

// The #Fields line of the W3C format, in the order format_w3c writes them. sc(X-Request-Id) is IIS's naming
// for a response header field; it is last so parsers of the IIS default field set keep working.
inline constexpr std::string_view w3c_fields =
    "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) sc-status "
    "sc-substatus sc-win32-status time-taken sc(X-Request-Id)";

// Appends the #Software/#Version/#Date/#Fields header block that starts every W3C log file.
void format_w3c_header(std::chrono::system_clock::time_point now, std::string& out);

// Appends one W3C line (UTC date and time, time-taken in ms). Like IIS, spaces become '+' and empty fields
// '-'; control characters and bytes that are not UTF-8 become %XX so no value can split or forge a line.
void format_w3c(const AccessLogRecord& record, std::string& out);

// Appends one JSON object and '\n': ts, client, client_port, server, server_port, user, cert_sha256,
// method, uri, query, cmd, device_id, device_type, user_agent, status, substatus, win32_status, bytes_in,
// bytes_out, duration_ms, upstream_status, request_id. Strings are escaped per RFC 8259 (control characters as \u00XX)
// and bytes that are not UTF-8 become U+FFFD, so every line parses.
void format_json(const AccessLogRecord& record, std::string& out);

// How the writer batches lines. Defaults suit a busy node: one write(2) per 64 KiB or per second.
struct AccessLogOptions {
  std::size_t flush_bytes = 64 * 1024;                   // wake the flush thread once this much is pending
  std::chrono::milliseconds flush_interval{1000};        // longest a line waits in memory
  std::size_t max_pending_bytes = 16 * 1024 * 1024;      // above this (disk stalled), writers flush themselves
};

// Writes formatted records to stdout or a file (opened for append). Thread-safe: any I/O thread may call
// write(), which only formats and appends to a shared buffer; a background thread writes the buffer out.
// If the disk cannot keep up, writers block on flushing (like nginx) rather than lose lines.
class AccessLogWriter {
public:
  // DESTINATION is "stdout" or a file path. Throws std::system_error at start-up when the file cannot be
  // opened. A W3C header precedes the first line written to a new or empty file (and to stdout); a writer
  // that never gets a record writes nothing (`--check-config` builds one).
  AccessLogWriter(std::string destination, config::AccessLogFormat format, AccessLogOptions options = {});
  ~AccessLogWriter();  // writes out everything pending

  AccessLogWriter(const AccessLogWriter&) = delete;
  AccessLogWriter& operator=(const AccessLogWriter&) = delete;

  void write(const AccessLogRecord& record);

  // Writes out everything pending now (the flush thread does this on its own).
  void flush();

  // For SIGHUP after log rotation: writes out what is pending to the old file, then opens DESTINATION
  // anew. On failure the old file stays in use and the error is returned. No-op for stdout. Not
  // async-signal-safe: call it from the signal_set handler, not from a raw signal handler.
  std::error_code reopen();

  // Writes that failed (disk full, EIO); the lines of a failed write are lost. For metrics.
  std::uint64_t write_errors() const;

private:
  void flush_loop(std::stop_token stop);
  void flush_locked();                     // requires io_mutex_
  void write_out(std::string_view data);  // requires io_mutex_
  int open_destination(std::error_code& error);
  bool needs_header(int fd) const;         // W3C, and stdout or an empty file

  const std::string destination_;
  const config::AccessLogFormat format_;
  const AccessLogOptions options_;
  const bool to_stdout_;

  // Lock order: io_mutex_ before buffer_mutex_. Writers only take buffer_mutex_.
  std::mutex io_mutex_;
  int fd_ = -1;             // guarded by io_mutex_
  std::string writing_;     // guarded by io_mutex_: the batch being written, swapped with buffer_
  // Guarded by io_mutex_: fd_ still needs the W3C header. Written before the first batch that has lines, so a
  // writer that never logs writes nothing, and only the thread holding io_mutex_ ever emits a header.
  bool header_due_ = false;
  std::atomic<std::uint64_t> write_errors_{0};

  std::mutex buffer_mutex_;
  std::string buffer_;      // guarded by buffer_mutex_
  std::condition_variable_any wake_;

  std::jthread flusher_;    // last member: starts after everything above is ready, stops first
};

}  // namespace easedge::proxy
