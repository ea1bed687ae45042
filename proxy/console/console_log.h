// What the operator console remembers of recent requests: the last refusals, the busiest devices and users, refusals per minute.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace easedge::proxy::console {

// One answered request as the session knows it when it ends. Views are valid for the record() call only.
struct RequestFacts {
  std::chrono::system_clock::time_point time;
  std::string_view client_address;
  std::string_view subject;       // certificate subject, RFC 2253
  std::string_view cert_sha256;
  std::string_view user;          // the mapped account, never the query's User=
  std::string_view device_id;
  std::string_view device_type;
  std::string_view command;
  std::uint16_t status = 0;
  std::uint16_t substatus = 0;
  std::string_view refusal;       // refusal name; empty when the request was not refused by easedge
  std::string_view detail;        // why, as in the error log line
  std::string_view request_id;
};

// A refusal kept in the ring: owned copies of the facts.
struct RefusalEntry {
  std::chrono::system_clock::time_point time;
  std::string client_address, subject, cert_sha256, user, device_id, device_type, command;
  std::uint16_t status = 0;
  std::uint16_t substatus = 0;
  std::string refusal, detail, request_id;
};

// How often a device or user was seen; for the "most active" tables.
struct ActivityEntry {
  std::string key;          // DeviceId, or account
  std::string detail;       // DeviceType for a device; empty for a user
  std::uint64_t requests = 0;
  std::uint64_t refused = 0;
  std::chrono::system_clock::time_point last_seen;
};

// Refusals of one minute, by class ("403.13", "413", ...).
struct MinuteCounts {
  std::chrono::system_clock::time_point minute;  // start of the minute
  std::map<std::string, std::uint64_t> by_class;
};

// Thread-safe; every I/O thread records into it, the activity of each into a shard of its own (threads never
// wait for each other; readers merge the shards). Bounded: `ring_capacity` refusals, `activity_keys` devices
// and users per shard and half-hour generation (keys past that are counted as untracked), one hour of minute
// counts.
class ConsoleLog {
public:
  static constexpr std::size_t default_ring_capacity = 1000;
  static constexpr std::size_t default_activity_keys = 20000;
  static constexpr std::chrono::minutes activity_generation{30};
  static constexpr std::size_t minutes_kept = 60;

  explicit ConsoleLog(std::size_t ring_capacity = default_ring_capacity,
                      std::size_t activity_keys = default_activity_keys);

  // `thread`: the recording I/O thread's index, which picks its activity shard.
  void record(const RequestFacts& facts, std::size_t thread = 0);

  // Newest first.
  std::vector<RefusalEntry> refusals() const;
  // The `limit` most active devices / users of the last 30 to 60 minutes, busiest first.
  std::vector<ActivityEntry> top_devices(std::size_t limit) const;
  std::vector<ActivityEntry> top_users(std::size_t limit) const;
  // Requests whose device or user could not be tracked because the tables were full.
  std::uint64_t untracked() const;
  // The minutes of the last hour up to `now` that saw refusals, oldest first.
  std::vector<MinuteCounts> refusals_per_minute(std::chrono::system_clock::time_point now) const;

private:
  // Looked up by string_view: counting a request builds no key string unless the key is new.
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
  };
  using Table = std::unordered_map<std::string, ActivityEntry, KeyHash, std::equal_to<>>;
  struct Activity {
    Table current, previous;  // two half-hour generations
  };
  // One I/O thread's activity (threads past the shard count share): a cache line of its own, a lock only the
  // console's readers contend for.
  struct alignas(64) ActivityShard {
    mutable std::mutex mutex;
    Activity devices, users;
    std::chrono::system_clock::time_point generation_start{};
    std::uint64_t untracked = 0;
  };
  static constexpr std::size_t activity_shards = 16;
  void count(ActivityShard& shard, Activity& activity, std::string_view key, std::string_view detail,
             const RequestFacts& facts) const;
  static void rotate(ActivityShard& shard, std::chrono::system_clock::time_point now);
  std::vector<ActivityEntry> top(Activity ActivityShard::*activity, std::size_t limit) const;

  const std::size_t ring_capacity_;
  const std::size_t activity_keys_;

  mutable std::mutex ring_mutex_;
  std::vector<RefusalEntry> ring_;  // circular once full
  std::size_t next_ = 0;            // where the next refusal goes
  std::array<MinuteCounts, minutes_kept> minutes_{};

  std::array<ActivityShard, activity_shards> shards_;
};

// "403.13", or "404" when there is no substatus.
std::string status_class(std::uint16_t status, std::uint16_t substatus);

}  // namespace easedge::proxy::console
