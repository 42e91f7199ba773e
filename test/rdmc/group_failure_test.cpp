// The RDMC engine under failures, protocol violations and API misuse.
#include <catch2/catch.hpp>

#include "test/seeds.hpp"

#include <fmt/format.h>

#include "fabric/sim_random.hpp"
#include "rdmc/wire.hpp"
#include "test/rdmc/cluster.hpp"

using namespace squall;
using namespace squall::rdmc;
using namespace squall::rdmc::test;

namespace {

constexpr std::uint64_t kMaxSteps = 5'000'000;

// Every delivery a member made carries exactly the bytes its sender sent.
bool deliveries_intact(Cluster& cluster, std::uint32_t id) {
  for (const Delivery& delivery : cluster.member(id).deliveries) {
    const Member& sender = cluster.member(delivery.sender.value);
    if (delivery.seq >= sender.sent_payloads.size()) return false;
    if (delivery.payload != sender.sent_payloads[delivery.seq]) return false;
  }
  return true;
}

// After a failure of `victim`, each survivor reported it exactly once and stopped.
std::string check_survivors(Cluster& cluster, std::uint32_t victim) {
  for (std::uint32_t id = 1; id <= cluster.size(); ++id) {
    if (id == victim) continue;
    Member& member = cluster.member(id);
    if (member.failures.size() != 1 || member.failures[0].first != NodeId{victim}) {
      return fmt::format("node {}: {} failure reports", id, member.failures.size());
    }
    if (!member.group->failed() || member.group->messages_in_flight() != 0) {
      return fmt::format("node {} still active", id);
    }
    if (member.group->send(pattern(1, 10)).status().code() != Code::unavailable) {
      return fmt::format("node {} still accepts sends", id);
    }
    if (!deliveries_intact(cluster, id)) return fmt::format("node {}: corrupt delivery", id);
  }
  return "";
}

struct CrashCase {
  ClusterOptions cluster;
  fabric::SimOptions sim;
  std::uint32_t victim = 1;
  std::uint64_t crash_after_steps = 0;
};

CrashCase random_crash(std::uint64_t seed, fabric::CrashDetection detection) {
  fabric::SimRandom random(seed);
  CrashCase crash;
  crash.cluster.members = static_cast<std::uint32_t>(random.between(3, 7));
  crash.cluster.algorithm = static_cast<Algorithm>(random.below(4));
  crash.cluster.block_size_bytes = 64;
  crash.cluster.max_payload_bytes = 1000;
  crash.cluster.window = 2;
  crash.sim.seed = seed;
  crash.sim.min_delay_us = 1;
  crash.sim.max_delay_us = random.between(1, 300);
  crash.sim.crash_detection = detection;
  crash.victim = static_cast<std::uint32_t>(random.between(1, crash.cluster.members));
  crash.crash_after_steps = random.below(300);
  return crash;
}

std::unique_ptr<Cluster> start_crash_case(const CrashCase& crash, std::uint64_t seed) {
  auto cluster = std::make_unique<Cluster>(crash.cluster, crash.sim);
  for (std::uint32_t id = 1; id <= cluster->size(); ++id) {
    for (std::uint64_t k = 0; k < 3; ++k) {
      cluster->member(id).to_send.push_back(pattern(seed * 10 + id * 3 + k, 200 + 300 * k));
    }
  }
  cluster->run_steps(crash.crash_after_steps);
  cluster->network().crash(NodeId{crash.victim});
  return cluster;
}

}  // namespace

TEST_CASE("engine: a member crashing mid-transfer fails the group everywhere, no hang") {
  for (std::uint64_t seed = 1; seed <= squall::testing::seed_count(300); ++seed) {
    const CrashCase crash = random_crash(seed, fabric::CrashDetection::reset);
    auto cluster = start_crash_case(crash, seed);
    const std::string where = fmt::format("seed {} n={} victim {} after {} steps", seed,
                                          crash.cluster.members, crash.victim,
                                          crash.crash_after_steps);
    if (!cluster->run(kMaxSteps)) FAIL(where + ": hang");
    const std::string error = check_survivors(*cluster, crash.victim);
    if (!error.empty()) FAIL(where + ": " + error);
  }
}

TEST_CASE("engine: a silent crash fails the group once the owner removes the peer") {
  for (std::uint64_t seed = 1; seed <= squall::testing::seed_count(100); ++seed) {
    const CrashCase crash = random_crash(seed, fabric::CrashDetection::silent);
    auto cluster = start_crash_case(crash, seed);
    const std::string where = fmt::format("seed {} victim {}", seed, crash.victim);
    if (!cluster->run(kMaxSteps)) FAIL(where + ": hang");
    // What the heartbeat failure detector does: survivors drop the silent member.
    for (std::uint32_t id = 1; id <= cluster->size(); ++id) {
      if (id != crash.victim) cluster->network().node(NodeId{id}).remove_peer(NodeId{crash.victim});
    }
    if (!cluster->run(kMaxSteps)) FAIL(where + ": hang after removal");
    const std::string error = check_survivors(*cluster, crash.victim);
    if (!error.empty()) FAIL(where + ": " + error);
  }
}

TEST_CASE("engine: a write for no announced message is a protocol error of its writer") {
  ClusterOptions options;
  Cluster cluster(options, fabric::SimOptions{});
  fabric::WriteRequest request;
  request.peer = NodeId{2};
  request.local_region = kRegion;
  request.remote_region = kRegion;
  request.length = 8;
  request.immediate = encode_immediate(BlockTag{0, 5, 0});
  REQUIRE(cluster.network().node(NodeId{1}).write(request).is_ok());
  REQUIRE(cluster.run(kMaxSteps));
  Member& victim = cluster.member(2);
  REQUIRE(victim.failures.size() == 1);
  CHECK(victim.failures[0].first == NodeId{1});
  CHECK(victim.failures[0].second.code() == Code::corruption);
  CHECK(cluster.member(3).failures.empty());
}

TEST_CASE("engine: an announce out of sequence is a protocol error of its sender") {
  ClusterOptions options;
  Cluster cluster(options, fabric::SimOptions{});
  const Bytes forged = encode_control(ControlMessage{ControlKind::announce, 3, 0, 4, 100});
  REQUIRE(cluster.network().node(NodeId{1}).send(NodeId{3}, forged).is_ok());
  const Bytes other_group = encode_control(ControlMessage{ControlKind::announce, 9, 0, 0, 100});
  REQUIRE(cluster.network().node(NodeId{1}).send(NodeId{2}, other_group).is_ok());
  REQUIRE(cluster.run(kMaxSteps));
  REQUIRE(cluster.member(3).failures.size() == 1);
  CHECK(cluster.member(3).failures[0].second.code() == Code::corruption);
  CHECK(cluster.member(2).failures.empty());  // another group's message is not ours
}

TEST_CASE("engine: send refuses empty and oversized messages and a full window") {
  ClusterOptions options;
  options.window = 2;
  Cluster cluster(options, fabric::SimOptions{});
  Group& group = *cluster.member(1).group;
  CHECK(group.send({}).status().code() == Code::invalid_argument);
  CHECK(group.send(pattern(1, options.max_payload_bytes + 1)).status().code() ==
        Code::invalid_argument);
  REQUIRE(group.send(pattern(2, options.max_payload_bytes)).is_ok());
  REQUIRE(group.send(pattern(3, 1)).is_ok());
  CHECK(group.send(pattern(4, 1)).status().code() == Code::would_block);
  REQUIRE(cluster.run(kMaxSteps));
  CHECK(cluster.member(1).sent.size() == 2);
  CHECK(cluster.member(2).deliveries.size() == 2);
  CHECK(group.send(pattern(4, 1)).is_ok());
  group.wedge();
  CHECK(group.send(pattern(5, 1)).status().code() == Code::unavailable);
}

TEST_CASE("engine: a group of one sends at once") {
  ClusterOptions options;
  options.members = 1;
  Cluster cluster(options, fabric::SimOptions{});
  REQUIRE(cluster.member(1).group->send(pattern(1, 500)).is_ok());
  CHECK(cluster.member(1).sent == std::vector<std::uint64_t>{0});
  CHECK(cluster.member(1).group->messages_in_flight() == 0);
}

TEST_CASE("engine: options are validated") {
  std::vector<std::byte> memory(4096);
  GroupOptions options;
  options.members = {NodeId{1}, NodeId{2}};
  options.block_size_bytes = 256;
  options.max_payload_bytes = 1024;
  options.window = 2;
  options.region_memory = memory;
  CHECK(options.validate().is_ok());  // 2 members x 2 slots x 1024 bytes
  GroupOptions small = options;
  small.region_memory = std::span<std::byte>(memory).first(4095);
  CHECK(small.validate().code() == Code::invalid_argument);
  GroupOptions twice = options;
  twice.members = {NodeId{1}, NodeId{1}};
  CHECK(twice.validate().code() == Code::invalid_argument);
  GroupOptions no_window = options;
  no_window.window = 0;
  CHECK(no_window.validate().code() == Code::invalid_argument);
  GroupOptions too_many_blocks = options;
  too_many_blocks.block_size_bytes = 1;
  too_many_blocks.max_payload_bytes = std::uint64_t{kMaxBlocks} + 1;
  CHECK(too_many_blocks.validate().code() == Code::invalid_argument);
  CHECK(region_bytes(3, 4, 1000, 256) == 3 * 4 * 1024);
}
