// SimNetwork faults: crash (reset and silent), remove_peer, restart, pause, partition, torn
// writes, delay spikes.
#include <string>

#include "test/fabric/sim_test_helpers.hpp"
#include "test/seeds.hpp"

namespace squall::fabric::test {
namespace {

std::size_t failures_about(const std::vector<Event>& events, NodeId peer) {
  std::size_t count = 0;
  for (const Event& event : events) {
    count += event.kind == EventKind::peer_failed && event.peer == peer ? 1 : 0;
  }
  return count;
}

TEST_CASE("Crash with reset: each survivor sees peer_failed once, then writes fail fast") {
  Cluster cluster(3, 64);
  cluster.connect_all();
  cluster.set_word(1, 0, 42);
  REQUIRE(cluster.write(1, 3, 0, 8, /*context=*/7).is_ok());
  REQUIRE(cluster.write(2, 3, 0, 8).is_ok());
  const std::uint64_t before = cluster.word(3, 0);
  cluster.network.crash(node_id(3));
  REQUIRE(cluster.network.is_crashed(node_id(3)));
  REQUIRE_FALSE(cluster.at(3).running());
  // Writes posted after the crash but before detection are accepted and vanish.
  REQUIRE(cluster.write(2, 3, 0, 8, /*context=*/9).is_ok());
  cluster.network.run_until_idle(10'000);
  const auto events1 = drain(cluster.at(1));
  const auto events2 = drain(cluster.at(2));
  REQUIRE(failures_about(events1, node_id(3)) == 1);
  REQUIRE(failures_about(events2, node_id(3)) == 1);
  // The outstanding signalled write completes with an error before peer_failed.
  REQUIRE(events1.size() == 2);
  REQUIRE(events1[0].kind == EventKind::write_completed);
  REQUIRE(events1[0].context == 7);
  REQUIRE(events1[0].status.code() == Code::unavailable);
  REQUIRE(events1[1].kind == EventKind::peer_failed);
  REQUIRE(events1[1].status.code() == Code::unavailable);
  REQUIRE(events2.size() == 2);
  REQUIRE(events2[0].context == 9);
  REQUIRE_FALSE(events2[0].status.is_ok());
  REQUIRE(cluster.word(3, 0) == before);  // frozen: nothing landed after the crash
  REQUIRE(cluster.write(1, 3, 0, 8).code() == Code::unavailable);
  REQUIRE(cluster.at(1).send(node_id(3), as_bytes("x")).code() == Code::unavailable);
  REQUIRE(cluster.write(1, 2, 0, 8).is_ok());  // the survivors still talk
  std::vector<Event> none;
  REQUIRE(cluster.at(3).poll(none, 10) == 0);
  REQUIRE(cluster.at(3).write(WriteRequest{}).code() == Code::unavailable);
  // More time changes nothing: peer_failed is reported once.
  cluster.network.run_for(1'000'000);
  REQUIRE(failures_about(drain(cluster.at(1)), node_id(3)) == 0);
  REQUIRE(cluster.network.stats().peer_failures == 2);
}

TEST_CASE("A crashed node's queued traffic lands as a prefix, never with gaps") {
  for (std::uint64_t seed = 1; seed <= squall::testing::seed_count(200); ++seed) {
    SimOptions options;
    options.seed = seed;
    options.max_delay_us = 200;
    Cluster cluster(2, 64, options);
    cluster.connect_all();
    for (std::uint64_t i = 1; i <= 20; ++i) {
      const std::string text = std::to_string(i);
      REQUIRE(cluster.at(1).send(node_id(2), as_bytes(text)).is_ok());
    }
    cluster.network.run_for(cluster.network.random().below(300));
    cluster.network.crash(node_id(1));
    cluster.network.run_until_idle(10'000);
    std::uint64_t expected = 1;
    for (const Event& event : drain(cluster.at(2))) {
      if (event.kind == EventKind::peer_failed) {
        REQUIRE(event.peer == node_id(1));
        continue;
      }
      REQUIRE(event.kind == EventKind::message);
      REQUIRE(as_string_view(event.payload) == std::to_string(expected));
      ++expected;
    }
  }
}

TEST_CASE("Silent crash reports nothing until the protocol removes the peer") {
  SimOptions options;
  options.crash_detection = CrashDetection::silent;
  Cluster cluster(2, 64, options);
  cluster.connect_all();
  cluster.network.crash(node_id(2));
  REQUIRE(cluster.write(1, 2, 0, 8, /*context=*/5).is_ok());
  REQUIRE(cluster.at(1).send(node_id(2), as_bytes("lost")).is_ok());
  cluster.network.run_for(10'000'000);
  REQUIRE(drain(cluster.at(1)).empty());
  REQUIRE(cluster.at(1).outstanding_writes(node_id(2)) == 1);
  cluster.at(1).remove_peer(node_id(2));
  const auto events = drain(cluster.at(1));
  REQUIRE(events.size() == 2);
  REQUIRE(events[0].kind == EventKind::write_completed);
  REQUIRE(events[0].status.code() == Code::aborted);
  REQUIRE(events[1].kind == EventKind::peer_failed);
  REQUIRE(events[1].status.code() == Code::aborted);
  cluster.at(1).remove_peer(node_id(2));  // idempotent: no second peer_failed
  REQUIRE(drain(cluster.at(1)).empty());
  REQUIRE(cluster.write(1, 2, 0, 8).code() == Code::unavailable);
}

TEST_CASE("remove_peer closes the connection at both ends, once") {
  Cluster cluster(2, 64);
  cluster.connect_all();
  REQUIRE(cluster.at(2).send(node_id(1), as_bytes("before")).is_ok());
  cluster.at(1).remove_peer(node_id(2));
  auto events1 = drain(cluster.at(1));
  REQUIRE(events1.size() == 1);
  REQUIRE(events1[0].kind == EventKind::peer_failed);
  cluster.network.run_until_idle(1000);
  // The message in flight belonged to the dead connection: dropped, not delivered.
  REQUIRE(drain(cluster.at(1)).empty());
  const auto events2 = drain(cluster.at(2));
  REQUIRE(events2.size() == 1);
  REQUIRE(events2[0].kind == EventKind::peer_failed);
  REQUIRE(events2[0].status.code() == Code::unavailable);
  // Both re-add: a fresh connection.
  REQUIRE(cluster.at(1).add_peer(node_id(2), {}).is_ok());
  REQUIRE(cluster.at(2).add_peer(node_id(1), {}).is_ok());
  cluster.network.run_until_idle(1000);
  REQUIRE(count_kind(drain(cluster.at(1)), EventKind::peer_connected) == 1);
  REQUIRE(count_kind(drain(cluster.at(2)), EventKind::peer_connected) == 1);
  REQUIRE(cluster.at(2).send(node_id(1), as_bytes("after")).is_ok());
  cluster.network.run_until_idle(1000);
  const auto events = drain(cluster.at(1));
  REQUIRE(events.size() == 1);
  REQUIRE(as_string_view(events[0].payload) == "after");
}

TEST_CASE("A restarted node reconnects as a new incarnation, old traffic never reaches it") {
  SimOptions options;
  options.crash_detection = CrashDetection::silent;
  Cluster cluster(2, 64, options);
  cluster.connect_all();
  cluster.network.crash(node_id(2));
  cluster.set_word(1, 0, 77);
  REQUIRE(cluster.write(1, 2, 0, 8).is_ok());  // to the dead incarnation
  cluster.network.restart(node_id(2));
  REQUIRE(cluster.at(2).incarnation() == 1);
  REQUIRE(cluster.at(2).running());
  REQUIRE(cluster.at(2).register_region(kRegion, cluster.memory(2)).is_ok());
  REQUIRE(cluster.at(2).add_peer(node_id(1), {}).is_ok());
  cluster.network.run_until_idle(1000);
  REQUIRE(cluster.word(2, 0) == 0);
  // Node 1 learns of the restart from the new hello: the old connection fails.
  auto events1 = drain(cluster.at(1));
  REQUIRE(events1.size() == 1);
  REQUIRE(events1[0].kind == EventKind::peer_failed);
  REQUIRE(cluster.at(1).add_peer(node_id(2), {}).is_ok());
  cluster.network.run_until_idle(1000);
  REQUIRE(count_kind(drain(cluster.at(1)), EventKind::peer_connected) == 1);
  REQUIRE(count_kind(drain(cluster.at(2)), EventKind::peer_connected) == 1);
  REQUIRE(cluster.write(1, 2, 0, 8).is_ok());
  cluster.network.run_until_idle(1000);
  REQUIRE(cluster.word(2, 0) == 77);
}

TEST_CASE("Pause holds traffic both ways, resume delivers it in order") {
  Cluster cluster(3, 64);
  cluster.connect_all();
  cluster.network.pause(node_id(2));
  REQUIRE_FALSE(cluster.at(2).running());
  for (std::uint64_t i = 1; i <= 10; ++i) {
    cluster.set_word(1, 0, i);
    REQUIRE(cluster.write(1, 2, 0, 8, /*context=*/i).is_ok());
    REQUIRE(cluster.at(1).send(node_id(2), as_bytes(std::to_string(i))).is_ok());
  }
  cluster.network.run_for(1'000'000);
  REQUIRE(cluster.word(2, 0) == 0);
  std::vector<Event> none;
  REQUIRE(cluster.at(2).poll(none, 100) == 0);
  REQUIRE(drain(cluster.at(1)).empty());  // no completions while the target is stopped
  REQUIRE(cluster.at(2).write(WriteRequest{}).code() == Code::unavailable);
  cluster.network.resume(node_id(2));
  std::uint64_t expected = 1;
  std::uint64_t last_word = 0;
  while (cluster.network.step()) {
    REQUIRE(cluster.word(2, 0) >= last_word);
    last_word = cluster.word(2, 0);
    for (const Event& event : drain(cluster.at(2))) {
      REQUIRE(event.kind == EventKind::message);
      REQUIRE(as_string_view(event.payload) == std::to_string(expected));
      REQUIRE(cluster.word(2, 0) >= expected);
      ++expected;
    }
  }
  REQUIRE(expected == 11);
  const auto completions = drain(cluster.at(1));
  REQUIRE(completions.size() == 10);
  for (std::size_t k = 0; k < completions.size(); ++k) {
    REQUIRE(completions[k].context == k + 1);
    REQUIRE(completions[k].status.is_ok());
  }
}

TEST_CASE("Partition holds traffic (no failure) and heal releases it in order") {
  Cluster cluster(3, 64);
  cluster.connect_all();
  cluster.network.partition(node_id(1), node_id(2));
  REQUIRE(cluster.network.is_partitioned(node_id(2), node_id(1)));
  REQUIRE_FALSE(cluster.network.is_partitioned(node_id(1), node_id(3)));
  for (std::uint64_t i = 1; i <= 5; ++i) {
    cluster.set_word(1, 0, i);
    REQUIRE(cluster.write(1, 2, 0, 8).is_ok());
    REQUIRE(cluster.write(1, 3, 0, 8).is_ok());
  }
  cluster.network.run_for(5'000'000);
  REQUIRE(cluster.word(2, 0) == 0);
  REQUIRE(cluster.word(3, 0) == 5);
  REQUIRE(drain(cluster.at(1)).empty());
  REQUIRE(drain(cluster.at(2)).empty());
  cluster.network.heal(node_id(2), node_id(1));
  std::uint64_t last = 0;
  while (cluster.network.step()) {
    REQUIRE(cluster.word(2, 0) >= last);
    last = cluster.word(2, 0);
  }
  REQUIRE(cluster.word(2, 0) == 5);
}

TEST_CASE("Partition past the timeout fails the connection at both ends") {
  SimOptions options;
  options.partition_timeout_us = 50'000;
  Cluster cluster(3, 64, options);
  cluster.connect_all();
  std::vector<std::vector<NodeId>> groups = {{node_id(1)}, {node_id(2), node_id(3)}};
  cluster.network.partition_groups(groups);
  REQUIRE(cluster.network.is_partitioned(node_id(1), node_id(3)));
  REQUIRE_FALSE(cluster.network.is_partitioned(node_id(2), node_id(3)));
  REQUIRE(cluster.write(1, 2, 0, 8, /*context=*/3).is_ok());
  cluster.network.run_for(49'000);
  REQUIRE(drain(cluster.at(1)).empty());
  cluster.network.run_for(2'000);
  const auto events1 = drain(cluster.at(1));
  REQUIRE(failures_about(events1, node_id(2)) == 1);
  REQUIRE(failures_about(events1, node_id(3)) == 1);
  REQUIRE(events1[0].kind == EventKind::write_completed);
  REQUIRE(events1[0].status.code() == Code::timed_out);
  const auto events2 = drain(cluster.at(2));
  REQUIRE(events2.size() == 1);
  REQUIRE(events2[0].status.code() == Code::timed_out);
  REQUIRE(failures_about(drain(cluster.at(3)), node_id(1)) == 1);
  cluster.network.heal_all();
  cluster.network.run_until_idle(1000);
  REQUIRE(drain(cluster.at(1)).empty());  // healing does not revive failed connections
  REQUIRE(cluster.write(1, 2, 0, 8).code() == Code::unavailable);
  REQUIRE(cluster.at(1).add_peer(node_id(2), {}).is_ok());
  REQUIRE(cluster.at(2).add_peer(node_id(1), {}).is_ok());
  cluster.network.run_until_idle(1000);
  REQUIRE(cluster.at(1).connected(node_id(2)));
  REQUIRE(cluster.at(2).connected(node_id(1)));
}

TEST_CASE("A short partition does not time out") {
  SimOptions options;
  options.partition_timeout_us = 50'000;
  Cluster cluster(2, 64, options);
  cluster.connect_all();
  cluster.network.isolate(node_id(2));
  cluster.network.run_for(40'000);
  cluster.network.heal(node_id(1), node_id(2));
  cluster.network.partition(node_id(1), node_id(2));  // a new cut restarts the clock
  cluster.network.run_for(40'000);
  cluster.network.heal(node_id(1), node_id(2));
  cluster.network.run_for(100'000);
  REQUIRE(drain(cluster.at(1)).empty());
  REQUIRE(cluster.at(1).connected(node_id(2)));
}

TEST_CASE("Torn writes split only at aligned words and complete after the last piece") {
  SimOptions options;
  options.torn_write_per_million = 1'000'000;
  options.seed = 5;
  Cluster cluster(2, 256, options);
  cluster.connect_all();
  std::uint64_t pieces_seen = 0;
  for (std::uint64_t round = 1; round <= 200; ++round) {
    for (std::size_t w = 0; w < 32; ++w) cluster.set_word(1, w, round * 1000 + w);
    REQUIRE(cluster.write(1, 2, 0, 256, /*context=*/round, /*immediate=*/round).is_ok());
    bool got_event = false;
    while (cluster.network.step()) {
      std::uint64_t new_words = 0;
      for (std::size_t w = 0; w < 32; ++w) {
        const std::uint64_t value = cluster.word(2, w);
        // Every aligned word is either wholly old or wholly new.
        REQUIRE((value == round * 1000 + w || value == (round - 1) * 1000 + w ||
                 (round == 1 && value == 0)));
        new_words += value == round * 1000 + w ? 1 : 0;
      }
      const auto events = drain(cluster.at(2));
      if (!events.empty()) {
        REQUIRE(new_words == 32);  // remote_write only once the whole write landed
        got_event = true;
      } else if (!got_event && new_words > 0 && new_words < 32) {
        ++pieces_seen;
      }
    }
    REQUIRE(got_event);
    const auto completions = drain(cluster.at(1));
    REQUIRE(completions.size() == 1);
    REQUIRE(completions[0].context == round);
  }
  REQUIRE(pieces_seen > 100);
}

TEST_CASE("Delay spikes slow a link down but keep it FIFO") {
  SimOptions options;
  options.delay_spike_per_million = 100'000;
  options.delay_spike_us = 10'000;
  options.send_queue_depth = 1000;
  Cluster cluster(2, 64, options);
  cluster.connect_all();
  const std::uint64_t start = cluster.network.now_us();
  for (std::uint64_t i = 1; i <= 500; ++i) {
    REQUIRE(cluster.at(1).send(node_id(2), as_bytes(std::to_string(i))).is_ok());
  }
  cluster.network.run_until_idle(100'000);
  REQUIRE(cluster.network.now_us() - start >= 10'000);
  std::uint64_t expected = 1;
  for (const Event& event : drain(cluster.at(2))) {
    REQUIRE(as_string_view(event.payload) == std::to_string(expected++));
  }
  REQUIRE(expected == 501);
}

}  // namespace
}  // namespace squall::fabric::test
