// Joins, leaves and state transfer in whole simulated clusters: start-up bursts, joins into
// running clusters with crashes of the leader (queued joiners), of joiners and of sources
// during the transfer, graceful leaves (the leader's too). Checked: views agree, joiners appear
// only after asking, nothing is delivered before the state is installed, every replica's log
// equals the history, acknowledged updates survive, and after the faults the cluster converges
// to one view with every live node that asked to join. SQUALL_SIM_SEED=<seed> replays a seed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
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
    out << "seed " << sim.seed << ": " << options.nodes << " nodes + " << options.joiners
        << " joiners, " << options.layout.shards << " shards of "
        << options.layout.replicas_per_shard << ", window " << options.window << ", slot "
        << options.smc_payload_bytes << " B, large " << options.large_percent
        << "%, compact " << options.compact_keep;
    return out.str();
  }
};

Scenario draw(std::uint64_t seed, std::size_t nodes, std::size_t joiners) {
  fabric::SimRandom random(seed ^ 0x4A4F'494EULL);
  Scenario scenario;
  scenario.sim.seed = seed;
  scenario.sim.min_delay_us = random.between(2, 20);
  scenario.sim.max_delay_us = scenario.sim.min_delay_us + random.between(0, 60);
  scenario.sim.torn_write_per_million = static_cast<std::uint32_t>(random.between(0, 20'000));
  scenario.sim.partition_timeout_us = 20'000;
  VcOptions& options = scenario.options;
  options.nodes = nodes;
  options.joiners = joiners;
  std::uint64_t total = nodes + joiners;
  std::uint64_t replicas = random.below(2) == 0 ? total : random.between(1, total);
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

void require_ok(VcCluster& cluster, const Scenario& scenario, bool final_check) {
  std::vector<std::string> problems = cluster.check(final_check);
  INFO(scenario.describe() << "\nreplay: SQUALL_SIM_SEED=" << scenario.sim.seed);
  std::string all;
  for (const auto& problem : problems) all += problem + "\n";
  INFO(all);
  REQUIRE(problems.empty());
}

struct Totals {
  std::uint64_t runs = 0;
  std::uint64_t views = 0;
  std::uint64_t transfers = 0;
  std::uint64_t transfer_bytes = 0;
  std::uint64_t checkpoints = 0;
  std::uint64_t rejoins = 0;
  void add(VcCluster& cluster) {
    ++runs;
    for (const auto& node : cluster.nodes) {
      if (node->manager) transfers += node->manager->transfers_completed();
      if (node->manager) transfer_bytes += node->manager->transfer_bytes();
      for (const auto& [shard, machine] : node->machines) checkpoints += machine->installs();
      rejoins += node->incarnations > 1 ? node->incarnations - 1 : 0;
    }
    views += cluster.survivors().front()->installed_views.back().first - 1;
  }
  void print(const char* what) const {
    std::printf("%s: %llu seeds, %llu views, %llu transfers in final views (%llu bytes), %llu "
                "installs, %llu incarnations after the first\n", what,
                static_cast<unsigned long long>(runs), static_cast<unsigned long long>(views),
                static_cast<unsigned long long>(transfers),
                static_cast<unsigned long long>(transfer_bytes),
                static_cast<unsigned long long>(checkpoints),
                static_cast<unsigned long long>(rejoins));
  }
};

void finish(VcCluster& cluster, const Scenario& scenario) {
  cluster.run_for(150'000);
  require_ok(cluster, scenario, false);
  cluster.stop_workload();
  cluster.run_for(60'000);
  require_ok(cluster, scenario, true);
  INFO(scenario.describe() << "\nreplay: SQUALL_SIM_SEED=" << scenario.sim.seed);
  std::string stops;
  for (const auto& node : cluster.nodes) {
    if (node->stop_reason) stops += fmt::format("node {}: {}\n", node->id, *node->stop_reason);
  }
  INFO(stops);
  REQUIRE_FALSE(cluster.survivors().empty());
}

}  // namespace

TEST_CASE("joins: one joiner gets the state and then delivers with the others") {
  Scenario scenario = draw(1, 3, 1);
  scenario.options.layout = {.shards = 2, .replicas_per_shard = 4};
  VcCluster cluster(scenario.sim, scenario.options);
  cluster.run_for(20'000);
  cluster.request_join(NodeId{4});
  finish(cluster, scenario);
  VcNode& joiner = *cluster.nodes[3];
  REQUIRE(joiner.manager != nullptr);
  REQUIRE(joiner.manager->view().size() == 4);
  REQUIRE(joiner.manager->transfers_completed() == 2);
  for (ShardId shard : {ShardId{0}, ShardId{1}}) {
    REQUIRE(joiner.machine(shard).applied_version() ==
            cluster.nodes[0]->machine(shard).applied_version());
    REQUIRE(joiner.machine(shard).checksum() == cluster.nodes[0]->machine(shard).checksum());
  }
}

TEST_CASE("joins: a start-up burst (founder + 6 joiners) is admitted in few views") {
  auto [first, last] = seed_range(30);
  Totals totals;
  for (std::uint64_t seed = first; seed <= last; ++seed) {
    Scenario scenario = draw(seed, 1, 6);
    VcCluster cluster(scenario.sim, scenario.options);
    cluster.run_for(3'000);
    for (std::uint32_t id = 2; id <= 7; ++id) cluster.request_join(NodeId{id});
    finish(cluster, scenario);
    INFO(scenario.describe());
    REQUIRE(cluster.survivors().size() == 7);
    REQUIRE(cluster.survivors().front()->installed_views.back().first <= 4);
    totals.add(cluster);
  }
  totals.print("start-up bursts");
}

// Faults among the original members and the joiners, at most a minority of the first view
// in all: leader crashes right after admitting joiners (which then never get their view:
// regression for the majority rule counting them), graceful leaves, joiner crashes during
// their state transfer, source crashes.
TEST_CASE("joins and leaves under faults: leader, joiner and source crashes, many seeds") {
  auto [first, last] = seed_range(60);
  Totals totals;
  for (std::uint64_t seed = first; seed <= last; ++seed) {
    fabric::SimRandom random(seed * 7919 + 13);
    std::size_t nodes = random.between(3, 5);
    std::size_t joiners = random.between(1, 4);
    Scenario scenario = draw(seed + 50'000, nodes, joiners);
    scenario.sim.seed = seed;
    VcCluster cluster(scenario.sim, scenario.options);
    cluster.run_for(random.between(3'000, 15'000));
    std::size_t budget = (nodes - 1) / 2;  // faults among the original members
    for (std::size_t j = 0; j < joiners; ++j) {
      cluster.request_join(NodeId{static_cast<std::uint32_t>(nodes + 1 + j)});
      if (random.below(2) == 0) cluster.run_for(random.between(0, 4'000));
    }
    std::vector<std::uint32_t> touched;
    for (std::size_t fault = 0; fault < budget; ++fault) {
      cluster.run_for(random.between(0, 8'000));  // often inside a change or a transfer
      std::vector<VcNode*> alive = cluster.survivors();
      VcNode* victim = random.below(2) == 0 ? alive.front()  // the leader, often
                                            : alive[random.below(alive.size())];
      if (victim->id.value > nodes ||
          std::find(touched.begin(), touched.end(), victim->id.value) != touched.end()) {
        continue;
      }
      touched.push_back(victim->id.value);
      if (random.below(3) == 0) {
        victim->manager->request_removal(victim->id, "graceful leave");
      } else {
        cluster.crash(victim->id, random.below(2) == 0 ? fabric::CrashDetection::reset
                                                       : fabric::CrashDetection::silent);
      }
    }
    // A joiner crashing, maybe during its state transfer: within the same fault budget (it
    // may fail in the same view as the others, and once heard from it votes).
    if (random.below(2) == 0 && touched.size() < budget) {
      cluster.run_for(random.between(0, 5'000));
      auto id = static_cast<std::uint32_t>(nodes + 1 + random.below(joiners));
      cluster.crash(NodeId{id}, fabric::CrashDetection::silent);
    }
    finish(cluster, scenario);
    totals.add(cluster);
  }
  totals.print("joins under faults");
}

TEST_CASE("joins during a view change, and a source crash during the joiner's transfer") {
  auto [first, last] = seed_range(12);
  std::size_t mid_change = 0;
  std::size_t mid_transfer = 0;
  for (std::uint64_t seed = first; seed <= last; ++seed) {
    Scenario scenario = draw(seed + 70'000, 5, 2);
    scenario.sim.seed = seed;
    scenario.options.layout = {.shards = 2, .replicas_per_shard = 5};
    scenario.options.compact_keep = 0;
    VcCluster cluster(scenario.sim, scenario.options);
    cluster.run_for(10'000);
    // A member crashes; the joins arrive while the change is under way.
    cluster.crash(NodeId{5}, fabric::CrashDetection::silent);
    auto changing = [&cluster] {
      return std::any_of(cluster.nodes.begin(), cluster.nodes.begin() + 4, [](const auto& node) {
        return node->manager->state() == core::ViewManagerState::changing;
      });
    };
    for (int step = 0; step < 400 && !changing(); ++step) cluster.run_for(100);
    mid_change += changing() ? 1 : 0;
    cluster.request_join(NodeId{6});
    cluster.request_join(NodeId{7});
    // Then the first source of the joiners' shards crashes as soon as a joiner is pulling.
    VcNode& joiner = *cluster.nodes[5];
    for (int step = 0; step < 400; ++step) {
      cluster.run_for(100);
      if (joiner.manager && !joiner.manager->shard_ready(ShardId{0})) break;
    }
    if (joiner.manager && !joiner.manager->shard_ready(ShardId{0})) {
      ++mid_transfer;
      NodeId source = joiner.manager->view().shard_members(ShardId{0}).front();
      cluster.crash(source, fabric::CrashDetection::silent);
    }
    finish(cluster, scenario);
    INFO(scenario.describe());
    REQUIRE(cluster.survivors().size() >= 5);
  }
  std::printf("joins during a change: %zu of %zu seeds saw the change under way, %zu crashed "
              "the source mid-transfer\n", mid_change, static_cast<std::size_t>(last - first + 1),
              mid_transfer);
  if (last > first) {
    REQUIRE(mid_change > 0);
    REQUIRE(mid_transfer > 0);
  }
}
