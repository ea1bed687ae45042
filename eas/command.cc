// ActiveSync command table.
#include "eas/command.h"

#include "eas/ascii.h"

#include <array>

namespace easedge::eas {
namespace {

struct CommandEntry {
  Command command;
  std::string_view name;
};

constexpr std::array command_table{
    CommandEntry{Command::sync, "Sync"},
    CommandEntry{Command::send_mail, "SendMail"},
    CommandEntry{Command::smart_forward, "SmartForward"},
    CommandEntry{Command::smart_reply, "SmartReply"},
    CommandEntry{Command::get_attachment, "GetAttachment"},
    CommandEntry{Command::folder_sync, "FolderSync"},
    CommandEntry{Command::folder_create, "FolderCreate"},
    CommandEntry{Command::folder_delete, "FolderDelete"},
    CommandEntry{Command::folder_update, "FolderUpdate"},
    CommandEntry{Command::move_items, "MoveItems"},
    CommandEntry{Command::get_item_estimate, "GetItemEstimate"},
    CommandEntry{Command::meeting_response, "MeetingResponse"},
    CommandEntry{Command::search, "Search"},
    CommandEntry{Command::settings, "Settings"},
    CommandEntry{Command::ping, "Ping"},
    CommandEntry{Command::item_operations, "ItemOperations"},
    CommandEntry{Command::provision, "Provision"},
    CommandEntry{Command::resolve_recipients, "ResolveRecipients"},
    CommandEntry{Command::validate_cert, "ValidateCert"},
    CommandEntry{Command::find, "Find"},
};

}  // namespace

std::string_view command_name(Command command) {
  for (const auto& entry : command_table)
    if (entry.command == command) return entry.name;
  return {};  // unreachable for values produced by this file's lookups
}

// `name` may be a view that ends where the request target's buffer ends (see ascii_iequals).
std::optional<Command> command_from_name(std::string_view name) {
  for (const auto& entry : command_table)
    if (ascii_iequals(name, entry.name)) return entry.command;
  return std::nullopt;
}

std::optional<Command> command_from_code(std::uint8_t code) {
  for (const auto& entry : command_table)
    if (static_cast<std::uint8_t>(entry.command) == code) return entry.command;
  return std::nullopt;
}

TimeoutClass timeout_class(Command command) {
  return command == Command::ping || command == Command::sync ? TimeoutClass::long_held : TimeoutClass::normal;
}

std::chrono::seconds request_timeout(const config::EasConfig& config, std::optional<Command> command) {
  if (command && timeout_class(*command) == TimeoutClass::long_held) return config.ping_timeout;
  return config.command_timeout;
}

}  // namespace easedge::eas
