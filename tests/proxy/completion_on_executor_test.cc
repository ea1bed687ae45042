#include "proxy/completion_on_executor.h"

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <functional>
#include <future>
#include <optional>
#include <thread>
#include <vector>

namespace easedge::proxy {
namespace {

// Stands in for a session: records the thread its destructor ran on.
struct Owner {
  explicit Owner(std::optional<std::thread::id>& destroyed_on) : destroyed_on_(destroyed_on) {}
  ~Owner() { destroyed_on_ = std::this_thread::get_id(); }
  std::optional<std::thread::id>& destroyed_on_;
};

class CompletionOnExecutorTest : public ::testing::Test {
protected:
  // The completion as a pool stores it, holding the only reference to the owner.
  std::function<void(int)> completion() {
    auto owner = std::make_shared<Owner>(destroyed_on_);
    return CompletionOnExecutor(io_.get_executor(), std::move(owner), [this](Owner&, int value) {
      answers_.push_back(value);
      handled_on_ = std::this_thread::get_id();
    });
  }

  boost::asio::io_context io_;
  std::optional<std::thread::id> destroyed_on_;
  std::optional<std::thread::id> handled_on_;
  std::vector<int> answers_;
};

// The race of a late answer: the pool calls the completion, the session's thread runs the handler and the
// session moves on, and only then does the pool thread let go of the completion.
TEST_F(CompletionOnExecutorTest, CalledOnAPoolThreadTheOwnerIsReleasedOnTheExecutorsThread) {
  auto done = completion();
  std::promise<void> called, handled;
  std::thread pool([&, done = std::move(done)]() mutable {
    done(42);
    called.set_value();
    handled.get_future().wait();
    done = nullptr;
  });
  called.get_future().wait();
  EXPECT_FALSE(destroyed_on_) << "the owner must live until its handler ran";
  EXPECT_EQ(io_.run_one(), 1u);
  handled.set_value();
  pool.join();
  io_.run();

  EXPECT_EQ(answers_, std::vector<int>{42});
  EXPECT_EQ(handled_on_, std::this_thread::get_id());
  ASSERT_TRUE(destroyed_on_);
  EXPECT_EQ(*destroyed_on_, std::this_thread::get_id());
}

// A pool shutting down, or clearing its queue, destroys completions it never called.
TEST_F(CompletionOnExecutorTest, DroppedUncalledOnAPoolThreadTheOwnerIsReleasedOnTheExecutorsThread) {
  auto done = completion();
  std::thread pool([done = std::move(done)]() mutable { done = nullptr; });
  pool.join();
  EXPECT_FALSE(destroyed_on_);
  io_.run();

  EXPECT_TRUE(answers_.empty());
  ASSERT_TRUE(destroyed_on_);
  EXPECT_EQ(*destroyed_on_, std::this_thread::get_id());
}

// Pools copy the std::function around (the revocation checker's chain does); a second call must not run the
// handler again with an owner already handed over.
TEST_F(CompletionOnExecutorTest, OnlyTheFirstCallOfACompletionOrItsCopiesCounts) {
  auto done = completion();
  auto copy = done;
  std::thread pool([&] {
    done(1);
    copy(2);
    done = nullptr;
    copy = nullptr;
  });
  pool.join();
  io_.run();

  EXPECT_EQ(answers_, std::vector<int>{1});
  ASSERT_TRUE(destroyed_on_);
  EXPECT_EQ(*destroyed_on_, std::this_thread::get_id());
}

// Called inline (a cache hit on the session's own thread), the handler still runs later, from the executor.
TEST_F(CompletionOnExecutorTest, CalledInlineTheHandlerRunsFromTheExecutor) {
  auto done = completion();
  done(7);
  done = nullptr;
  EXPECT_TRUE(answers_.empty());
  EXPECT_FALSE(destroyed_on_);
  io_.run();

  EXPECT_EQ(answers_, std::vector<int>{7});
  EXPECT_TRUE(destroyed_on_);
}

}  // namespace
}  // namespace easedge::proxy
