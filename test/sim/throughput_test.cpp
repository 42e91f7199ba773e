// Null batches keep idle senders from slowing the order: one active sender among idle ones
// runs as fast as each sender does when all are active, whatever the number of idle ones
// (no token-passing degradation). Measured in simulated time, so the numbers are exact and
// repeatable; they are printed for docs/core.md.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "checker.hpp"
#include "cluster.hpp"

using namespace squall;
using namespace squall::sim;

namespace {

constexpr std::size_t kMessagesPerSender = 1000;

struct Measurement {
  std::uint64_t elapsed_us = 0;   // until every replica delivered everything
  std::uint64_t delivered = 0;    // per replica
  std::uint64_t null_batches = 0;
  std::uint64_t null_slots = 0;
};

Measurement measure(std::size_t members, const std::vector<std::size_t>& active) {
  fabric::SimOptions network;
  network.seed = 99;
  network.min_delay_us = 10;
  network.max_delay_us = 20;
  ClusterOptions options;
  options.nodes = members;
  options.layout = {.shards = 1, .replicas_per_shard = static_cast<std::uint32_t>(members)};
  options.window = 8;
  options.smc_payload_bytes = 64;
  options.send_queue_messages = 64;
  options.tick_us = 10;
  options.persist_min_us = 0;
  options.persist_max_us = 0;
  Cluster cluster(network, options);
  Checker checker(cluster);
  for (std::size_t rank : active) {
    for (std::size_t i = 0; i < kMessagesPerSender; ++i) {
      cluster.replica(ShardId{0}, rank).backlog.push_back(Bytes(32, std::byte{7}));
    }
  }
  std::uint64_t start_us = cluster.network.now_us();
  while (!cluster.quiescent() && cluster.network.now_us() - start_us < 10'000'000) {
    cluster.run_for(10);
  }
  REQUIRE(cluster.quiescent());
  checker.check_final();
  for (const auto& violation : cluster.violations()) INFO(violation);
  REQUIRE(cluster.violations().empty());
  Measurement result;
  result.elapsed_us = cluster.network.now_us() - start_us;
  result.delivered = cluster.replica(ShardId{0}, 0).machine->log().size();
  for (const auto& replica : cluster.replicas) {
    result.null_batches += replica->group->stats().null_batches_sent;
    result.null_slots += replica->group->stats().null_slots_sent;
  }
  return result;
}

double per_ms(std::uint64_t messages, std::uint64_t elapsed_us) {
  return static_cast<double>(messages) * 1000.0 / static_cast<double>(elapsed_us);
}

}  // namespace

TEST_CASE("One active sender of five runs as fast as each sender of five active ones") {
  Measurement all = measure(5, {0, 1, 2, 3, 4});
  Measurement one = measure(5, {2});
  Measurement pair = measure(2, {1});
  Measurement alone = measure(1, {0});
  REQUIRE(all.delivered == 5 * kMessagesPerSender);
  REQUIRE(one.delivered == kMessagesPerSender);
  fmt::print(
      "ordered multicast, {} messages per active sender, 10-20 us links, window 8:\n"
      "  5 of 5 active: {} us, {:.1f} msg/ms per sender, {:.1f} msg/ms in all\n"
      "  1 of 5 active: {} us, {:.1f} msg/ms ({} null batches for {} null slots)\n"
      "  1 of 2 active: {} us, {:.1f} msg/ms\n"
      "  group of 1:    {} us, {:.1f} msg/ms\n",
      kMessagesPerSender, all.elapsed_us, per_ms(kMessagesPerSender, all.elapsed_us),
      per_ms(all.delivered, all.elapsed_us), one.elapsed_us,
      per_ms(kMessagesPerSender, one.elapsed_us), one.null_batches, one.null_slots,
      pair.elapsed_us, per_ms(kMessagesPerSender, pair.elapsed_us), alone.elapsed_us,
      per_ms(kMessagesPerSender, alone.elapsed_us));
  // The lone sender keeps at least 80% of an all-active sender's rate...
  REQUIRE(one.elapsed_us * 4 <= all.elapsed_us * 5);
  // ...and does not slow down as idle senders are added (token passing would scale with N).
  REQUIRE(one.elapsed_us * 4 <= pair.elapsed_us * 5);
  // Idle senders answer in batches, not one null per slot.
  REQUIRE(one.null_batches < one.null_slots);
}
