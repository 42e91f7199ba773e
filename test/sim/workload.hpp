// Random workloads for a simulated cluster, drawn from the network's PRNG.
//
// Each replica gets a profile: idle (never sends), steady (one message every period) or
// bursty (a burst of 1..max_burst messages, then a random gap). Payload sizes are uniform in
// [0, max payload], with extra weight on 0 and on the maximum. Messages are generated only
// during [start, start + duration) and while the replica runs (a paused node generates none).
#pragma once

#include <cstdint>
#include <vector>

#include "cluster.hpp"

namespace squall::sim {

struct WorkloadOptions {
  std::uint64_t duration_us = 20'000;
  std::size_t max_messages_per_sender = 200;
  std::size_t max_burst = 32;
  std::uint32_t idle_percent = 30;  // chance that a replica never sends
  // Chance that a message is larger than a slot (when the group takes large messages).
  std::uint32_t large_percent = 0;
};

class Workload {
 public:
  // Installs itself as the cluster's on_tick hook.
  Workload(Cluster& cluster, WorkloadOptions options);

  std::uint64_t generated() const { return generated_; }
  std::size_t active_senders() const;

 private:
  enum class Profile : std::uint8_t { idle, steady, bursty };
  struct SenderPlan {
    Profile profile = Profile::idle;
    std::uint64_t period_us = 0;
    std::uint64_t next_us = 0;
    std::size_t generated = 0;
  };

  void on_tick(Replica& replica);
  Bytes make_payload(const core::OrderedGroupOptions& group);
  Bytes random_bytes(std::size_t size);

  Cluster& cluster_;
  WorkloadOptions options_;
  std::uint64_t start_us_;
  std::vector<SenderPlan> plans_;  // per replica index
  std::uint64_t generated_ = 0;
};

}  // namespace squall::sim
