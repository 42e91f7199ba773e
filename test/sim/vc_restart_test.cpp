// Total restart in whole simulated clusters: every node crashes mid-workload (sometimes in the
// middle of a view change), a quorum of the last view comes back from its disks (the durable
// prefix of each replica log, the view log) while the others stay down, and the group restarts
// from the longest logs (core/restart.hpp). Checked: every update a node that came back held
// durably is in the restarted history at its version; every acknowledged update survives;
// the replicas' logs converge; writes are delivered after the restart; and the usual view and
// log invariants. SQUALL_SIM_SEED=<seed> replays a seed.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "test/seeds.hpp"
#include "vc_cluster.hpp"

using namespace squall;
using namespace squall::sim;

namespace {

struct Scenario {
  fabric::SimOptions sim;
  VcOptions options;
  std::string describe() const {
    std::ostringstream out;
    out << "seed " << sim.seed << ": " << options.nodes << " nodes, " << options.layout.shards
        << " shards of " << options.layout.replicas_per_shard << ", window " << options.window
        << ", slot " << options.smc_payload_bytes << " B, large " << options.large_percent
        << "%, compact " << options.compact_keep;
    return out.str();
  }
};

Scenario draw(std::uint64_t seed) {
  fabric::SimRandom random(seed ^ 0x5253'5452ULL);
  Scenario scenario;
  scenario.sim.seed = seed;
  scenario.sim.min_delay_us = random.between(2, 20);
  scenario.sim.max_delay_us = scenario.sim.min_delay_us + random.between(0, 60);
  scenario.sim.torn_write_per_million = static_cast<std::uint32_t>(random.between(0, 20'000));
  scenario.sim.partition_timeout_us = 20'000;
  VcOptions& options = scenario.options;
  options.nodes = random.between(3, 7);
  std::uint64_t replicas = random.below(2) == 0 ? options.nodes : random.between(1, options.nodes);
  options.layout = {.shards = static_cast<std::uint32_t>(random.between(1, 3)),
                    .replicas_per_shard = static_cast<std::uint32_t>(replicas)};
  options.window = static_cast<std::uint32_t>(random.between(1, 8));
  options.smc_payload_bytes = random.between(64, 256) / 8 * 8;
  options.tick_us = random.between(40, 120);
  options.persist_max_us = random.between(0, 2'000);
  options.failure_timeout_ms = 20;
  options.compact_keep = random.below(3) == 0 ? random.between(5, 40) : 0;
  if (random.below(3) == 0) {
    core::LargeMessageOptions large;
    large.block_size_bytes = random.between(16, 512);
    large.max_payload_bytes = options.smc_payload_bytes + random.between(1, 4'000);
    large.window = static_cast<std::uint32_t>(random.between(1, 4));
    large.algorithm = static_cast<rdmc::Algorithm>(random.below(4));
    options.large = large;
    options.large_percent = static_cast<std::uint32_t>(random.between(1, 50));
  }
  return scenario;
}

std::pair<std::uint64_t, std::uint64_t> seed_range(std::uint64_t full) {
  if (const char* only = std::getenv("SQUALL_SIM_SEED")) {
    std::uint64_t seed = std::stoull(only);
    return {seed, seed};
  }
  return {1, testing::seed_count(full)};
}

std::string stops(VcCluster& cluster) {
  std::string out;
  for (const auto& node : cluster.nodes) {
    if (node->stop_reason) out += fmt::format("node {}: {}\n", node->id, *node->stop_reason);
  }
  return out;
}

void require_ok(VcCluster& cluster, const Scenario& scenario, bool final_check) {
  std::vector<std::string> problems = cluster.check(final_check);
  INFO(scenario.describe() << "\nreplay: SQUALL_SIM_SEED=" << scenario.sim.seed);
  INFO(stops(cluster));
  std::string all;
  for (const auto& problem : problems) all += problem + "\n";
  INFO(all);
  REQUIRE(problems.empty());
}

// (version, payload hash) of every update a node's replica of a shard holds, by shard.
using Held = std::map<std::uint32_t, std::vector<std::pair<Version, std::uint64_t>>>;

Held held_by(const VcNode& node) {
  Held held;
  for (const auto& [shard, machine] : node.machines) {
    for (const auto& entry : machine->log()) {
      held[shard].emplace_back(entry.version, entry.payload_hash);
    }
  }
  return held;
}

// Every update a node held durably when it came back is in the restarted history at the same
// version (unless compaction dropped that part of the reference's log).
void require_kept(VcCluster& cluster, const std::map<std::uint32_t, Held>& before,
                  const Scenario& scenario) {
  INFO(scenario.describe() << "\nreplay: SQUALL_SIM_SEED=" << scenario.sim.seed);
  for (std::uint32_t shard = 0; shard < cluster.options.layout.shards; ++shard) {
    VcNode* reference = nullptr;
    for (VcNode* node : cluster.survivors()) {
      if (!node->manager->shard_ready(ShardId{shard})) continue;
      if (reference == nullptr || node->machine(ShardId{shard}).applied_version() >
                                      reference->machine(ShardId{shard}).applied_version()) {
        reference = node;
      }
    }
    REQUIRE(reference != nullptr);
    const LogStateMachine& history = reference->machine(ShardId{shard});
    std::map<Version, std::uint64_t> by_version;
    for (const auto& entry : history.log()) by_version.emplace(entry.version, entry.payload_hash);
    for (const auto& [node, held] : before) {
      auto found = held.find(shard);
      if (found == held.end()) continue;
      for (const auto& [version, hash] : found->second) {
        if (version <= history.base_version()) continue;
        INFO("node " << node << " shard " << shard << " version " << version);
        REQUIRE(by_version.contains(version));
        REQUIRE(by_version.at(version) == hash);
      }
    }
  }
}

struct Totals {
  std::uint64_t runs = 0;
  std::uint64_t down = 0;
  std::uint64_t transfers = 0;
  std::uint64_t updates_kept = 0;
};

}  // namespace

TEST_CASE("total restart: every node crashes mid-workload, a quorum restarts from its logs") {
  auto [first, last] = seed_range(40);
  Totals totals;
  for (std::uint64_t seed = first; seed <= last; ++seed) {
    Scenario scenario = draw(seed);
    fabric::SimRandom random(seed * 104'729 + 7);
    VcCluster cluster(scenario.sim, scenario.options);
    std::size_t nodes = scenario.options.nodes;
    cluster.run_for(random.between(3'000, 20'000));
    if (random.below(2) == 0 && nodes >= 3) {
      // One member fails first; the total crash often lands inside the view change.
      cluster.crash(NodeId{static_cast<std::uint32_t>(random.between(1, nodes))},
                    fabric::CrashDetection::silent);
      cluster.run_for(random.between(0, 40'000));
    }
    cluster.crash_all();
    cluster.run_for(1'000);
    // Some nodes stay down; more come back until the plan has a quorum of every shard.
    std::vector<NodeId> order;
    for (std::uint32_t id = 1; id <= nodes; ++id) order.push_back(NodeId{id});
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[random.below(i)]);
    std::size_t count = nodes - random.between(0, (nodes - 1) / 2);
    Result<core::RestartPlan> plan = unavailable("not tried");
    std::map<std::uint32_t, Held> held;
    for (; count <= nodes; ++count) {
      std::vector<NodeId> back(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(count));
      plan = cluster.restart_from_disks(back);
      if (plan) break;
      INFO(scenario.describe() << ": " << plan.status().to_string());
      REQUIRE(plan.status().code() == Code::unavailable);
    }
    INFO(scenario.describe() << "\nreplay: SQUALL_SIM_SEED=" << seed);
    REQUIRE(plan.is_ok());
    for (const core::Member& member : plan->view.members()) {
      held[member.id.value] = held_by(*cluster.nodes[member.id.value - 1]);
    }
    cluster.run_for(150'000);
    require_ok(cluster, scenario, false);
    cluster.stop_workload();
    cluster.run_for(60'000);
    require_ok(cluster, scenario, true);
    require_kept(cluster, held, scenario);
    INFO(stops(cluster));
    REQUIRE(cluster.survivors().size() == plan->view.size());
    ++totals.runs;
    totals.down += nodes - plan->view.size();
    for (VcNode* node : cluster.survivors()) {
      totals.transfers += node->manager->transfers_completed();
      for (const auto& [node_id, by_shard] : held) {
        if (node_id != node->id.value) continue;
        for (const auto& [shard, entries] : by_shard) totals.updates_kept += entries.size();
      }
    }
  }
  std::printf("total restarts: %llu seeds, %llu nodes left down, %llu transfers in final "
              "views, %llu durable updates held by restarted nodes kept\n",
              static_cast<unsigned long long>(totals.runs),
              static_cast<unsigned long long>(totals.down),
              static_cast<unsigned long long>(totals.transfers),
              static_cast<unsigned long long>(totals.updates_kept));
}
