// SST, SMC and failure detection on the deterministic simulator, over many seeds.
#include <catch2/catch.hpp>

#include "sst_sim_harness.hpp"
#include "test/seeds.hpp"

using namespace squall;
using namespace squall::sst;
using namespace squall::sst::testing;

namespace {

constexpr std::uint64_t kMessagesPerSender = 40;

fabric::SimOptions random_sim_options(std::uint64_t seed) {
  fabric::SimOptions options;
  options.seed = seed;
  fabric::SimRandom random(seed ^ 0xabcdefULL);
  options.min_delay_us = random.between(1, 20);
  options.max_delay_us = options.min_delay_us + random.between(0, 300);
  options.send_queue_depth = random.between(2, 32);  // small queues exercise pending pushes
  options.torn_write_per_million = static_cast<std::uint32_t>(random.below(200'000));
  options.delay_spike_per_million = static_cast<std::uint32_t>(random.below(20'000));
  options.delay_spike_us = 2'000;
  return options;
}

HarnessOptions random_group_options(std::uint64_t seed) {
  fabric::SimRandom random(seed ^ 0x123456ULL);
  HarnessOptions options;
  options.members = random.between(2, 5);
  options.window = random.between(1, 8);
  options.payload_bytes = random.between(1, 12) * 8;
  options.failure_timeout_ms = 50;  // far above any injected delay: no false suspicion
  return options;
}

void fill_outboxes(SimGroup& group, std::uint64_t seed, std::uint64_t count) {
  for (std::size_t rank = 0; rank < group.members.size(); ++rank) {
    for (std::uint64_t index = 0; index < count; ++index) {
      group.member(rank).outbox.push_back(
          message_content(seed, rank, index, group.options.payload_bytes));
    }
  }
}

// Every delivery from `sender` at `receiver` is the sender's message of that index, in order.
void check_in_order_intact(SimGroup& group, std::uint64_t seed, std::size_t receiver,
                           std::size_t sender) {
  const auto& got = group.member(receiver).delivered[sender];
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("seed " << seed << " receiver " << receiver << " sender " << sender << " #" << i);
    REQUIRE(got[i].index == i);
    REQUIRE(got[i].payload == message_content(seed, sender, i, group.options.payload_bytes));
  }
}

}  // namespace

TEST_CASE("SMC delivers every message in order exactly once per sender (2000 seeds)") {
  for (std::uint64_t seed = 1; seed <= squall::testing::seed_count(2000); ++seed) {
    SimGroup group(random_sim_options(seed), random_group_options(seed));
    fill_outboxes(group, seed, kMessagesPerSender);
    group.run_for(200'000);
    for (std::size_t receiver = 0; receiver < group.members.size(); ++receiver) {
      INFO("seed " << seed);
      REQUIRE(group.member(receiver).suspected_at_us.empty());
      REQUIRE(group.member(receiver).faults.empty());
      for (std::size_t sender = 0; sender < group.members.size(); ++sender) {
        check_in_order_intact(group, seed, receiver, sender);
        REQUIRE(group.member(receiver).delivered[sender].size() == kMessagesPerSender);
      }
    }
  }
}

TEST_CASE("SMC survivors stay in order and finish after a member crashes (500 seeds)") {
  for (std::uint64_t seed = 1; seed <= squall::testing::seed_count(500); ++seed) {
    HarnessOptions options = random_group_options(seed);
    options.members = std::max<std::size_t>(options.members, 3);
    SimGroup group(random_sim_options(seed), options);
    fill_outboxes(group, seed, kMessagesPerSender);
    std::size_t victim = group.network.random().below(options.members);
    group.run_for(group.network.random().between(100, 3'000));
    group.network.crash(group.ids[victim],
                        seed % 2 ? fabric::CrashDetection::reset : fabric::CrashDetection::silent);
    group.run_for(400'000);
    for (std::size_t receiver = 0; receiver < options.members; ++receiver) {
      if (receiver == victim) continue;
      INFO("seed " << seed << " victim " << victim << " receiver " << receiver);
      REQUIRE(group.member(receiver).suspected_at_us.count(victim) == 1);
      for (std::size_t sender = 0; sender < options.members; ++sender) {
        check_in_order_intact(group, seed, receiver, sender);
        if (sender != victim) {
          REQUIRE(group.member(receiver).delivered[sender].size() == kMessagesPerSender);
        }
      }
    }
  }
}

TEST_CASE("A silently crashed member is suspected within the failure timeout (1000 seeds)") {
  for (std::uint64_t seed = 1; seed <= squall::testing::seed_count(1000); ++seed) {
    HarnessOptions options;
    options.members = 3 + seed % 3;
    options.heartbeat_ms = 1 + seed % 3;
    options.failure_timeout_ms = options.heartbeat_ms * (3 + seed % 5);
    fabric::SimOptions sim = random_sim_options(seed);
    sim.delay_spike_per_million = 0;
    sim.max_delay_us = std::min<std::uint64_t>(sim.max_delay_us, 200);
    SimGroup group(sim, options);
    group.run_for(group.network.random().between(20'000, 40'000));
    std::size_t victim = group.network.random().below(options.members);
    std::uint64_t crash_us = group.network.now_us();
    group.network.crash(group.ids[victim], fabric::CrashDetection::silent);
    group.run_for(options.failure_timeout_ms * 4'000);
    // Bound: the last heartbeat seen may be up to one heartbeat period + one link delay old,
    // and the check runs on the next tick.
    std::uint64_t bound_us = options.failure_timeout_ms * 1000 + options.heartbeat_ms * 1000 +
                             sim.max_delay_us + 2 * options.tick_us;
    for (std::size_t rank = 0; rank < options.members; ++rank) {
      if (rank == victim) continue;
      const auto& suspected = group.member(rank).suspected_at_us;
      INFO("seed " << seed << " observer " << rank << " victim " << victim);
      REQUIRE(suspected.size() == 1);
      REQUIRE(suspected.count(victim) == 1);
      REQUIRE(suspected.at(victim) - crash_us <= bound_us);
    }
  }
}

TEST_CASE("A pause shorter than the timeout is tolerated, a longer one is suspected") {
  for (bool long_pause : {false, true}) {
    HarnessOptions options;
    options.heartbeat_ms = 1;
    options.failure_timeout_ms = 20;
    fabric::SimOptions sim;
    sim.seed = 7;
    SimGroup group(sim, options);
    group.run_for(10'000);
    group.network.pause(group.ids[2]);
    group.run_for(long_pause ? 60'000 : 10'000);
    group.network.resume(group.ids[2]);
    group.run_for(30'000);
    CHECK(group.member(0).suspected_at_us.count(2) == (long_pause ? 1U : 0U));
    CHECK(group.member(1).suspected_at_us.count(2) == (long_pause ? 1U : 0U));
  }
}

TEST_CASE("Suspicion spreads through the table to members that did not see the failure") {
  HarnessOptions options;
  options.members = 4;
  fabric::SimOptions sim;
  sim.seed = 11;
  SimGroup group(sim, options);
  group.run_for(5'000);
  group.member(0).detector->suspect(3, "test: operator decision");
  group.run_for(2'000);  // far less than the failure timeout
  for (std::size_t rank = 1; rank < 3; ++rank) {
    REQUIRE(group.member(rank).suspected_at_us.count(3) == 1);
  }
}

TEST_CASE("A member writing an impossible SMC slot is reported, not trusted") {
  HarnessOptions options;
  SimGroup group(fabric::SimOptions{}, options);
  group.run_for(5'000);
  SimMember& liar = group.member(1);
  // Forge slot 0 with a size beyond the payload and advance the sent counter directly.
  std::uint32_t bogus = 1'000'000;
  auto slot = liar.table->mutable_row_span({liar.smc_fields.slots.offset, 8});
  std::memcpy(slot.data(), &bogus, sizeof(bogus));
  liar.table->push({liar.smc_fields.slots.offset, 8});
  liar.table->write(liar.smc_fields.sent, std::uint64_t{1});
  liar.table->push(liar.smc_fields.sent.range());
  group.run_for(5'000);
  for (std::size_t rank : {0U, 2U}) {
    CHECK(group.member(rank).faults.size() == 1);
    CHECK(group.member(rank).suspected_at_us.count(1) == 1);
    CHECK(group.member(rank).delivered[1].empty());
  }
}

TEST_CASE("A stopped member whose writes never complete does not hold up healthy members") {
  // Regression: staging was one ring freed oldest first, so chunks still owed to a paused
  // member blocked every later push, heartbeats to healthy members included.
  HarnessOptions options;
  options.members = 4;
  options.heartbeat_ms = 1;
  options.failure_timeout_ms = 2'000;
  fabric::SimOptions sim;
  sim.seed = 5;
  SimGroup group(sim, options);
  group.run_for(10'000);
  group.network.pause(group.ids[3]);
  group.run_for(1'500'000);  // ~1,500 heartbeats owed to the paused member
  for (std::size_t rank = 0; rank < 3; ++rank) {
    INFO("observer " << rank);
    CHECK(group.member(rank).suspected_at_us.empty());
  }
  group.network.resume(group.ids[3]);
  group.run_for(50'000);
  for (std::size_t rank = 0; rank < 4; ++rank) CHECK(group.member(rank).suspected_at_us.empty());
  // And the group still carries messages afterwards.
  fill_outboxes(group, 5, 10);
  group.run_for(100'000);
  for (std::size_t rank = 0; rank < 4; ++rank) {
    for (std::size_t sender = 0; sender < 4; ++sender) {
      check_in_order_intact(group, 5, rank, sender);
      CHECK(group.member(rank).delivered[sender].size() == 10);
    }
  }
}
