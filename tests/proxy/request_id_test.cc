// Request ids: 16 hex digits, never repeated within a worker or between workers of one process.
#include "proxy/request_id.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace easedge::proxy {
namespace {

bool is_lower_hex(const std::string& id) {
  return id.find_first_not_of("0123456789abcdef") == std::string::npos;
}

TEST(RequestIds, SixteenLowercaseHexDigits) {
  RequestIds ids(0);
  for (int i = 0; i < 100; ++i) {
    auto id = ids.next();
    EXPECT_EQ(id.size(), RequestIds::length) << id;
    EXPECT_TRUE(is_lower_hex(id)) << id;
  }
}

TEST(RequestIds, UniqueWithinAndAcrossWorkers) {
  std::set<std::string> seen;
  RequestIds first(0), second(1), last(255);
  for (int i = 0; i < 10000; ++i) {
    EXPECT_TRUE(seen.insert(first.next()).second);
    EXPECT_TRUE(seen.insert(second.next()).second);
    EXPECT_TRUE(seen.insert(last.next()).second);
  }
}

TEST(RequestIds, WorkersShareTheProcessBaseInDisjointRanges) {
  // Same base: worker 1's first id is worker 0's first id plus one range (2^40), modulo 2^64.
  auto a = std::stoull(RequestIds(0).next(), nullptr, 16);
  auto b = std::stoull(RequestIds(1).next(), nullptr, 16);
  EXPECT_EQ(b - a, std::uint64_t{1} << 40);
}

}  // namespace
}  // namespace easedge::proxy
