#include "mapping/mapping_cache.h"

namespace easedge::mapping {

MappingCache::MappingCache(const config::MappingCacheConfig& config) : config_(config) {}

std::optional<MapResult> MappingCache::find(const std::string& key, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  if (it->second->expires <= now) {
    entries_.erase(it->second);
    index_.erase(it);
    return std::nullopt;
  }
  entries_.splice(entries_.begin(), entries_, it->second);
  return it->second->result;
}

void MappingCache::store(const std::string& key, const MapResult& result, Clock::time_point now) {
  if (result.status == MapStatus::directory_unavailable) return;
  auto ttl = result.status == MapStatus::mapped ? config_.ttl : config_.negative_ttl;
  if (ttl.count() <= 0 || config_.max_entries == 0) return;
  std::lock_guard lock(mutex_);
  if (auto it = index_.find(key); it != index_.end()) {
    entries_.erase(it->second);
    index_.erase(it);
  }
  while (entries_.size() >= config_.max_entries) {
    index_.erase(entries_.back().key);
    entries_.pop_back();
  }
  entries_.push_front({key, result, now + ttl});
  index_[key] = entries_.begin();
}

std::size_t MappingCache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace easedge::mapping
