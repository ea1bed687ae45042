// The refusal ring, the activity tables and the per-minute refusal counts.
#include "proxy/console/console_log.h"

#include <algorithm>

namespace easedge::proxy::console {

std::string status_class(std::uint16_t status, std::uint16_t substatus) {
  auto text = std::to_string(status);
  if (substatus != 0) text += "." + std::to_string(substatus);
  return text;
}

ConsoleLog::ConsoleLog(std::size_t ring_capacity, std::size_t activity_keys)
    : ring_capacity_(std::max<std::size_t>(ring_capacity, 1)), activity_keys_(activity_keys) {
  ring_.reserve(ring_capacity_);
}

void ConsoleLog::record(const RequestFacts& facts, std::size_t thread) {
  const bool refused = !facts.refusal.empty();
  if (refused) {
    RefusalEntry entry{facts.time,
                       std::string(facts.client_address),
                       std::string(facts.subject),
                       std::string(facts.cert_sha256),
                       std::string(facts.user),
                       std::string(facts.device_id),
                       std::string(facts.device_type),
                       std::string(facts.command),
                       facts.status,
                       facts.substatus,
                       std::string(facts.refusal),
                       std::string(facts.detail),
                       std::string(facts.request_id)};
    const auto minute = std::chrono::floor<std::chrono::minutes>(facts.time);
    const auto slot = static_cast<std::size_t>(minute.time_since_epoch().count()) % minutes_kept;
    std::lock_guard lock(ring_mutex_);
    if (ring_.size() < ring_capacity_) {
      ring_.push_back(std::move(entry));
    } else {
      ring_[next_] = std::move(entry);
    }
    next_ = (next_ + 1) % ring_capacity_;
    auto& counts = minutes_[slot];
    if (counts.minute != minute) counts = {minute, {}};
    ++counts.by_class[status_class(facts.status, facts.substatus)];
  }
  if (facts.device_id.empty() && facts.user.empty()) return;
  auto& shard = shards_[thread % activity_shards];
  std::lock_guard lock(shard.mutex);
  rotate(shard, facts.time);
  if (!facts.device_id.empty()) count(shard, shard.devices, facts.device_id, facts.device_type, facts);
  if (!facts.user.empty()) count(shard, shard.users, facts.user, {}, facts);
}

void ConsoleLog::rotate(ActivityShard& shard, std::chrono::system_clock::time_point now) {
  if (now - shard.generation_start < activity_generation) return;
  for (auto* activity : {&shard.devices, &shard.users}) {
    activity->previous = std::move(activity->current);
    activity->current.clear();
    // Two generations without a request: the previous one is older than an hour.
    if (now - shard.generation_start >= 2 * activity_generation) activity->previous.clear();
  }
  shard.generation_start = now;
}

void ConsoleLog::count(ActivityShard& shard, Activity& activity, std::string_view key, std::string_view detail,
                       const RequestFacts& facts) const {
  auto it = activity.current.find(key);
  if (it == activity.current.end()) {
    if (activity.current.size() >= activity_keys_) {
      ++shard.untracked;
      return;
    }
    it = activity.current.emplace(std::string(key), ActivityEntry{std::string(key), std::string(detail), 0, 0, {}}).first;
  }
  auto& entry = it->second;
  ++entry.requests;
  if (!facts.refusal.empty()) ++entry.refused;
  entry.last_seen = facts.time;
  if (!detail.empty()) entry.detail.assign(detail);
}

std::vector<RefusalEntry> ConsoleLog::refusals() const {
  std::lock_guard lock(ring_mutex_);
  std::vector<RefusalEntry> out;
  out.reserve(ring_.size());
  for (std::size_t i = 0; i < ring_.size(); ++i)
    out.push_back(ring_[(next_ + ring_capacity_ - 1 - i) % ring_capacity_]);
  return out;
}

std::vector<ActivityEntry> ConsoleLog::top(Activity ActivityShard::*activity, std::size_t limit) const {
  // A device whose connections landed on several threads is in several shards: its counts add up, the most
  // recent sighting gives last_seen and detail.
  Table merged;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    for (const auto* table : {&(shard.*activity).previous, &(shard.*activity).current}) {
      for (const auto& [key, entry] : *table) {
        auto [it, inserted] = merged.try_emplace(key, entry);
        if (inserted) continue;
        it->second.requests += entry.requests;
        it->second.refused += entry.refused;
        if (entry.last_seen < it->second.last_seen) continue;
        it->second.last_seen = entry.last_seen;
        if (!entry.detail.empty()) it->second.detail = entry.detail;
      }
    }
  }
  std::vector<ActivityEntry> out;
  out.reserve(merged.size());
  for (auto& [key, entry] : merged) out.push_back(std::move(entry));
  auto busiest = [](const ActivityEntry& a, const ActivityEntry& b) {
    return a.requests != b.requests ? a.requests > b.requests : a.key < b.key;
  };
  if (out.size() > limit) {
    std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(limit), out.end(), busiest);
    out.resize(limit);
  } else {
    std::sort(out.begin(), out.end(), busiest);
  }
  return out;
}

std::vector<ActivityEntry> ConsoleLog::top_devices(std::size_t limit) const {
  return top(&ActivityShard::devices, limit);
}

std::vector<ActivityEntry> ConsoleLog::top_users(std::size_t limit) const { return top(&ActivityShard::users, limit); }

std::uint64_t ConsoleLog::untracked() const {
  std::uint64_t total = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    total += shard.untracked;
  }
  return total;
}

std::vector<MinuteCounts> ConsoleLog::refusals_per_minute(std::chrono::system_clock::time_point now) const {
  const auto current = std::chrono::floor<std::chrono::minutes>(now);
  std::vector<MinuteCounts> out;
  {
    std::lock_guard lock(ring_mutex_);
    for (const auto& counts : minutes_)
      if (!counts.by_class.empty() && counts.minute <= current &&
          current - counts.minute < std::chrono::minutes(minutes_kept))
        out.push_back(counts);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.minute < b.minute; });
  return out;
}

}  // namespace easedge::proxy::console
