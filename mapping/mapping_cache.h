// Recent mapping answers keyed by the certificate's SHA-256, so steady traffic needs no directory round trip.
#pragma once

#include "config/config.h"
#include "mapping/account_mapper.h"

#include <chrono>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace easedge::mapping {

// Thread-safe LRU with two lifetimes: `ttl` for mapped answers, `negative_ttl` for refusals.
// directory_unavailable is never kept (the next request asks the directory again).
class MappingCache {
public:
  using Clock = std::chrono::steady_clock;
  explicit MappingCache(const config::MappingCacheConfig& config);

  std::optional<MapResult> find(const std::string& key, Clock::time_point now);
  void store(const std::string& key, const MapResult& result, Clock::time_point now);
  std::size_t size() const;

private:
  struct Entry {
    std::string key;
    MapResult result;
    Clock::time_point expires;
  };
  config::MappingCacheConfig config_;
  mutable std::mutex mutex_;
  std::list<Entry> entries_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace easedge::mapping
