#include "bench/easbench/requests.h"

namespace easedge::bench {

namespace {
// WBXML 1.3, public id unknown (1), UTF-8 (106), empty string table.
constexpr std::string_view wbxml_header{"\x03\x01\x6a\x00", 4};
}  // namespace

const char* command_name(Command c) {
  switch (c) {
    case Command::sync: return "Sync";
    case Command::ping: return "Ping";
    case Command::folder_sync: return "FolderSync";
    case Command::send_mail: return "SendMail";
  }
  return "?";
}

std::string sync_body() {
  std::string body(wbxml_header);
  // Opaque filler standing in for collections and ApplicationData; deterministic so runs are comparable.
  for (std::size_t i = body.size(); i < sync_body_bytes; ++i) body.push_back(static_cast<char>('A' + i % 26));
  return body;
}

std::string folder_sync_body() {
  // SWITCH_PAGE 7 (FolderHierarchy), FolderSync, SyncKey "0".
  std::string body(wbxml_header);
  body += std::string_view("\x00\x07\x56\x52\x03" "0\x00\x01\x01", 9);
  return body;
}

std::string ping_body(std::uint32_t heartbeat_seconds) {
  // SWITCH_PAGE 13 (Ping), Ping (0x05|content), HeartbeatInterval (0x08|content), STR_I, END, END.
  std::string body(wbxml_header);
  body += std::string_view("\x00\x0d\x45\x48\x03", 5);
  body += std::to_string(heartbeat_seconds);
  body += std::string_view("\x00\x01\x01", 3);
  return body;
}

std::string request_head(Command c, const RequestTarget& t, std::uint64_t body_bytes, bool close) {
  std::string head;
  head.reserve(320);
  head += "POST ";
  head += t.path;
  head += "?Cmd=";
  head += command_name(c);
  head += "&User=";
  head += t.user;
  head += "&DeviceId=";
  head += t.device_id;
  head += "&DeviceType=iPhone";
  if (c == Command::send_mail) head += "&SaveInSent=T";
  head += " HTTP/1.1\r\nHost: ";
  head += t.host;
  head +=
      "\r\nUser-Agent: Apple-iPhone14C2/2103.220\r\nContent-Type: application/vnd.ms-sync.wbxml\r\n"
      "MS-ASProtocolVersion: 16.1\r\nX-MS-PolicyKey: 1\r\nContent-Length: ";
  head += std::to_string(body_bytes);
  head += close ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n";
  return head;
}

}  // namespace easedge::bench
