#include "bench/easbench/resumption.h"

namespace easedge::bench {

namespace {

// The SSL ex_data slot that points a connection at its DeviceSession.
int device_session_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// OpenSSL's new-session callback: returning 0 leaves the reference to `session` with OpenSSL.
int on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* device = static_cast<DeviceSession*>(SSL_get_ex_data(ssl, device_session_index()));
  if (device) device->keep(session);
  return 0;
}

}  // namespace

void enable_session_tickets(SSL_CTX* ctx) {
  SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
  // A client "cache" of one ticket per device, kept by the devices themselves: no internal store to lock.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, on_new_session);
}

// Copies, never the connection's own session object: easbench closes connections without a close_notify, and
// OpenSSL then marks the connection's session not resumable (SSL_free -> ssl_clear_bad_session).
void DeviceSession::keep(const SSL_SESSION* session) {
  if (SSL_SESSION* copy = SSL_SESSION_dup(session)) latest_.reset(copy);
}

void DeviceSession::attach(SSL* ssl) {
  SSL_set_ex_data(ssl, device_session_index(), this);
  if (!latest_) return;
  SSL_SESSION* offer = SSL_SESSION_dup(latest_.get());
  if (!offer) return;
  SSL_set_session(ssl, offer);  // takes its own reference
  SSL_SESSION_free(offer);
}

}  // namespace easedge::bench
