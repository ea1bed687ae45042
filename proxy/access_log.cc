// Access log formatting (W3C, JSON) and the batching writer.
#include "proxy/access_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <ctime>

namespace easedge::proxy {
namespace {

constexpr char hex_digits[] = "0123456789ABCDEF";

// Length of the well-formed UTF-8 sequence starting at TEXT[I] (2..4 bytes, per RFC 3629: no overlongs,
// no surrogates, nothing above U+10FFFF), or 0 when the bytes there are not one.
std::size_t utf8_sequence_length(std::string_view text, std::size_t i) {
  auto byte = [&](std::size_t k) { return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0u; };
  auto continuation = [&](std::size_t k, unsigned low = 0x80, unsigned high = 0xbf) {
    unsigned b = byte(k);
    return i + k < text.size() && b >= low && b <= high;
  };
  unsigned lead = byte(0);
  if (lead >= 0xc2 && lead <= 0xdf) return continuation(1) ? 2 : 0;
  if (lead == 0xe0) return continuation(1, 0xa0) && continuation(2) ? 3 : 0;
  if (lead == 0xed) return continuation(1, 0x80, 0x9f) && continuation(2) ? 3 : 0;
  if (lead >= 0xe1 && lead <= 0xef) return continuation(1) && continuation(2) ? 3 : 0;
  if (lead == 0xf0) return continuation(1, 0x90) && continuation(2) && continuation(3) ? 4 : 0;
  if (lead >= 0xf1 && lead <= 0xf3) return continuation(1) && continuation(2) && continuation(3) ? 4 : 0;
  if (lead == 0xf4) return continuation(1, 0x80, 0x8f) && continuation(2) && continuation(3) ? 4 : 0;
  return 0;
}

bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

template <typename Number>
void append_number(std::string& out, Number value) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  out.append(digits, end);
}

void append_padded(std::string& out, int value, int width) {
  char digits[8];
  auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  out.append(static_cast<std::size_t>(width - (end - digits)), '0');
  out.append(digits, end);
}

struct UtcTime {
  std::tm tm{};
  int millisecond = 0;
};

UtcTime utc(std::chrono::system_clock::time_point time) {
  UtcTime result;
  auto since_epoch = time.time_since_epoch();
  auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
  std::time_t t = static_cast<std::time_t>(seconds.count());
  gmtime_r(&t, &result.tm);
  result.millisecond = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds).count());
  return result;
}

// "2024-01-15" + SEPARATOR + "10:23:45", as IIS writes date and time.
void append_date_time(std::string& out, const UtcTime& t, char separator) {
  append_padded(out, t.tm.tm_year + 1900, 4);
  out += '-';
  append_padded(out, t.tm.tm_mon + 1, 2);
  out += '-';
  append_padded(out, t.tm.tm_mday, 2);
  out += separator;
  append_padded(out, t.tm.tm_hour, 2);
  out += ':';
  append_padded(out, t.tm.tm_min, 2);
  out += ':';
  append_padded(out, t.tm.tm_sec, 2);
}

void append_percent(std::string& out, unsigned char c) {
  out += '%';
  out += hex_digits[c >> 4];
  out += hex_digits[c & 0x0f];
}

// Walks VALUE: copies each well-formed multi-byte UTF-8 sequence to OUT unchanged, hands each ASCII byte to
// ASCII, and each byte that starts no well-formed sequence to INVALID.
template <typename Ascii, typename Invalid>
void escape_utf8(std::string& out, std::string_view value, Ascii ascii, Invalid invalid) {
  for (std::size_t i = 0; i < value.size();) {
    auto c = static_cast<unsigned char>(value[i]);
    if (c < 0x80) {
      ascii(c);
    } else if (std::size_t n = utf8_sequence_length(value, i)) {
      out.append(value.substr(i, n));
      i += n;
      continue;
    } else {
      invalid(c);
    }
    ++i;
  }
}

void append_w3c_field(std::string& out, std::string_view value) {
  if (value.empty()) {
    out += '-';
    return;
  }
  auto percent = [&out](unsigned char c) { append_percent(out, c); };
  escape_utf8(
      out, value,
      [&](unsigned char c) {
        if (c == ' ')
          out += '+';
        else if (is_control(c))
          percent(c);
        else
          out += static_cast<char>(c);
      },
      percent);
}

void append_json_string(std::string& out, std::string_view value) {
  out += '"';
  escape_utf8(
      out, value,
      [&out](unsigned char c) {
        if (c == '"' || c == '\\') {
          out += '\\';
          out += static_cast<char>(c);
        } else if (c == '\n') {
          out += "\\n";
        } else if (c == '\r') {
          out += "\\r";
        } else if (c == '\t') {
          out += "\\t";
        } else if (is_control(c)) {
          out += "\\u00";
          out += hex_digits[c >> 4];
          out += hex_digits[c & 0x0f];
        } else {
          out += static_cast<char>(c);
        }
      },
      [&out](unsigned char) { out += "\\ufffd"; });
  out += '"';
}

// Appends `,"KEY":` (without the comma for the first member).
void append_key(std::string& out, std::string_view key) {
  if (out.back() != '{') out += ',';
  out += '"';
  out += key;
  out += "\":";
}

void json_string(std::string& out, std::string_view key, std::string_view value) {
  append_key(out, key);
  append_json_string(out, value);
}

template <typename Number>
void json_number(std::string& out, std::string_view key, Number value) {
  append_key(out, key);
  append_number(out, value);
}

}  // namespace

void format_w3c_header(std::chrono::system_clock::time_point now, std::string& out) {
  out += "#Software: easedge\n#Version: 1.0\n#Date: ";
  append_date_time(out, utc(now), ' ');
  out += "\n#Fields: ";
  out += w3c_fields;
  out += '\n';
}

void format_w3c(const AccessLogRecord& r, std::string& out) {
  append_date_time(out, utc(r.time), ' ');
  out += ' ';
  append_w3c_field(out, r.server_ip);
  out += ' ';
  append_w3c_field(out, r.method);
  out += ' ';
  append_w3c_field(out, r.uri_stem);
  out += ' ';
  append_w3c_field(out, r.uri_query);
  out += ' ';
  append_number(out, r.server_port);
  out += ' ';
  append_w3c_field(out, r.user);
  out += ' ';
  append_w3c_field(out, r.client_ip);
  out += ' ';
  append_w3c_field(out, r.user_agent);
  out += ' ';
  append_number(out, r.status);
  out += ' ';
  append_number(out, r.substatus);
  out += ' ';
  append_number(out, r.win32_status);
  out += ' ';
  append_number(out, std::chrono::duration_cast<std::chrono::milliseconds>(r.duration).count());
  out += ' ';
  append_w3c_field(out, r.request_id);
  out += '\n';
}

void format_json(const AccessLogRecord& r, std::string& out) {
  // The first member is written by hand so append_key can tell "first" from the '{' before it.
  out += "{\"ts\":\"";
  UtcTime t = utc(r.time);
  append_date_time(out, t, 'T');
  out += '.';
  append_padded(out, t.millisecond, 3);
  out += "Z\"";
  json_string(out, "client", r.client_ip);
  json_number(out, "client_port", r.client_port);
  json_string(out, "server", r.server_ip);
  json_number(out, "server_port", r.server_port);
  json_string(out, "user", r.user);
  json_string(out, "cert_sha256", r.cert_sha256);
  json_string(out, "method", r.method);
  json_string(out, "uri", r.uri_stem);
  json_string(out, "query", r.uri_query);
  json_string(out, "cmd", r.eas_command);
  json_string(out, "device_id", r.device_id);
  json_string(out, "device_type", r.device_type);
  json_string(out, "user_agent", r.user_agent);
  json_number(out, "status", r.status);
  json_number(out, "substatus", r.substatus);
  json_number(out, "win32_status", r.win32_status);
  json_number(out, "bytes_in", r.bytes_in);
  json_number(out, "bytes_out", r.bytes_out);
  // Milliseconds with microsecond precision: sub-millisecond refusals stay distinguishable from zero.
  auto micros = r.duration.count() < 0 ? 0 : r.duration.count();
  append_key(out, "duration_ms");
  append_number(out, micros / 1000);
  out += '.';
  append_padded(out, static_cast<int>(micros % 1000), 3);
  json_number(out, "upstream_status", r.upstream_status);
  json_string(out, "request_id", r.request_id);
  out += "}\n";
}

AccessLogWriter::AccessLogWriter(std::string destination, config::AccessLogFormat format, AccessLogOptions options)
    : destination_(std::move(destination)), format_(format), options_(options), to_stdout_(destination_ == "stdout") {
  std::error_code error;
  fd_ = open_destination(error);
  if (fd_ < 0) throw std::system_error(error, "cannot open access log " + destination_);
  header_due_ = needs_header(fd_);
  flusher_ = std::jthread([this](std::stop_token stop) { flush_loop(stop); });
}

AccessLogWriter::~AccessLogWriter() {
  flusher_.request_stop();
  flusher_.join();
  flush();
  if (!to_stdout_) ::close(fd_);
}

int AccessLogWriter::open_destination(std::error_code& error) {
  if (to_stdout_) return STDOUT_FILENO;
  int fd = ::open(destination_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) error = std::error_code(errno, std::system_category());
  return fd;
}

bool AccessLogWriter::needs_header(int fd) const {
  if (format_ != config::AccessLogFormat::w3c) return false;
  if (to_stdout_) return true;
  struct stat st {};
  return ::fstat(fd, &st) == 0 && st.st_size == 0;
}

void AccessLogWriter::write(const AccessLogRecord& record) {
  // Format outside the lock into a per-thread scratch string that keeps its capacity between calls.
  thread_local std::string line;
  line.clear();
  if (format_ == config::AccessLogFormat::w3c)
    format_w3c(record, line);
  else
    format_json(record, line);

  bool over_limit = false;
  {
    std::lock_guard lock(buffer_mutex_);
    bool was_below = buffer_.size() < options_.flush_bytes;
    buffer_ += line;
    if (was_below && buffer_.size() >= options_.flush_bytes) wake_.notify_one();
    over_limit = buffer_.size() >= options_.max_pending_bytes;
  }
  if (over_limit) flush();
}

void AccessLogWriter::flush() {
  std::lock_guard io_lock(io_mutex_);
  flush_locked();
}

void AccessLogWriter::flush_locked() {
  {
    std::lock_guard lock(buffer_mutex_);
    writing_.swap(buffer_);
  }
  if (writing_.empty()) return;
  if (header_due_) {
    // Lines queued before a reopen but written after it go to the new file: the header still precedes them.
    std::string header;
    format_w3c_header(std::chrono::system_clock::now(), header);
    write_out(header);
    header_due_ = false;
  }
  write_out(writing_);
  writing_.clear();  // keeps the capacity: the next batch reuses it
}

void AccessLogWriter::flush_loop(std::stop_token stop) {
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(buffer_mutex_);
      wake_.wait_for(lock, stop, options_.flush_interval, [this] { return buffer_.size() >= options_.flush_bytes; });
    }
    flush();
  }
}

void AccessLogWriter::write_out(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      write_errors_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::error_code AccessLogWriter::reopen() {
  if (to_stdout_) return {};
  std::lock_guard io_lock(io_mutex_);
  flush_locked();  // lines logged before the signal belong to the rotated file
  std::error_code error;
  int fd = open_destination(error);
  if (fd < 0) return error;
  ::close(fd_);
  fd_ = fd;
  header_due_ = needs_header(fd_);  // nothing reaches the new file before this: io_mutex_ is held
  return {};
}

std::uint64_t AccessLogWriter::write_errors() const { return write_errors_.load(std::memory_order_relaxed); }

}  // namespace easedge::proxy
