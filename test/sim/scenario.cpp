#include "scenario.hpp"

#include <cstdlib>

#include <fmt/format.h>

#include "checker.hpp"
#include "test/seeds.hpp"

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
                    : std::string("off")) +
         (crash_node ? fmt::format(", crash of node {} at {} us ({})", *crash_node,
                                   crash_at_us,
                                   crash_detection == fabric::CrashDetection::reset ? "reset"
                                                                                    : "silent")
                     : std::string());
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

Scenario random_crash_scenario(std::uint64_t seed) {
  Scenario scenario = random_scenario(seed);
  fabric::SimRandom random(seed ^ 0xc2a5'4000'0000'0002ULL);
  scenario.crash_node = random.below(scenario.cluster.nodes);
  scenario.crash_at_us = random.below(scenario.workload.duration_us);
  scenario.crash_detection =
      random.below(2) == 0 ? fabric::CrashDetection::reset : fabric::CrashDetection::silent;
  return scenario;
}

Scenario random_packing_scenario(std::uint64_t seed) {
  Scenario scenario = seed % 2 == 0 ? random_crash_scenario(seed) : random_scenario(seed);
  fabric::SimRandom random(seed ^ 0x9ac4'ed00'0000'0003ULL);
  scenario.cluster.smc_payload_bytes = random.between(256, 2048);
  scenario.cluster.window = static_cast<std::uint32_t>(random.between(1, 3));
  scenario.cluster.send_queue_messages = random.between(16, 64);
  scenario.workload.max_burst = random.between(8, 64);
  scenario.workload.max_messages_per_sender = random.between(40, 160);
  scenario.workload.idle_percent = static_cast<std::uint32_t>(random.below(30));
  if (scenario.cluster.large) {
    scenario.cluster.large->max_payload_bytes =
        scenario.cluster.smc_payload_bytes + random.between(1, 4'000);
  }
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

std::vector<ShardId> shards_of(const Cluster& cluster, std::optional<std::size_t> node) {
  std::vector<ShardId> shards;
  if (!node) return shards;
  for (std::size_t index : cluster.nodes[*node]->replicas) {
    shards.push_back(cluster.replicas[index]->shard);
  }
  return shards;
}

// Survivors of the crashed node's shards, each shard's list.
std::vector<std::vector<Replica*>> survivors(Cluster& cluster, const Scenario& scenario) {
  std::vector<std::vector<Replica*>> result;
  for (ShardId shard : shards_of(cluster, scenario.crash_node)) {
    result.emplace_back();
    for (std::size_t rank = 0; rank < cluster.shard_size(shard); ++rank) {
      Replica& replica = cluster.replica(shard, rank);
      if (replica.node != scenario.crash_node) result.back().push_back(&replica);
    }
  }
  return result;
}

bool survivors_wedged(Cluster& cluster, const Scenario& scenario) {
  for (const auto& shard : survivors(cluster, scenario)) {
    for (Replica* replica : shard) {
      if (!replica->group->all_wedged()) return false;
    }
  }
  return true;
}

bool survivors_persisted(Cluster& cluster, const Scenario& scenario) {
  for (const auto& shard : survivors(cluster, scenario)) {
    for (Replica* replica : shard) {
      if (replica->group->persisted_frontier() != replica->group->delivered_version()) {
        return false;
      }
    }
  }
  return true;
}

// What the view-change leader will do: trim[s] = min over survivors of received_slots[s],
// then every survivor delivers exactly that. Returns the updates delivered by the trims.
std::uint64_t trim_crashed_shards(Cluster& cluster, const Scenario& scenario) {
  std::uint64_t trimmed = 0;
  for (const auto& shard : survivors(cluster, scenario)) {
    if (shard.empty()) continue;
    std::vector<std::uint64_t> trim = shard.front()->group->received_slots();
    for (Replica* replica : shard) {
      std::vector<std::uint64_t> received = replica->group->received_slots();
      for (std::size_t s = 0; s < trim.size(); ++s) trim[s] = std::min(trim[s], received[s]);
    }
    for (Replica* replica : shard) {
      auto delivered = replica->group->deliver_trim(trim);
      if (!delivered) {
        cluster.violation(fmt::format("shard {} replica {}: trim refused: {}", replica->shard,
                                      replica->rank, delivered.status().to_string()));
      } else {
        trimmed += *delivered;
      }
    }
  }
  return trimmed;
}

void settle(Cluster& cluster, const Scenario& scenario, RunResult& result) {
  std::vector<ShardId> crashed = shards_of(cluster, scenario.crash_node);
  std::uint64_t start_us = cluster.network.now_us();
  auto done = [&] {
    return cluster.quiescent(crashed) &&
           (!scenario.crash_node || survivors_wedged(cluster, scenario));
  };
  while (!done() && cluster.network.now_us() - start_us < scenario.settle_limit_us) {
    cluster.run_for(500);
  }
  result.settle_us = cluster.network.now_us() - start_us;
  if (!done()) {
    cluster.violation(fmt::format("not quiescent {} us after the faults ended",
                                  result.settle_us));
    return;
  }
  if (!scenario.crash_node) return;
  result.trimmed = trim_crashed_shards(cluster, scenario);
  while (!survivors_persisted(cluster, scenario) &&
         cluster.network.now_us() - start_us < 2 * scenario.settle_limit_us) {
    cluster.run_for(500);
  }
}

}  // namespace

RunResult run_scenario(const Scenario& scenario) {
  Cluster cluster(scenario.sim, scenario.cluster);
  Checker checker(cluster);
  Workload workload(cluster, scenario.workload);
  std::optional<NodeId> crashed;
  if (scenario.crash_node) crashed = cluster.nodes[*scenario.crash_node]->id;
  cluster.on_trouble = [&cluster, crashed](Replica& replica, std::optional<NodeId> suspect,
                                           const std::string& what) {
    if (suspect && suspect == crashed) return;  // expected
    cluster.violation(fmt::format("shard {} replica {} (node {}) {}", replica.shard,
                                  replica.rank, replica.node, what));
  };
  schedule_pauses(cluster, scenario);
  if (crashed) {
    cluster.network.schedule_after(scenario.crash_at_us, [&cluster, &scenario, crashed] {
      cluster.network.crash(*crashed, scenario.crash_detection);
    });
  }
  // Faults happen during the workload; the longest pause may start at its very end.
  cluster.run_for(scenario.workload.duration_us + scenario.max_pause_us);
  RunResult result;
  settle(cluster, scenario, result);
  checker.check_final(shards_of(cluster, scenario.crash_node), scenario.crash_node);
  for (const auto& node : cluster.nodes) {
    // After a crash, completions of writes to the dead node may arrive after it was
    // suspected and forgotten.
    if (node->unclaimed_events != 0 && !crashed) {
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
    result.packed_slots += replica->group->stats().packed_slots;
    result.packed_updates += replica->group->stats().packed_updates;
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
  } else {
    count = squall::testing::seed_count(count);
  }
  std::vector<std::uint64_t> seeds;
  for (std::uint64_t seed = first; seed < first + count; ++seed) seeds.push_back(seed);
  return seeds;
}

}  // namespace squall::sim
