// What the sessions of one I/O thread work with: the thread's io_context, upstream pool, relay buffers,
// request ids, metric handles and open sessions, and the process's SharedState. Owned by the thread's Worker;
// unlocked.
#pragma once

#include "proxy/relay_buffer_pool.h"
#include "proxy/request_id.h"
#include "proxy/shared_state.h"
#include "proxy/thread_metrics.h"
#include "proxy/upstream_pool.h"

#include <boost/asio/io_context.hpp>

#include <cstddef>
#include <unordered_set>

namespace easedge::proxy {

class Session;

// Members are destroyed in reverse order, and destroying `io` destroys the handlers still queued there and
// with them the last references to sessions: what those sessions' destructors touch is declared before `io`.
struct ThreadContext {
  ThreadContext(SharedState& shared, std::size_t index);
  ThreadContext(const ThreadContext&) = delete;
  ThreadContext& operator=(const ThreadContext&) = delete;

  SharedState& shared;
  const std::size_t index;                // the thread's number: its shard of what threads share
  ThreadMetrics metrics;                  // the request metrics' label sets this thread used
  std::unordered_set<Session*> sessions;  // open on this thread, for drain(); sessions insert and erase themselves
  RelayBufferPool relay_buffers;          // a session holds a buffer only while relaying (see RelayBufferPool)
  boost::asio::io_context io{1};
  UpstreamPool pool;                      // after io: its connections are io's sockets
  RequestIds request_ids;                 // ids for this thread's requests (see RequestIds)
};

}  // namespace easedge::proxy
