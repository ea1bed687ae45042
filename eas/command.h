// ActiveSync commands: names, MS-ASHTTP base64 command codes, and which ones Exchange may hold open.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "config/config.h"

namespace easedge::eas {

// Values are the command codes of the base64 query form (MS-ASHTTP 2.2.1.1.1.1.2). Codes 5..8 belonged to
// protocol 2.5 commands that no supported version uses, so they are unknown here.
enum class Command : std::uint8_t {
  sync = 0,
  send_mail = 1,
  smart_forward = 2,
  smart_reply = 3,
  get_attachment = 4,
  folder_sync = 9,
  folder_create = 10,
  folder_delete = 11,
  folder_update = 12,
  move_items = 13,
  get_item_estimate = 14,
  meeting_response = 15,
  search = 16,
  settings = 17,
  ping = 18,
  item_operations = 19,
  provision = 20,
  resolve_recipients = 21,
  validate_cert = 22,
  find = 23,
};

// The protocol name as it appears in `Cmd=` and in Exchange's logs, e.g. "FolderSync".
std::string_view command_name(Command command);

// `Cmd=` value to command, compared case-insensitively like Exchange does; nullopt when unknown.
std::optional<Command> command_from_name(std::string_view name);

// Base64 command code to command; nullopt for codes no supported protocol version defines.
std::optional<Command> command_from_code(std::uint8_t code);

// Ping and Sync (with Wait/HeartbeatInterval) are held by Exchange for up to 3540 s when nothing changes;
// every other command answers promptly.
enum class TimeoutClass { long_held, normal };

TimeoutClass timeout_class(Command command);

// How long the proxy waits for Exchange's answer to COMMAND. Without a command (OPTIONS, GET) the request
// is a prompt one.
std::chrono::seconds request_timeout(const config::EasConfig& config, std::optional<Command> command);

}  // namespace easedge::eas
