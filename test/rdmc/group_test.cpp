// The RDMC engine on the simulated fabric: every byte intact at every receiver for random
// sizes, all algorithms, group sizes 2-7, many seeds with random delays; failures abandon
// transfers and are reported without hangs.
#include <catch2/catch.hpp>

#include "test/seeds.hpp"

#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "fabric/sim_random.hpp"
#include "test/rdmc/cluster.hpp"

using namespace squall;
using namespace squall::rdmc;
using namespace squall::rdmc::test;

namespace {

constexpr std::uint64_t kMaxSteps = 5'000'000;

struct Scenario {
  ClusterOptions cluster;
  fabric::SimOptions sim;
  std::vector<std::vector<Bytes>> messages;  // per member (index 0 = node 1)
};

std::uint64_t pick_size(fabric::SimRandom& random, const ClusterOptions& cluster) {
  const std::uint64_t block = cluster.block_size_bytes;
  const std::uint64_t max = cluster.max_payload_bytes;
  switch (random.below(6)) {
    case 0: return 1;
    case 1: return std::min(block, max);
    case 2: return std::min(block + 1, max);
    case 3: return max;
    default: return random.between(1, max);
  }
}

// Random tunables: block size, payload limit, window, delays, queue depth, torn writes,
// late source reads.
Scenario random_scenario(Algorithm algorithm, std::uint32_t members, std::uint64_t seed) {
  fabric::SimRandom random(seed * 131 + members * 7 + static_cast<std::uint64_t>(algorithm));
  Scenario scenario;
  ClusterOptions& cluster = scenario.cluster;
  cluster.members = members;
  cluster.algorithm = algorithm;
  constexpr std::uint64_t kBlockSizes[] = {1, 3, 64, 100, 512, 4096};
  cluster.block_size_bytes = kBlockSizes[random.below(std::size(kBlockSizes))];
  cluster.max_payload_bytes =
      cluster.block_size_bytes * random.between(1, 12) + random.below(cluster.block_size_bytes);
  cluster.window = static_cast<std::uint32_t>(random.between(1, 3));
  fabric::SimOptions& sim = scenario.sim;
  sim.seed = seed;
  sim.min_delay_us = 1;
  sim.max_delay_us = random.between(1, 400);
  sim.bytes_per_us = random.below(2) == 0 ? 0 : 1'000;
  sim.send_queue_depth = random.below(3) == 0 ? 4 : 256;
  sim.delay_spike_per_million = random.below(3) == 0 ? 20'000 : 0;
  sim.torn_write_per_million = random.below(3) == 0 ? 100'000 : 0;
  // Writes that read their source late catch a slot reused before its writes completed.
  sim.late_read_per_million = random.below(2) == 0 ? 500'000 : 0;
  scenario.messages.resize(members);
  for (std::uint32_t m = 0; m < members; ++m) {
    const std::uint64_t count = m == 0 ? random.between(1, 4) : random.below(4);
    for (std::uint64_t k = 0; k < count; ++k) {
      const std::uint64_t size = pick_size(random, cluster);
      scenario.messages[m].push_back(pattern(seed * 1000 + m * 100 + k, size));
    }
  }
  return scenario;
}

std::unique_ptr<Cluster> start(const Scenario& scenario) {
  auto cluster = std::make_unique<Cluster>(scenario.cluster, scenario.sim);
  for (std::uint32_t m = 0; m < cluster->size(); ++m) {
    for (const Bytes& message : scenario.messages[m]) {
      cluster->member(m + 1).to_send.push_back(message);
    }
  }
  return cluster;
}

// Every member received every other member's messages, in order, byte for byte; every sender
// saw each of its messages leave; nothing is left in flight. "" or the first problem.
std::string check_all_delivered(Cluster& cluster, const Scenario& scenario) {
  for (std::uint32_t r = 1; r <= cluster.size(); ++r) {
    Member& receiver = cluster.member(r);
    if (!receiver.failures.empty()) return fmt::format("node {} failed", r);
    if (receiver.group->messages_in_flight() != 0) return fmt::format("node {} busy", r);
    std::vector<std::uint64_t> sent = receiver.sent;
    std::sort(sent.begin(), sent.end());
    if (sent.size() != scenario.messages[r - 1].size()) return fmt::format("node {} sent", r);
    for (std::uint64_t k = 0; k < sent.size(); ++k) {
      if (sent[k] != k) return fmt::format("node {} sent seq {}", r, sent[k]);
    }
    std::vector<std::uint64_t> next(cluster.size() + 1, 0);
    for (const Delivery& delivery : receiver.deliveries) {
      const std::uint32_t s = delivery.sender.value;
      if (s == r || delivery.seq != next[s]) return fmt::format("node {} order from {}", r, s);
      if (delivery.payload != scenario.messages[s - 1][delivery.seq]) {
        return fmt::format("node {}: bytes of seq {} from {} differ", r, delivery.seq, s);
      }
      ++next[s];
    }
    for (std::uint32_t s = 1; s <= cluster.size(); ++s) {
      if (s != r && next[s] != scenario.messages[s - 1].size()) {
        return fmt::format("node {} got {} of {} messages from {}", r, next[s],
                           scenario.messages[s - 1].size(), s);
      }
    }
  }
  return "";
}

void run_many_seeds(Algorithm algorithm, std::uint64_t seeds) {
  std::uint64_t runs = 0;
  std::uint64_t deliveries = 0;
  std::uint64_t bytes = 0;
  std::uint64_t steps = 0;
  for (std::uint32_t members = 2; members <= 7; ++members) {
    for (std::uint64_t seed = 1; seed <= squall::testing::seed_count(seeds); ++seed) {
      const Scenario scenario = random_scenario(algorithm, members, seed);
      auto cluster = start(scenario);
      const bool idle = cluster->run(kMaxSteps);
      const std::string where = fmt::format("{} n={} seed={}", algorithm_name(algorithm),
                                            members, seed);
      if (!idle) FAIL(where + ": did not finish");
      const std::string error = check_all_delivered(*cluster, scenario);
      if (!error.empty()) FAIL(where + ": " + error);
      ++runs;
      for (std::uint32_t m = 1; m <= cluster->size(); ++m) {
        deliveries += cluster->member(m).deliveries.size();
        for (const auto& d : cluster->member(m).deliveries) bytes += d.payload.size();
      }
      steps += cluster->network().stats().steps;
    }
  }
  SUCCEED(fmt::format("{} runs, {} deliveries, {} bytes, {} network steps", runs, deliveries,
                      bytes, steps));
}

}  // namespace

TEST_CASE("engine: binomial pipeline delivers every byte, sizes 2-7, many seeds") {
  run_many_seeds(Algorithm::binomial_pipeline, 150);
}

TEST_CASE("engine: chain delivers every byte, sizes 2-7, many seeds") {
  run_many_seeds(Algorithm::chain, 60);
}

TEST_CASE("engine: sequential delivers every byte, sizes 2-7, many seeds") {
  run_many_seeds(Algorithm::sequential, 60);
}

TEST_CASE("engine: tree delivers every byte, sizes 2-7, many seeds") {
  run_many_seeds(Algorithm::tree, 60);
}

TEST_CASE("engine: the same seed replays the same run") {
  const Scenario scenario = random_scenario(Algorithm::binomial_pipeline, 6, 99);
  std::uint64_t hashes[2] = {};
  for (auto& hash : hashes) {
    auto cluster = start(scenario);
    REQUIRE(cluster->run(kMaxSteps));
    REQUIRE(check_all_delivered(*cluster, scenario).empty());
    hash = cluster->network().trace_hash();
  }
  CHECK(hashes[0] == hashes[1]);
}

TEST_CASE("engine: realistic block sizes (16 KiB blocks, 256 KiB messages)") {
  for (const Algorithm algorithm : {Algorithm::binomial_pipeline, Algorithm::chain,
                                    Algorithm::sequential, Algorithm::tree}) {
    for (std::uint32_t members : {2U, 5U, 7U}) {
      Scenario scenario;
      scenario.cluster.members = members;
      scenario.cluster.algorithm = algorithm;
      scenario.cluster.block_size_bytes = 16 * 1024;
      scenario.cluster.max_payload_bytes = 256 * 1024;
      scenario.cluster.window = 1;
      scenario.sim.seed = members;
      scenario.sim.bytes_per_us = 1'000;
      scenario.messages.resize(members);
      scenario.messages[0] = {pattern(1, 256 * 1024), pattern(2, 100'000)};
      scenario.messages[members - 1] = {pattern(3, 16 * 1024 + 1)};
      auto cluster = start(scenario);
      REQUIRE(cluster->run(kMaxSteps));
      const std::string error = check_all_delivered(*cluster, scenario);
      if (!error.empty()) {
        FAIL(fmt::format("{} n={}: {}", algorithm_name(algorithm), members, error));
      }
    }
  }
}
