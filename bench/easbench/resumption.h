// easbench --resume: each simulated device keeps its latest TLS session ticket and offers it on its next connection.
#pragma once

#include <openssl/ssl.h>

#include <memory>

namespace easedge::bench {

// Makes `ctx` accept session tickets and hand each one to the DeviceSession attached to its connection
// (without --resume easbench refuses tickets instead: every handshake is a full one).
void enable_session_tickets(SSL_CTX* ctx);

// The resumable session of one simulated device: the latest ticket the server sent it.
class DeviceSession {
 public:
  // Binds a new connection to this device: tickets it receives are kept here, and the latest one so far is
  // offered for resumption.
  void attach(SSL* ssl);

  // Called (through the context's new-session callback) for each ticket the server sends; keeps a copy.
  void keep(const SSL_SESSION* session);

 private:
  struct SessionDeleter {
    void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
  };
  std::unique_ptr<SSL_SESSION, SessionDeleter> latest_;
};

}  // namespace easedge::bench
