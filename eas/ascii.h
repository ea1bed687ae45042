// ascii.h: ASCII case-insensitive equality of two views that reads no byte outside either.
#pragma once

#include <cstddef>
#include <string_view>

namespace easedge::eas {

// For ActiveSync names (Cmd, DeviceId, ...), the /Microsoft-Server-ActiveSync path and User= against the
// account's names, which Windows matches without regard to case. Not Boost.URL 1.81's ci_is_equal or
// beast::iequals: both read one byte past both ends once two letters differ in case only, and a view may end
// where a request target's exactly-sized buffer ends. Not ci_compare either: it orders, a character at a time
// through a table, and costs several times this.
constexpr bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i]) continue;
    // Different bytes match only as the two cases of one letter: they differ in the 0x20 bit alone.
    char lower = static_cast<char>(a[i] | 0x20);
    if (lower != static_cast<char>(b[i] | 0x20) || lower < 'a' || lower > 'z') return false;
  }
  return true;
}

}  // namespace easedge::eas
