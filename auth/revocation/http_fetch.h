// One bounded plain-HTTP exchange (CRL download, OCSP query) on an io_context, for the revocation worker.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace easedge::auth {

struct HttpFetchResult {
  std::string error;  // empty on success: a 200 answer whose body fit the limit
  std::string body;
};

struct HttpFetchRequest {
  std::string url;                   // http:// only; CDP/AIA URLs of AD CS are plain HTTP by design
  std::string post_body;             // empty = GET
  std::string content_type;          // for POST
  std::uint64_t max_body_bytes = 0;
  std::chrono::seconds timeout{5};   // the whole exchange: resolve, connect, write, read
};

// Starts the exchange; `done` runs exactly once on `io`'s thread.
void http_fetch(boost::asio::io_context& io, HttpFetchRequest request,
                std::function<void(HttpFetchResult)> done);

}  // namespace easedge::auth
