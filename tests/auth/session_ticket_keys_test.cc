// Ticket key files: the keys a good file holds, and the line a bad one is refused at.
#include "auth/session_ticket_keys.h"

#include <gtest/gtest.h>

#include <string>

namespace easedge::auth {
namespace {

// base64 of 80 bytes whose name starts with `first`, then 0x01..: 108 characters with one '=' of padding.
std::string key_line(unsigned char first) {
  std::string raw(SessionTicketKey::total_bytes, '\0');
  for (std::size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<char>(i == 0 ? first : i);
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < raw.size(); i += 3) {
    std::uint32_t group = 0;
    std::size_t n = std::min<std::size_t>(3, raw.size() - i);
    for (std::size_t j = 0; j < 3; ++j)
      group = group << 8 | (j < n ? static_cast<unsigned char>(raw[i + j]) : 0u);
    for (std::size_t j = 0; j < 4; ++j) out += j <= n ? alphabet[group >> (18 - 6 * j) & 63] : '=';
  }
  return out;
}

std::optional<SessionTicketKeys> parse(const std::string& text, SessionTicketKeyProblem& problem) {
  return parse_session_ticket_keys(text, problem);
}

TEST(SessionTicketKeys, OneKeySplitsIntoNameHmacAndAes) {
  SessionTicketKeyProblem problem;
  auto keys = parse(key_line(0xAA) + "\n", problem);
  ASSERT_TRUE(keys) << problem.problem;
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].name[0], 0xAA);
  EXPECT_EQ((*keys)[0].name[15], 15);
  EXPECT_EQ((*keys)[0].hmac[0], 16);
  EXPECT_EQ((*keys)[0].aes[0], 48);
  EXPECT_EQ((*keys)[0].aes[31], 79);
}

TEST(SessionTicketKeys, KeepsTheFileOrderSkipsCommentsBlankLinesAndCarriageReturns) {
  SessionTicketKeyProblem problem;
  auto keys = parse("# rotated 2026-12-04\r\n" + key_line(1) + "\r\n\r\n" + key_line(2) + "\n\n" + key_line(3), problem);
  ASSERT_TRUE(keys) << problem.problem;
  ASSERT_EQ(keys->size(), 3u);
  EXPECT_EQ((*keys)[0].name[0], 1);  // the first line encrypts
  EXPECT_EQ((*keys)[2].name[0], 3);
}

struct Hostile {
  const char* what;
  std::string text;
  std::size_t line;
};

class HostileFile : public ::testing::TestWithParam<Hostile> {};

TEST_P(HostileFile, IsRefusedAtItsLine) {
  SessionTicketKeyProblem problem;
  EXPECT_FALSE(parse(GetParam().text, problem)) << GetParam().what;
  EXPECT_EQ(problem.line, GetParam().line) << GetParam().what << ": " << problem.problem;
  EXPECT_FALSE(problem.problem.empty());
}

INSTANTIATE_TEST_SUITE_P(
    SessionTicketKeys, HostileFile,
    ::testing::Values(
        Hostile{"empty", "", 0}, Hostile{"only comments and blank lines", "# none yet\n\n\r\n", 0},
        Hostile{"a 48-byte nginx key", std::string(64, 'A') + "\n", 1},
        Hostile{"one byte short", key_line(1).substr(0, 104) + "AA==", 1},
        Hostile{"one byte long", key_line(1).substr(0, 104) + "AAAA", 1},
        Hostile{"padding dropped", key_line(1).substr(0, 107), 1},
        Hostile{"a space inside", key_line(1).substr(0, 50) + " " + key_line(1).substr(51), 1},
        Hostile{"leading space", " " + key_line(1).substr(1), 1},
        Hostile{"trailing tab", key_line(1) + "\t", 1},
        Hostile{"url-safe alphabet", std::string(107, '-') + "=", 1},
        Hostile{"padding in the middle", key_line(1).substr(0, 20) + "=" + key_line(1).substr(21), 1},
        Hostile{"a NUL byte", key_line(1).substr(0, 10) + std::string(1, '\0') + key_line(1).substr(11), 1},
        Hostile{"binary garbage", std::string("\xff\xfe\x00\x01garbage", 11), 1},
        Hostile{"a good line then a bad one", key_line(1) + "\n" + key_line(2) + "\nnot-base64\n", 3},
        Hostile{"the same key name twice", key_line(7) + "\n" + key_line(7) + "\n", 2},
        Hostile{"a PEM key by mistake", "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n", 1},
        Hostile{"one very long line", std::string(1 << 20, 'A'), 1}));

}  // namespace
}  // namespace easedge::auth
