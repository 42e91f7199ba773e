// OrderedGroup on the simulated fabric: send errors, persistence waiters, wedging on
// suspicion, ragged trim, refusal by the state machine.
#include <catch2/catch.hpp>

#include "test/seeds.hpp"

#include "test/sim/checker.hpp"
#include "test/sim/cluster.hpp"

using namespace squall;
using namespace squall::core;
using namespace squall::sim;

namespace {

fabric::SimOptions quiet_network(std::uint64_t seed) {
  fabric::SimOptions options;
  options.seed = seed;
  options.min_delay_us = 5;
  options.max_delay_us = 30;
  return options;
}

ClusterOptions one_shard(std::size_t nodes) {
  ClusterOptions options;
  options.nodes = nodes;
  options.layout = {.shards = 1, .replicas_per_shard = static_cast<std::uint32_t>(nodes)};
  options.failure_timeout_ms = 20;
  return options;
}

Bytes bytes_of(std::size_t size, std::uint8_t fill) {
  return Bytes(size, static_cast<std::byte>(fill));
}

void require_no_violations(const Cluster& cluster) {
  for (const auto& violation : cluster.violations()) INFO(violation);
  REQUIRE(cluster.violations().empty());
}

}  // namespace

TEST_CASE("Options are validated") {
  fabric::SimNetwork network;
  auto& transport = network.add_node(NodeId{1});
  HybridLogicalClock hlc(network.clock());
  LogStateMachine machine(nullptr, 0, 0);
  OrderedGroupOptions options;
  options.members = {NodeId{1}, NodeId{2}};
  options.self = NodeId{1};
  options.sst_region = 1;
  auto refuse = [&](OrderedGroupOptions bad) {
    return OrderedGroup::create(std::move(bad), transport, machine, hlc).status().code();
  };
  OrderedGroupOptions bad = options;
  bad.self = NodeId{3};
  REQUIRE(refuse(bad) == Code::invalid_argument);
  bad = options;
  bad.members = {NodeId{1}, NodeId{1}};
  REQUIRE(refuse(bad) == Code::invalid_argument);
  bad = options;
  bad.window = 0;
  REQUIRE(refuse(bad) == Code::invalid_argument);
  bad = options;
  bad.smc_payload_bytes = 32;
  REQUIRE(refuse(bad) == Code::invalid_argument);
  bad = options;
  bad.failure_timeout_ms = bad.heartbeat_ms;
  REQUIRE(refuse(bad) == Code::invalid_argument);
  bad = options;
  bad.max_data_per_sender = kMaxDataPerView;  // two senders could overflow the counter
  REQUIRE(refuse(bad) == Code::invalid_argument);
  REQUIRE(OrderedGroup::create(options, transport, machine, hlc).is_ok());
}

TEST_CASE("A group of one orders, delivers and persists its own updates") {
  Cluster cluster(quiet_network(1), one_shard(1));
  Checker checker(cluster);
  Replica& replica = cluster.replica(ShardId{0}, 0);
  for (int i = 0; i < 10; ++i) replica.backlog.push_back(bytes_of(i, 1));
  cluster.run_for(5'000);
  require_no_violations(cluster);
  REQUIRE(replica.machine->log().size() == 10);
  REQUIRE(replica.group->delivered_version() == make_version(ViewId{1}, 10));
  REQUIRE(replica.group->persisted_frontier() == replica.group->delivered_version());
  REQUIRE(replica.group->stats().null_batches_sent == 0);
  checker.check_final();
  require_no_violations(cluster);
}

TEST_CASE("send() refuses oversize updates, a full queue, and an exhausted view") {
  ClusterOptions options = one_shard(2);
  options.send_queue_messages = 3;
  options.max_data_per_sender = 5;
  Cluster cluster(quiet_network(2), options);
  OrderedGroup& group = *cluster.replica(ShardId{0}, 0).group;
  std::size_t max = group.options().max_small_payload_bytes();
  REQUIRE(group.send(bytes_of(max + 1, 0)).status().code() == Code::invalid_argument);
  REQUIRE(group.send(bytes_of(max, 0)).value() == 0);
  REQUIRE(group.send(bytes_of(1, 0)).value() == 1);
  REQUIRE(group.send(bytes_of(1, 0)).value() == 2);
  REQUIRE(group.send(bytes_of(1, 0)).status().code() == Code::would_block);
  cluster.run_for(2'000);
  REQUIRE(group.send_queue_size() == 0);
  REQUIRE(group.send(bytes_of(1, 0)).value() == 3);
  REQUIRE(group.send(bytes_of(1, 0)).value() == 4);
  REQUIRE(group.send(bytes_of(1, 0)).status().code() == Code::unavailable);
  cluster.run_for(2'000);
  REQUIRE(cluster.replica(ShardId{0}, 1).machine->log().size() == 5);
}

TEST_CASE("Persistence waiters fire once every member persisted the version") {
  ClusterOptions options = one_shard(3);
  options.persist_min_us = 1'000;
  options.persist_max_us = 3'000;
  Cluster cluster(quiet_network(3), options);
  Checker checker(cluster);
  Replica& sender = cluster.replica(ShardId{0}, 1);
  for (int i = 0; i < 20; ++i) sender.backlog.push_back(bytes_of(8, 2));
  cluster.run_for(800);  // delivered, but nobody has persisted yet
  OrderedGroup& group = *sender.group;
  Version target = group.delivered_version();
  REQUIRE(target != 0);
  REQUIRE(group.persisted_frontier() < target);
  bool fired = false;
  REQUIRE(group.wait_persisted(target, [&](const Status& status) {
    REQUIRE(status.is_ok());
    REQUIRE(group.persisted_frontier() >= target);
    fired = true;
  }).is_ok());
  REQUIRE_FALSE(fired);
  cluster.run_for(10'000);
  REQUIRE(fired);
  checker.check_final();
  require_no_violations(cluster);
}

TEST_CASE("A crashed member wedges the survivors, the ragged trim makes them agree") {
  for (std::uint64_t seed = 1; seed <= squall::testing::seed_count(60); ++seed) {
    ClusterOptions options = one_shard(4);
    options.window = 3;
    Cluster cluster(quiet_network(seed), options);
    Checker checker(cluster);
    for (std::size_t rank = 0; rank < 4; ++rank) {
      for (int i = 0; i < 200; ++i) {
        auto fill = static_cast<std::uint8_t>(rank);
        cluster.replica(ShardId{0}, rank).backlog.push_back(bytes_of(4, fill));
      }
    }
    std::size_t victim = cluster.network.random().below(4);
    cluster.run_for(cluster.network.random().between(200, 3'000));
    cluster.network.crash(cluster.replica(ShardId{0}, victim).endpoint,
                          seed % 2 ? fabric::CrashDetection::reset
                                   : fabric::CrashDetection::silent);
    cluster.run_for(60'000);  // > failure timeout: everyone suspects the victim
    INFO("seed " << seed << " victim " << victim);
    std::vector<std::uint64_t> trim(4, UINT64_MAX);
    for (std::size_t rank = 0; rank < 4; ++rank) {
      if (rank == victim) continue;
      OrderedGroup& group = *cluster.replica(ShardId{0}, rank).group;
      REQUIRE(group.wedged());
      REQUIRE(group.all_wedged());
      REQUIRE(group.suspected(victim));
      REQUIRE(group.send(bytes_of(1, 0)).status().code() == Code::unavailable);
      std::vector<std::uint64_t> received = group.received_slots();
      for (std::size_t s = 0; s < 4; ++s) trim[s] = std::min(trim[s], received[s]);
    }
    std::size_t total = 0;
    for (std::size_t rank = 0; rank < 4; ++rank) {
      if (rank == victim) continue;
      OrderedGroup& group = *cluster.replica(ShardId{0}, rank).group;
      REQUIRE(group.deliver_trim(trim).is_ok());
      std::size_t delivered = cluster.replica(ShardId{0}, rank).machine->log().size();
      if (total == 0) total = delivered;
      REQUIRE(delivered == total);  // and the checker compared every delivery
    }
    require_no_violations(cluster);
  }
}

TEST_CASE("A state machine that refuses an update wedges its group and reports it") {
  Cluster cluster(quiet_network(5), one_shard(3));
  Replica& refuser = cluster.replica(ShardId{0}, 2);
  refuser.machine->refuse_version = make_version(ViewId{1}, 3);
  std::vector<std::string> trouble;
  cluster.on_trouble = [&](Replica& replica, std::optional<NodeId>, const std::string& what) {
    trouble.push_back(fmt::format("{}: {}", replica.rank, what));
  };
  for (int i = 0; i < 10; ++i) cluster.replica(ShardId{0}, 0).backlog.push_back(bytes_of(3, 7));
  cluster.run_for(5'000);
  REQUIRE(refuser.group->wedged());
  REQUIRE(refuser.machine->log().size() == 2);
  REQUIRE(trouble.size() >= 1);
  REQUIRE(trouble.front().find("2: failed: io_error") == 0);
}

TEST_CASE("Large updates travel by RDMC at their place in the total order") {
  for (std::size_t members : {1, 3, 4}) {
    ClusterOptions options = one_shard(members);
    core::LargeMessageOptions large;
    large.block_size_bytes = 100;
    large.max_payload_bytes = 5'000;
    large.window = 2;
    options.large = large;
    Cluster cluster(quiet_network(members), options);
    Checker checker(cluster);
    // Queued at once, before any member is connected: large ones wait for RDMC to start.
    for (std::size_t rank = 0; rank < members; ++rank) {
      Replica& replica = cluster.replica(ShardId{0}, rank);
      for (int i = 0; i < 30; ++i) {
        std::size_t size = i % 3 == 0 ? 200 + 97 * static_cast<std::size_t>(i) : 10;
        replica.backlog.push_back(bytes_of(size, static_cast<std::uint8_t>(i)));
      }
    }
    cluster.run_for(200'000);
    INFO(members << " members");
    REQUIRE(cluster.quiescent());
    checker.check_final();
    require_no_violations(cluster);
    for (std::size_t rank = 0; rank < members; ++rank) {
      Replica& replica = cluster.replica(ShardId{0}, rank);
      REQUIRE(replica.group->large_ready());
      REQUIRE(replica.group->stats().large_sent == 10);
      REQUIRE(replica.machine->log().size() == 30 * members);
    }
    // The largest payload made it whole.
    const auto& log = cluster.replica(ShardId{0}, 0).machine->log();
    REQUIRE(std::any_of(log.begin(), log.end(),
                        [](const auto& entry) { return entry.payload.size() == 200 + 97 * 27; }));
  }
  Cluster cluster(quiet_network(9), one_shard(2));
  REQUIRE(cluster.replica(ShardId{0}, 0).group->send(bytes_of(200, 0)).status().code() ==
          Code::invalid_argument);  // no RDMC configured: a slot is the limit
}
