// EventTally: one report per interval, carrying every event since the previous one.
#include "proxy/event_tally.h"

#include <gtest/gtest.h>

namespace easedge::proxy {
namespace {

using namespace std::chrono_literals;

TEST(EventTally, ReportsTheFirstEventThenOncePerIntervalWithTheCount) {
  EventTally tally(10s);
  auto t = EventTally::Clock::time_point{} + 1h;
  EXPECT_EQ(tally.add(t), 1u);
  for (int i = 0; i < 999; ++i) EXPECT_EQ(tally.add(t + 5s), 0u);
  EXPECT_EQ(tally.add(t + 10s), 1000u);  // 999 held back plus this one
  EXPECT_EQ(tally.add(t + 19s), 0u);
  EXPECT_EQ(tally.add(t + 60s), 2u);
}

}  // namespace
}  // namespace easedge::proxy
