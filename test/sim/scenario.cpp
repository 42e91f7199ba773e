#include "scenario.hpp"

#include <cstdlib>

#include <fmt/format.h>

#include "checker.hpp"

namespace squall::sim {

std::string Scenario::describe() const {
  return fmt::format(
      "seed {}: {} nodes, {} shards x {} replicas, window {}, slot {} B, delivery window {}, "
      "queue {}, delays {}..{} us, spikes {}/M of {} us, torn {}/M, link queue {}, "
      "persist {}..{} us, skew {} us, {} pauses <= {} us, workload {} us, large {}",
      seed, cluster.nodes, cluster.layout.shards, cluster.layout.replicas_per_shard,
      cluster.window, cluster.smc_payload_bytes, cluster.delivery_window_slots,
      cluster.send_queue_messages, sim.min_delay_us, sim.max_delay_us,
      sim.delay_spike_per_million, sim.delay_spike_us, sim.torn_write_per_million,
      sim.send_queue_depth, cluster.persist_min_us, cluster.persist_max_us,
      cluster.max_clock_skew_us, pauses, max_pause_us, workload.duration_us,
      cluster.large ? fmt::format("{}% up to {} B in {} B blocks ({}), window {}",
                                  workload.large_percent, cluster.large->max_payload_bytes,
                                  cluster.large->block_size_bytes,
                                  rdmc::algorithm_name(cluster.large->algorithm),
                                  cluster.large->window)
                    : std::string("off"));
}

Scenario random_scenario(std::uint64_t seed) {
  fabric::SimRandom random(seed ^ 0x5eed'c0de'0000'0001ULL);
  Scenario scenario;
  scenario.seed = seed;
  fabric::SimOptions& sim = scenario.sim;
  sim.seed = seed;
  sim.min_delay_us = random.between(1, 20);
  sim.max_delay_us = sim.min_delay_us + random.between(0, 200);
  sim.send_queue_depth = random.between(2, 32);
  sim.torn_write_per_million = static_cast<std::uint32_t>(random.below(200'000));
  sim.delay_spike_per_million = static_cast<std::uint32_t>(random.below(20'000));
  sim.delay_spike_us = random.between(500, 3'000);

  ClusterOptions& cluster = scenario.cluster;
  cluster.nodes = random.between(3, 7);
  cluster.layout.shards = static_cast<std::uint32_t>(random.between(1, 3));
  cluster.layout.replicas_per_shard = static_cast<std::uint32_t>(random.between(1, 4));
  cluster.window = static_cast<std::uint32_t>(random.between(1, 8));
  cluster.smc_payload_bytes = random.between(64, 256);
  cluster.delivery_window_slots =
      random.below(2) == 0 ? 0 : static_cast<std::uint32_t>(random.between(1, 16));
  cluster.send_queue_messages = random.between(1, 16);
  cluster.tick_us = random.between(20, 100);
  cluster.persist_min_us = random.below(200);
  cluster.persist_max_us = cluster.persist_min_us + random.below(2'000);
  cluster.max_clock_skew_us = random.below(2) == 0 ? 0 : random.between(1, 5'000);
  if (random.below(3) == 0) {
    core::LargeMessageOptions large;
    large.block_size_bytes = random.between(16, 512);
    large.max_payload_bytes = cluster.smc_payload_bytes + random.between(1, 4'000);
    large.window = static_cast<std::uint32_t>(random.between(1, 4));
    large.algorithm = static_cast<rdmc::Algorithm>(random.below(4));
    cluster.large = large;
    scenario.workload.large_percent = static_cast<std::uint32_t>(random.between(1, 50));
  }
  cluster.heartbeat_ms = 1;
  cluster.failure_timeout_ms = 100;  // far above any pause, spike or delay below

  scenario.workload.duration_us = random.between(2'000, 15'000);
  scenario.workload.max_messages_per_sender = random.between(1, 120);
  scenario.workload.max_burst = random.between(1, 40);
  scenario.workload.idle_percent = static_cast<std::uint32_t>(random.below(60));
  scenario.pauses = random.below(4);
  scenario.max_pause_us = 20'000;
  scenario.settle_limit_us = 1'000'000;
  return scenario;
}

namespace {

void schedule_pauses(Cluster& cluster, const Scenario& scenario) {
  fabric::SimRandom& random = cluster.network.random();
  for (std::size_t i = 0; i < scenario.pauses; ++i) {
    std::size_t node = random.below(cluster.nodes.size());
    std::uint64_t start_us = random.below(scenario.workload.duration_us);
    std::uint64_t length_us = random.between(100, scenario.max_pause_us);
    // One pause at a time per node, so a resume never ends someone else's pause early.
    cluster.network.schedule_after(start_us, [&cluster, node, length_us] {
      if (cluster.paused(node)) return;
      cluster.pause(node);
      cluster.network.schedule_after(length_us, [&cluster, node] { cluster.resume(node); });
    });
  }
}

}  // namespace

RunResult run_scenario(const Scenario& scenario) {
  Cluster cluster(scenario.sim, scenario.cluster);
  Checker checker(cluster);
  Workload workload(cluster, scenario.workload);
  cluster.on_trouble = [&cluster](Replica& replica, const std::string& what) {
    cluster.violation(fmt::format("shard {} replica {} (node {}) {}", replica.shard,
                                  replica.rank, replica.node, what));
  };
  schedule_pauses(cluster, scenario);
  // Faults happen during the workload; the longest pause may start at its very end.
  cluster.run_for(scenario.workload.duration_us + scenario.max_pause_us);
  std::uint64_t settle_start_us = cluster.network.now_us();
  while (!cluster.quiescent() &&
         cluster.network.now_us() - settle_start_us < scenario.settle_limit_us) {
    cluster.run_for(500);
  }
  RunResult result;
  result.settle_us = cluster.network.now_us() - settle_start_us;
  if (!cluster.quiescent()) {
    cluster.violation(fmt::format("not quiescent {} us after the faults ended",
                                  result.settle_us));
  }
  checker.check_final();
  for (const auto& node : cluster.nodes) {
    if (node->unclaimed_events != 0) {
      cluster.violation(fmt::format("node {}: {} write completions no group recognised",
                                    node->id, node->unclaimed_events));
    }
  }
  result.violations = cluster.violations();
  result.deliveries = checker.deliveries();
  result.generated = workload.generated();
  result.trace_hash = cluster.network.trace_hash();
  for (const auto& replica : cluster.replicas) {
    result.null_batches += replica->group->stats().null_batches_sent;
    result.large_sent += replica->group->stats().large_sent;
    result.would_block += replica->would_block;
  }
  return result;
}

std::vector<std::uint64_t> seeds_to_run(std::uint64_t first, std::uint64_t count) {
  if (const char* only = std::getenv("SQUALL_SIM_SEED")) {
    return {std::strtoull(only, nullptr, 10)};
  }
  if (const char* override_count = std::getenv("SQUALL_SIM_SEEDS")) {
    count = std::strtoull(override_count, nullptr, 10);
  }
  std::vector<std::uint64_t> seeds;
  for (std::uint64_t seed = first; seed < first + count; ++seed) seeds.push_back(seed);
  return seeds;
}

}  // namespace squall::sim
