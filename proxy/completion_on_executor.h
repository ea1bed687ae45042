// A completion other threads' pools may call or drop; it runs, and releases its owner, on the owner's executor.
#pragma once

#include <boost/asio/post.hpp>

#include <atomic>
#include <memory>
#include <type_traits>
#include <utility>

namespace easedge::proxy {

// The mapper's, revocation's and Kerberos' pools call (or drop) completions on their own threads. A lambda
// there holding a copy of the session's shared_ptr can be the last reference once the session has timed out
// and moved on: ~Session would then run on the pool thread, touching its Worker's unlocked session set and
// perhaps releasing the last reference to a replaced Runtime, whose destructor joins the very pool it runs on.
// So the owner reference travels inside the posted handler and nothing owning stays on the calling thread;
// a completion dropped uncalled (a pool shutting down) sends its reference back to the executor as well.
//
// Copyable, because the pools store std::function; copies share one state, and only the first call counts.
// `handler(Owner&, args...)` must not own the owner itself: the completion holds that reference.
template <typename Executor, typename Owner, typename Handler>
class CompletionOnExecutor {
public:
  CompletionOnExecutor(Executor executor, std::shared_ptr<Owner> owner, Handler handler)
      : state_(std::make_shared<State>(std::move(executor), std::move(owner), std::move(handler))) {}

  template <typename... Args>
  void operator()(Args&&... args) const {
    if (state_->called.exchange(true)) return;
    boost::asio::post(state_->executor,
                      [owner = std::move(state_->owner), handler = std::move(state_->handler),
                       ... args = std::decay_t<Args>(std::forward<Args>(args))]() mutable {
                        handler(*owner, std::move(args)...);
                      });
  }

private:
  struct State {
    State(Executor e, std::shared_ptr<Owner> o, Handler h)
        : executor(std::move(e)), owner(std::move(o)), handler(std::move(h)) {}
    ~State() {
      if (owner) boost::asio::post(executor, [dropped = std::move(owner)] {});
    }
    State(const State&) = delete;
    State& operator=(const State&) = delete;

    Executor executor;
    std::shared_ptr<Owner> owner;  // null once called
    Handler handler;
    std::atomic<bool> called{false};
  };

  std::shared_ptr<State> state_;
};

}  // namespace easedge::proxy
