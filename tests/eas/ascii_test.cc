// eas/ascii.h: case-insensitive equality that is exact about what counts as a letter and never reads past a view.
#include "eas/ascii.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string_view>

namespace easedge::eas {
namespace {

TEST(AsciiIequalsTest, LettersMatchInEitherCase) {
  EXPECT_TRUE(ascii_iequals("/microsoft-server-ACTIVESYNC", "/Microsoft-Server-ActiveSync"));
  EXPECT_TRUE(ascii_iequals("deviceid", "DeviceId"));
  EXPECT_TRUE(ascii_iequals("", ""));
}

TEST(AsciiIequalsTest, DifferentLengthsOrLettersDoNotMatch) {
  EXPECT_FALSE(ascii_iequals("Cmd", "Cmd "));
  EXPECT_FALSE(ascii_iequals("User", "Used"));
}

// Pairs that differ only in the 0x20 bit but are not two cases of one letter: '@'/'`', '['/'{', '-'/'\r',
// '^'/'~', '_'/DEL, and bytes above 0x7f.
TEST(AsciiIequalsTest, OnlyLettersFoldCase) {
  EXPECT_FALSE(ascii_iequals("@", "`"));
  EXPECT_FALSE(ascii_iequals("[", "{"));
  EXPECT_FALSE(ascii_iequals("-", "\r"));
  EXPECT_FALSE(ascii_iequals("^", "~"));
  EXPECT_FALSE(ascii_iequals("_", "\x7f"));
  EXPECT_FALSE(ascii_iequals("\xc1", "\xe1"));
  EXPECT_FALSE(ascii_iequals(std::string_view("\0", 1), " "));
}

// Views that end where their heap blocks end: under ASan a read past either end fails the test.
TEST(AsciiIequalsTest, ReadsNothingPastEitherView) {
  auto a = std::make_unique<char[]>(3);
  auto b = std::make_unique<char[]>(3);
  std::copy_n("cMD", 3, a.get());
  std::copy_n("CmD", 3, b.get());
  EXPECT_TRUE(ascii_iequals({a.get(), 3}, {b.get(), 3}));
  b[2] = 'x';
  EXPECT_FALSE(ascii_iequals({a.get(), 3}, {b.get(), 3}));
}

}  // namespace
}  // namespace easedge::eas
