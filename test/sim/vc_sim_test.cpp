// View changes in whole simulated clusters: crashes of members and leaders (also during a
// change), partitions; survivors install the same views, deliver the same updates per view,
// never lose an acknowledged update, and keep accepting writes in the new view.
// A failure prints its seed; SQUALL_SIM_SEED=<seed> replays it.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>

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
    out << "seed " << sim.seed << ": " << options.nodes << " nodes, "
        << options.layout.shards << " shards of " << options.layout.replicas_per_shard
        << ", window " << options.window << ", slot "
        << options.smc_payload_bytes << " B, tick " << options.tick_us << " us, delays "
        << sim.min_delay_us << ".." << sim.max_delay_us << " us, large "
        << options.large_percent << "%";
    return out.str();
  }
};

Scenario draw(std::uint64_t seed) {
  fabric::SimRandom random(seed ^ 0x5643'5643ULL);
  Scenario scenario;
  scenario.sim.seed = seed;
  scenario.sim.min_delay_us = random.between(2, 20);
  scenario.sim.max_delay_us = scenario.sim.min_delay_us + random.between(0, 60);
  scenario.sim.torn_write_per_million = static_cast<std::uint32_t>(random.between(0, 20'000));
  scenario.sim.partition_timeout_us = 20'000;
  VcOptions& options = scenario.options;
  options.nodes = random.between(3, 7);
  // Half the runs: every node serves every shard. The others: 1..nodes replicas per shard,
  // so a failed replica is replaced by a spare or another member (which starts empty: state
  // transfer is later work, and the checker knows it).
  std::uint64_t replicas = random.below(2) == 0 ? options.nodes : random.between(1, options.nodes);
  options.layout = {.shards = static_cast<std::uint32_t>(random.between(1, 3)),
                    .replicas_per_shard = static_cast<std::uint32_t>(replicas)};
  options.window = static_cast<std::uint32_t>(random.between(1, 8));
  options.smc_payload_bytes = random.between(64, 256) / 8 * 8;
  options.tick_us = random.between(40, 120);
  options.persist_max_us = random.between(0, 2'000);
  options.failure_timeout_ms = 20;
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

void require_ok(VcCluster& cluster, const Scenario& scenario, bool final_check) {
  std::vector<std::string> problems = cluster.check(final_check);
  INFO(scenario.describe() << "\nreplay: SQUALL_SIM_SEED=" << scenario.sim.seed);
  std::string all;
  for (const auto& problem : problems) all += problem + "\n";
  INFO(all);
  REQUIRE(problems.empty());
}

std::pair<std::uint64_t, std::uint64_t> seed_range(std::uint64_t full) {
  if (const char* only = std::getenv("SQUALL_SIM_SEED")) {
    std::uint64_t seed = std::stoull(only);
    return {seed, seed};
  }
  return {1, testing::seed_count(full)};
}

// Crashes `count` random nodes (rank 0, the leader, more often than others) at random times.
void crash_some(VcCluster& cluster, fabric::SimRandom& random, std::size_t count,
                std::optional<NodeId> spare = std::nullopt) {
  std::vector<NodeId> dead;
  if (spare) dead.push_back(*spare);  // never crashed: it is the paused one
  while (dead.size() < count + (spare ? 1 : 0)) {
    std::uint32_t pick = random.below(3) == 0 && !cluster.survivors().empty()
                             ? cluster.survivors().front()->id.value
                             : static_cast<std::uint32_t>(random.between(1, cluster.nodes.size()));
    NodeId victim{pick};
    if (std::find(dead.begin(), dead.end(), victim) != dead.end()) continue;
    dead.push_back(victim);
    cluster.crash(victim, random.below(2) == 0 ? fabric::CrashDetection::reset
                                               : fabric::CrashDetection::silent);
    cluster.run_for(random.between(0, 30'000));  // the next may fall inside the change
  }
}

// What the seeds exercised, printed once per test (the figures in docs/core.md).
struct Totals {
  std::uint64_t runs = 0;
  std::uint64_t views = 0;
  std::uint64_t delivered = 0;
  std::uint64_t acked = 0;
  std::uint64_t leader_changes = 0;
  std::uint64_t stopped_alive = 0;  // removed or cut off while alive, then stopped
  std::uint64_t large = 0;
  std::uint64_t replacements = 0;  // replicas that joined a shard after view 1
  void add(VcCluster& cluster) {
    ++runs;
    for (const auto& each : cluster.nodes) {
      for (const auto& [shard, view] : each->first_view_of_shard) replacements += view > 1;
    }
    for (const auto& each : cluster.nodes) large += each->large_sent;
    for (const auto& each : cluster.nodes) stopped_alive += each->stop_reason && !each->crashed;
    VcNode& node = *cluster.survivors().front();
    views += node.installed_views.size() - 1;
    for (const auto& [shard, machine] : node.machines) delivered += machine->log().size();
    for (const auto& [shard, hashes] : cluster.acked) acked += hashes.size();
    for (std::size_t i = 1; i < node.installed_views.size(); ++i) {
      leader_changes += node.installed_views[i].second.front() !=
                        node.installed_views[i - 1].second.front();
    }
  }
  void print(const char* what) const {
    std::printf("%s: %llu seeds, %llu view changes (%llu with a new leader), %llu updates "
                "delivered at one survivor, %llu acknowledged, %llu live nodes stopped, %llu large "
                "updates sent, %llu replacement replicas\n", what,
                static_cast<unsigned long long>(runs), static_cast<unsigned long long>(views),
                static_cast<unsigned long long>(leader_changes),
                static_cast<unsigned long long>(delivered),
                static_cast<unsigned long long>(acked),
                static_cast<unsigned long long>(stopped_alive),
                static_cast<unsigned long long>(large),
                static_cast<unsigned long long>(replacements));
  }
};

}  // namespace

TEST_CASE("view change: a crashed member is removed and writes continue in view 2") {
  Scenario scenario = draw(1);
  scenario.options.nodes = 5;
  scenario.options.layout = {.shards = 2, .replicas_per_shard = 5};
  VcCluster cluster(scenario.sim, scenario.options);
  cluster.run_for(10'000);
  cluster.crash(NodeId{3}, fabric::CrashDetection::reset);
  cluster.run_for(150'000);
  require_ok(cluster, scenario, false);
  cluster.stop_workload();
  cluster.run_for(50'000);
  require_ok(cluster, scenario, true);
  for (VcNode* node : cluster.survivors()) {
    REQUIRE(node->installed_views.size() == 2);
    REQUIRE(node->log.last_view()->id == ViewId{2});
    REQUIRE(node->log.trims_of(ViewId{1}).size() >= 2);
  }
}

TEST_CASE("view change: random minority crashes, leaders included, many seeds") {
  auto [first, last] = seed_range(150);
  Totals totals;
  for (std::uint64_t seed = first; seed <= last; ++seed) {
    Scenario scenario = draw(seed);
    VcCluster cluster(scenario.sim, scenario.options);
    fabric::SimRandom random(seed * 31 + 7);
    cluster.run_for(random.between(2'000, 10'000));
    std::size_t budget = (scenario.options.nodes - 1) / 2;
    std::size_t crashes = random.between(1, budget);
    // A pause (SIGSTOP) of a live node, shorter or longer than the failure timeout: a long
    // one gets an alive node removed, which must then stop on its own.
    std::optional<NodeId> paused;
    if (crashes < budget && random.below(2) == 0) {
      paused = NodeId{static_cast<std::uint32_t>(random.between(1, scenario.options.nodes))};
      cluster.pause(*paused);
      cluster.run_for(random.between(0, 10'000));
    }
    crash_some(cluster, random, crashes, paused);
    if (paused) {
      cluster.run_for(random.between(0, 50'000));
      if (!cluster.nodes[paused->value - 1]->crashed) cluster.resume(*paused);
    }
    cluster.run_for(120'000);
    require_ok(cluster, scenario, false);
    cluster.stop_workload();
    cluster.run_for(30'000);
    require_ok(cluster, scenario, true);
    totals.add(cluster);
  }
  totals.print("crash runs");
}

TEST_CASE("view change: a partition stops the minority, the majority goes on, many seeds") {
  auto [first, last] = seed_range(100);
  Totals totals;
  for (std::uint64_t seed = first; seed <= last; ++seed) {
    Scenario scenario = draw(seed + 100'000);
    scenario.options.nodes = std::max<std::size_t>(scenario.options.nodes, 3);
    VcCluster cluster(scenario.sim, scenario.options);
    fabric::SimRandom random(seed * 17 + 3);
    cluster.run_for(random.between(2'000, 10'000));
    std::size_t minority = random.between(1, (scenario.options.nodes - 1) / 2);
    std::vector<NodeId> small_side;
    std::vector<NodeId> large_side;
    for (auto& node : cluster.nodes) large_side.push_back(node->id);
    while (small_side.size() < minority) {
      std::size_t at = random.below(large_side.size());
      small_side.push_back(large_side[at]);
      large_side.erase(large_side.begin() + static_cast<std::ptrdiff_t>(at));
    }
    cluster.partition(small_side, large_side);
    cluster.run_for(120'000);
    cluster.stop_workload();
    cluster.run_for(30'000);
    INFO(scenario.describe() << "\nreplay: SQUALL_SIM_SEED=" << seed);
    for (NodeId node : small_side) {
      REQUIRE(cluster.nodes[node.value - 1]->stop_reason.has_value());
    }
    REQUIRE(cluster.survivors().size() == large_side.size());
    require_ok(cluster, scenario, true);
    totals.add(cluster);
  }
  totals.print("partition runs");
}

TEST_CASE("view change: a seed replays bit for bit") {
  auto run = [](std::uint64_t seed) {
    Scenario scenario = draw(seed);
    VcCluster cluster(scenario.sim, scenario.options);
    fabric::SimRandom random(seed * 31 + 7);
    cluster.run_for(5'000);
    crash_some(cluster, random, 1);
    cluster.run_for(80'000);
    return std::pair{cluster.network.trace_hash(), cluster.survivors().front()->installed_views};
  };
  for (std::uint64_t seed : {3ULL, 4ULL}) {
    auto first = run(seed);
    auto second = run(seed);
    INFO("seed " << seed);
    REQUIRE(first.first == second.first);
    REQUIRE(first.second == second.second);
    REQUIRE(first.second.size() == 2);
  }
}
