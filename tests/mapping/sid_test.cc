// SID text <-> binary: the objectSid layout, canonical text, and malformed input.
#include "mapping/sid.h"

#include <gtest/gtest.h>

namespace easedge::mapping {
namespace {

// alice from the lab directory: S-1-5-21-1004336348-1177238915-682003330-1104.
const std::vector<unsigned char> alice_binary{
    0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x15, 0x00, 0x00, 0x00, 0xdc, 0xf4, 0xdc, 0x3b,
    0x83, 0x3d, 0x2b, 0x46, 0x82, 0x8b, 0xa6, 0x28, 0x50, 0x04, 0x00, 0x00};
const std::string alice_text = "S-1-5-21-1004336348-1177238915-682003330-1104";

TEST(Sid, BinaryToTextFollowsObjectSidLayout) {
  EXPECT_EQ(sid_to_string(alice_binary), alice_text);
}

TEST(Sid, TextToBinaryRoundTrips) {
  auto binary = sid_from_string(alice_text);
  ASSERT_TRUE(binary);
  EXPECT_EQ(*binary, alice_binary);
  for (const char* text : {"S-1-0-0", "S-1-5-18", "S-1-5-32-544", "S-1-0x123456789ABC-1",
                           "S-1-5-21-4294967295-0-1-2-3-4-5-6-7-8-9-10-11-12"}) {
    auto round = sid_from_string(text);
    ASSERT_TRUE(round) << text;
    EXPECT_EQ(sid_to_string(*round), text);
  }
}

TEST(Sid, CanonicalFormUpperCasesAndDropsLeadingZeros) {
  EXPECT_EQ(canonical_sid("s-1-5-021-0001"), "S-1-5-21-1");
  EXPECT_EQ(canonical_sid("S-1-0x000000000005-18"), "S-1-5-18");
}

TEST(Sid, RejectsMalformedText) {
  using namespace std::literals;
  for (std::string_view text : {""sv, "S"sv, "S-1"sv, "S-2-5-21"sv, "X-1-5-21"sv, "S-1-5-21-"sv, "S-1--5"sv, "S-1-5-21-4294967296"sv,
                                "S-1-5- 21"sv, "S-1-5-+21"sv, "S-1-5--21"sv, "S-1-281474976710656-1"sv,
                                "S-1-5-21-1\0-2"sv, "S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16"sv}) {
    EXPECT_FALSE(sid_from_string(text)) << text;
  }
}

TEST(Sid, RejectsMalformedBinary) {
  auto wrong_length = alice_binary;
  wrong_length.pop_back();
  EXPECT_FALSE(sid_to_string(wrong_length));
  auto wrong_revision = alice_binary;
  wrong_revision[0] = 2;
  EXPECT_FALSE(sid_to_string(wrong_revision));
  auto too_many = alice_binary;
  too_many[1] = 16;
  EXPECT_FALSE(sid_to_string(too_many));
  EXPECT_FALSE(sid_to_string(std::vector<unsigned char>{}));
  EXPECT_FALSE(sid_to_string(std::vector<unsigned char>{1, 0, 0}));
  EXPECT_EQ(sid_to_string(std::vector<unsigned char>{1, 0, 0, 0, 0, 0, 0, 5}), "S-1-5");
}

}  // namespace
}  // namespace easedge::mapping
