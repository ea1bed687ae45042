// ActiveSync policy: wildcard matching, User= forms against the mapped account, device rule precedence.
#include "eas/policy.h"

#include <gtest/gtest.h>

#include <string>

namespace easedge::eas {
namespace {

const AccountNames alice_account{"alice@corp.example.test", "alice"};

EasRequest request(std::string user, std::string device_id = "ABC123", std::string device_type = "iPhone") {
  EasRequest r;
  r.form = QueryForm::plain;
  r.command = Command::sync;
  r.user = std::move(user);
  r.device_id = std::move(device_id);
  r.device_type = std::move(device_type);
  return r;
}

TEST(Wildcard, Literals) {
  WildcardPattern p("ABC123");
  EXPECT_TRUE(p.matches("ABC123"));
  EXPECT_TRUE(p.matches("abc123"));
  EXPECT_FALSE(p.matches("ABC1234"));
  EXPECT_FALSE(p.matches("ABC12"));
  EXPECT_FALSE(p.matches(""));
  EXPECT_TRUE(WildcardPattern("").matches(""));
}

struct WildcardCase {
  const char* pattern;
  const char* text;
  bool matches;
};

class WildcardTable : public ::testing::TestWithParam<WildcardCase> {};

TEST_P(WildcardTable, Matches) {
  const auto& c = GetParam();
  EXPECT_EQ(WildcardPattern(c.pattern).matches(c.text), c.matches) << c.pattern << " ~ " << c.text;
}

INSTANTIATE_TEST_SUITE_P(
    Stars, WildcardTable,
    ::testing::Values(WildcardCase{"*", "", true}, WildcardCase{"*", "anything", true}, WildcardCase{"**", "x", true},
                      WildcardCase{"BLOCKED*", "BLOCKED", true}, WildcardCase{"BLOCKED*", "blocked42", true},
                      WildcardCase{"BLOCKED*", "XBLOCKED", false}, WildcardCase{"*Device", "TestDEVICE", true},
                      WildcardCase{"*Device", "DeviceX", false}, WildcardCase{"a*b*c", "abc", true},
                      WildcardCase{"a*b*c", "aXXbYYc", true}, WildcardCase{"a*b*c", "abbbc", true},
                      WildcardCase{"a*b*c", "acb", false}, WildcardCase{"a*b*c", "ab", false},
                      WildcardCase{"ab*ba", "aba", false}, WildcardCase{"ab*ba", "abba", true},
                      WildcardCase{"*Test*", "MyTESTDevice", true}, WildcardCase{"*Test*", "Tes", false},
                      // '?' and other glob syntax are literal: Exchange's lists only know '*'.
                      WildcardCase{"A?C", "ABC", false}, WildcardCase{"A?C", "a?c", true}));

TEST(Wildcard, HostileInputIsLinear) {
  // A pattern that makes a backtracking matcher explode: many stars against a long near-miss. This asserts
  // the answer, not the time; the matcher's design bounds the work.
  WildcardPattern p("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b");
  EXPECT_FALSE(p.matches(std::string(255, 'a')));
  EXPECT_TRUE(p.matches(std::string(254, 'a') + "b"));
}

struct UserCase {
  const char* user;  // the User= value
  bool matches;      // whether it names alice_account
};

class UserMatchTable : public ::testing::TestWithParam<UserCase> {};

TEST_P(UserMatchTable, NamesAliceOrNot) {
  EXPECT_EQ(user_matches(GetParam().user, alice_account), GetParam().matches) << GetParam().user;
}

INSTANTIATE_TEST_SUITE_P(Forms, UserMatchTable,
                         ::testing::Values(UserCase{"alice", true}, UserCase{"ALICE", true},
                                           UserCase{"CORP\\alice", true}, UserCase{"corp\\Alice", true},
                                           UserCase{"alice@corp.example.test", true},
                                           UserCase{"Alice@CORP.Example.Test", true}));

INSTANTIATE_TEST_SUITE_P(Mismatches, UserMatchTable,
                         ::testing::Values(UserCase{"", false}, UserCase{"bob", false}, UserCase{"CORP\\bob", false},
                                           UserCase{"bob@corp.example.test", false},
                                           UserCase{"alice@other.example", false},  // the UPN must match fully
                                           UserCase{"alice@corp", false}, UserCase{"alic", false},
                                           UserCase{"alice2", false}, UserCase{"CORP\\", false},
                                           UserCase{"CORP\\alice\\x", false},
                                           UserCase{"CORP\\alice@corp.example.test", false}));

TEST(UserMatch, EmptyNamesNeverMatch) {
  EXPECT_FALSE(user_matches("@corp.example.test", AccountNames{"@corp.example.test", ""}));
}

TEST(UserMatch, SamAccountNameDiffersFromUpn) {
  AccountNames account{"a.smith@corp.example.test", "asmith"};
  EXPECT_TRUE(user_matches("asmith", account));
  EXPECT_TRUE(user_matches("CORP\\asmith", account));
  EXPECT_TRUE(user_matches("a.smith", account));  // the UPN's local part also names the account
  EXPECT_TRUE(user_matches("a.smith@corp.example.test", account));
  EXPECT_FALSE(user_matches("asmith@corp.example.test", account));
  AccountNames upn_only{"alice@corp.example.test", ""};
  EXPECT_TRUE(user_matches("CORP\\alice", upn_only));
  EXPECT_FALSE(user_matches("alice", AccountNames{"", ""}));
}

TEST(Policy, DefaultsAllowEverything) {
  Policy policy(config::EasConfig{});
  auto decision = policy.evaluate(request("bob"), alice_account);
  EXPECT_TRUE(decision);
  EXPECT_TRUE(policy.evaluate(request(""), std::nullopt));
}

TEST(Policy, RequireUserMatch) {
  config::EasConfig config;
  config.require_user_match = true;
  Policy policy(config);
  EXPECT_TRUE(policy.evaluate(request("CORP\\alice"), alice_account));
  auto other = policy.evaluate(request("bob"), alice_account);
  EXPECT_FALSE(other);
  EXPECT_EQ(other.error().reason, PolicyRefusal::user_mismatch);
  EXPECT_NE(other.error().text.find("alice@corp.example.test"), std::string::npos);
  auto missing = policy.evaluate(request(""), alice_account);
  EXPECT_EQ(missing.error().reason, PolicyRefusal::user_mismatch);
  EXPECT_FALSE(missing);
  auto unmapped = policy.evaluate(request("alice"), std::nullopt);
  EXPECT_FALSE(unmapped);
  EXPECT_EQ(unmapped.error().reason, PolicyRefusal::user_mismatch);
  // Discovery without a query names nobody.
  EXPECT_TRUE(policy.evaluate(EasRequest{}, std::nullopt));
}

TEST(Policy, DeviceRules) {
  config::EasConfig config;
  config.devices.allow = {"*"};
  config.devices.block = {"BLOCKED*"};
  config.devices.block_types = {"TestDevice*"};
  Policy policy(config);
  EXPECT_TRUE(policy.evaluate(request("alice", "GOOD1", "iPhone"), alice_account));
  auto blocked = policy.evaluate(request("alice", "blocked7", "iPhone"), alice_account);
  EXPECT_FALSE(blocked);
  EXPECT_EQ(blocked.error().reason, PolicyRefusal::device_blocked);
  EXPECT_NE(blocked.error().text.find("BLOCKED*"), std::string::npos);
  auto type = policy.evaluate(request("alice", "GOOD1", "TESTDEVICE2"), alice_account);
  EXPECT_FALSE(type);
  EXPECT_EQ(type.error().reason, PolicyRefusal::device_type_blocked);
  // Both blocked: the DeviceId rule is reported.
  EXPECT_EQ(policy.evaluate(request("alice", "BLOCKED1", "TestDevice"), alice_account).error().reason, PolicyRefusal::device_blocked);
}

TEST(Policy, AllowListAndBlockWins) {
  config::EasConfig config;
  config.devices.allow = {"Appl*", "android*"};
  config.devices.block = {"ApplBAD*"};
  Policy policy(config);
  EXPECT_TRUE(policy.evaluate(request("alice", "ApplF17XYZ"), alice_account));
  EXPECT_TRUE(policy.evaluate(request("alice", "ANDROIDc1234"), alice_account));
  auto other = policy.evaluate(request("alice", "WP8ABC"), alice_account);
  EXPECT_FALSE(other);
  EXPECT_EQ(other.error().reason, PolicyRefusal::device_not_allowed);
  auto both = policy.evaluate(request("alice", "ApplBAD1"), alice_account);
  EXPECT_FALSE(both);
  EXPECT_EQ(both.error().reason, PolicyRefusal::device_blocked);
  // An empty allow list allows nothing.
  config.devices.allow.clear();
  config.devices.block.clear();
  EXPECT_EQ(Policy(config).evaluate(request("alice", "ApplF17XYZ"), alice_account).error().reason, PolicyRefusal::device_not_allowed);
}

TEST(Policy, UserCheckedBeforeDevice) {
  config::EasConfig config;
  config.require_user_match = true;
  config.devices.block = {"*"};
  Policy policy(config);
  EXPECT_EQ(policy.evaluate(request("bob", "X"), alice_account).error().reason, PolicyRefusal::user_mismatch);
  EXPECT_EQ(policy.evaluate(request("alice", "X"), alice_account).error().reason, PolicyRefusal::device_blocked);
}

TEST(Policy, OptionsWithoutDeviceIdSkipsDeviceRules) {
  config::EasConfig config;
  config.devices.allow = {"Appl*"};
  Policy policy(config);
  EasRequest options;
  options.form = QueryForm::plain;
  options.user = "alice";
  EXPECT_TRUE(policy.evaluate(options, alice_account));
}

TEST(Policy, RefusalNames) {
  EXPECT_EQ(policy_refusal_name(PolicyRefusal::user_mismatch), "user_mismatch");
  EXPECT_EQ(policy_refusal_name(PolicyRefusal::device_blocked), "device_blocked");
  EXPECT_EQ(policy_refusal_name(PolicyRefusal::device_type_blocked), "device_type_blocked");
  EXPECT_EQ(policy_refusal_name(PolicyRefusal::device_not_allowed), "device_not_allowed");
}

}  // namespace
}  // namespace easedge::eas
