#include "mapping/sid.h"

#include <charconv>
#include <cstdio>

namespace easedge::mapping {
namespace {

constexpr std::size_t max_sub_authorities = 15;  // SID_MAX_SUB_AUTHORITIES
constexpr std::size_t header_bytes = 8;
constexpr std::uint64_t max_authority = 0xFFFFFFFFFFFFull;  // 48 bits

// Splits on '-' without allocating; an empty field makes the SID malformed.
std::vector<std::string_view> fields_of(std::string_view text) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  while (true) {
    auto dash = text.find('-', start);
    fields.push_back(text.substr(start, dash == std::string_view::npos ? dash : dash - start));
    if (dash == std::string_view::npos) break;
    start = dash + 1;
  }
  return fields;
}

template <typename Number>
std::optional<Number> number_of(std::string_view field, int base) {
  Number value{};
  if (field.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value, base);
  if (ec != std::errc{} || end != field.data() + field.size()) return std::nullopt;
  return value;
}

}  // namespace

std::optional<std::string> sid_to_string(std::span<const unsigned char> binary) {
  if (binary.size() < header_bytes || binary[0] != 1) return std::nullopt;
  std::size_t count = binary[1];
  if (count > max_sub_authorities || binary.size() != header_bytes + 4 * count) return std::nullopt;
  std::uint64_t authority = 0;
  for (std::size_t i = 2; i < header_bytes; ++i) authority = (authority << 8) | binary[i];
  std::string text = "S-1-";
  if (authority >> 32) {
    char hex[20];
    std::snprintf(hex, sizeof hex, "0x%012llX", static_cast<unsigned long long>(authority));
    text += hex;
  } else {
    text += std::to_string(authority);
  }
  for (std::size_t i = 0; i < count; ++i) {
    const unsigned char* p = binary.data() + header_bytes + 4 * i;
    std::uint32_t sub = std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
                        std::uint32_t(p[3]) << 24;
    text += '-';
    text += std::to_string(sub);
  }
  return text;
}

std::optional<std::vector<unsigned char>> sid_from_string(std::string_view text) {
  auto fields = fields_of(text);
  if (fields.size() < 3 || fields.size() - 3 > max_sub_authorities) return std::nullopt;
  if (fields[0] != "S" && fields[0] != "s") return std::nullopt;
  if (fields[1] != "1") return std::nullopt;
  std::optional<std::uint64_t> authority;
  if (fields[2].size() > 2 && fields[2][0] == '0' && (fields[2][1] == 'x' || fields[2][1] == 'X'))
    authority = number_of<std::uint64_t>(fields[2].substr(2), 16);
  else
    authority = number_of<std::uint64_t>(fields[2], 10);
  if (!authority || *authority > max_authority) return std::nullopt;

  std::vector<unsigned char> binary{1, static_cast<unsigned char>(fields.size() - 3)};
  for (int shift = 40; shift >= 0; shift -= 8) binary.push_back(static_cast<unsigned char>(*authority >> shift));
  for (std::size_t i = 3; i < fields.size(); ++i) {
    auto sub = number_of<std::uint32_t>(fields[i], 10);
    if (!sub) return std::nullopt;
    for (int shift = 0; shift < 32; shift += 8) binary.push_back(static_cast<unsigned char>(*sub >> shift));
  }
  return binary;
}

std::optional<std::string> canonical_sid(std::string_view text) {
  auto binary = sid_from_string(text);
  if (!binary) return std::nullopt;
  return sid_to_string(*binary);
}

}  // namespace easedge::mapping
