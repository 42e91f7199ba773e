// One randomized simulation run: every tunable (cluster size, shard layout, windows, queue
// sizes, link delays, delay spikes, torn writes, persistence delays, clock skew, node pauses,
// workload) is drawn from the seed, the run is checked as it goes, then the faults stop and
// the cluster must become quiescent (liveness).
//
// Replay: SQUALL_SIM_SEED=<seed> runs only that seed; SQUALL_SIM_SEEDS=<n> changes how many
// seeds the suite runs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cluster.hpp"
#include "workload.hpp"

namespace squall::sim {

struct Scenario {
  std::uint64_t seed = 0;
  fabric::SimOptions sim;
  ClusterOptions cluster;
  WorkloadOptions workload;
  std::size_t pauses = 0;               // node pauses during the workload
  std::uint64_t max_pause_us = 0;       // each shorter than the failure timeout
  std::uint64_t settle_limit_us = 0;    // time allowed to reach quiescence afterwards
  // A node killed during the workload: the survivors of its shards must wedge, and after a
  // ragged trim computed from their published counts they must have delivered the same.
  std::optional<std::size_t> crash_node;
  std::uint64_t crash_at_us = 0;
  fabric::CrashDetection crash_detection = fabric::CrashDetection::reset;

  std::string describe() const;
};

struct RunResult {
  std::vector<std::string> violations;
  std::uint64_t deliveries = 0;
  std::uint64_t generated = 0;
  std::uint64_t trace_hash = 0;
  std::uint64_t settle_us = 0;         // simulated time from the end of faults to quiescence
  std::uint64_t null_batches = 0;
  std::uint64_t large_sent = 0;
  std::uint64_t would_block = 0;
  std::uint64_t trimmed = 0;           // updates delivered by ragged trims
  std::uint64_t packed_slots = 0;      // slots that carried several updates
  std::uint64_t packed_updates = 0;    // the updates they carried
};

Scenario random_scenario(std::uint64_t seed);
// random_scenario(seed) plus a crash of a random node at a random time.
Scenario random_crash_scenario(std::uint64_t seed);
// Made for packed slots: slots of 256..2048 bytes, small payloads, bursty senders with short
// gaps, small windows; a crash (and its ragged trim) in every other seed.
Scenario random_packing_scenario(std::uint64_t seed);
RunResult run_scenario(const Scenario& scenario);

// Seeds to run: [first, first + count), or only SQUALL_SIM_SEED if set.
std::vector<std::uint64_t> seeds_to_run(std::uint64_t first, std::uint64_t count);

}  // namespace squall::sim
