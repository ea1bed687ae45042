// The ActiveSync requests easbench sends, rendered as HTTP/1.1 bytes the way an iPhone's mail app sends them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace easedge::bench {

enum class Command { sync, ping, folder_sync, send_mail };

const char* command_name(Command c);

// A WBXML-sized Sync body (opaque bytes, WBXML header first), ~1 KB.
inline constexpr std::size_t sync_body_bytes = 1024;
std::string sync_body();
// A FolderSync body with SyncKey 0 (a device's first FolderSync).
std::string folder_sync_body();
// A real WBXML Ping body: <Ping><HeartbeatInterval>seconds</HeartbeatInterval></Ping> (code page 13).
std::string ping_body(std::uint32_t heartbeat_seconds);

struct RequestTarget {
  std::string_view path;       // /Microsoft-Server-ActiveSync
  std::string_view host;       // Host header value
  std::string_view user;
  std::string_view device_id;
};

// Request line + headers (with Content-Length) for a POST of `body_bytes`; the body follows separately.
// `close` asks the server to close after the answer (the handshake scenario).
std::string request_head(Command c, const RequestTarget& t, std::uint64_t body_bytes, bool close);

}  // namespace easedge::bench
