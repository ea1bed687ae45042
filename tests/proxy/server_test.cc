// The connection limit sized from the descriptor limit (limits.max_connections: 0).
#include "proxy/server.h"

#include <gtest/gtest.h>

namespace easedge::proxy {
namespace {

TEST(ConnectionLimitForDescriptors, TwoDescriptorsPerConnectionAfterTheReserve) {
  EXPECT_EQ(connection_limit_for_descriptors(1048576), (1048576u - 256) / 2);
  EXPECT_EQ(connection_limit_for_descriptors(1024), 384u);
  // A small limit keeps half for connections instead of reserving it all.
  EXPECT_EQ(connection_limit_for_descriptors(64), 16u);
  EXPECT_EQ(connection_limit_for_descriptors(0), 1u);
}

}  // namespace
}  // namespace easedge::proxy
