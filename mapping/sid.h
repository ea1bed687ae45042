// Windows security identifiers: the binary objectSid layout and its "S-1-5-21-..." text form.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace easedge::mapping {

// Binary layout ([MS-DTYP] 2.4.2.2): revision(1), sub-authority count(1), identifier authority
// (6, big-endian), sub-authorities (4 each, little-endian). Returns nullopt unless the length matches
// the count exactly, the revision is 1 and there are at most 15 sub-authorities.
std::optional<std::string> sid_to_string(std::span<const unsigned char> binary);

// Parses "S-1-<authority>-<sub>..." (authority decimal, or 0x + 12 hex digits as Windows prints large
// ones), at most 15 sub-authorities, each below 2^32. Returns the binary form, or nullopt.
std::optional<std::vector<unsigned char>> sid_from_string(std::string_view text);

// The canonical text of a SID given as text ("s-1-5-021" -> "S-1-5-21"), or nullopt when malformed.
std::optional<std::string> canonical_sid(std::string_view text);

}  // namespace easedge::mapping
