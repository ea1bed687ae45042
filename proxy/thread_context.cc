// One I/O thread's context, sized from the configuration it starts with.
#include "proxy/thread_context.h"

namespace easedge::proxy {

namespace {
// Free relay buffers kept per thread at most: enough for the requests one thread relays at once under load.
constexpr std::size_t max_free_relay_buffers = 64;
}  // namespace

ThreadContext::ThreadContext(SharedState& shared, std::size_t index)
    : shared(shared),
      index(index),
      metrics(shared.metrics()),
      relay_buffers(max_free_relay_buffers),
      pool(shared.runtime()->config.upstream.max_idle_connections, shared.runtime()->config.timeouts.upstream_idle),
      request_ids(index) {}

}  // namespace easedge::proxy
