// A bounded, thread-safe, least-recently-used map from user to delegated credential, with expiry.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

namespace easedge::auth::kerberos {

// Entries expire at a deadline given on insert (shortly before the tickets expire); when full, the
// least recently used entry goes. Values are cheap to copy (a shared_ptr in practice).
template <typename Value>
class CredentialCache {
public:
  using time_point = std::chrono::steady_clock::time_point;

  explicit CredentialCache(std::size_t max_entries) : max_entries_(max_entries == 0 ? 1 : max_entries) {}

  // The value for KEY if present and NOW is before its deadline; an expired entry is dropped.
  std::optional<Value> find(const std::string& key, time_point now) {
    std::lock_guard lock(mutex_);
    auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    if (now >= it->second->expires_at) {
      order_.erase(it->second);
      index_.erase(it);
      return std::nullopt;
    }
    order_.splice(order_.begin(), order_, it->second);
    return it->second->value;
  }

  void insert(const std::string& key, Value value, time_point expires_at) {
    std::lock_guard lock(mutex_);
    if (auto it = index_.find(key); it != index_.end()) {
      it->second->value = std::move(value);
      it->second->expires_at = expires_at;
      order_.splice(order_.begin(), order_, it->second);
      return;
    }
    if (index_.size() >= max_entries_) {
      index_.erase(order_.back().key);
      order_.pop_back();
    }
    order_.push_front(Entry{key, std::move(value), expires_at});
    index_.emplace(key, order_.begin());
  }

  void erase(const std::string& key) {
    std::lock_guard lock(mutex_);
    if (auto it = index_.find(key); it != index_.end()) {
      order_.erase(it->second);
      index_.erase(it);
    }
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return index_.size();
  }

private:
  struct Entry {
    std::string key;
    Value value;
    time_point expires_at;
  };

  const std::size_t max_entries_;
  mutable std::mutex mutex_;
  std::list<Entry> order_;  // most recently used first
  std::unordered_map<std::string, typename std::list<Entry>::iterator> index_;
};

}  // namespace easedge::auth::kerberos
