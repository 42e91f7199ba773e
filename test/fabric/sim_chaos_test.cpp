// Random fault schedules over many seeds, with the transport contract checked as invariants,
// and determinism of whole runs (same seed, same trace; different seeds, different traces).
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "fabric/sim_chaos.hpp"
#include "test/fabric/sim_test_helpers.hpp"
#include "test/seeds.hpp"

namespace squall::fabric::test {
namespace {

// Fails the test case with the seed, so a failure can be replayed.
#define SIM_EXPECT(condition, message)                                             \
  do {                                                                             \
    if (!(condition)) {                                                            \
      std::ostringstream detail_;                                                  \
      detail_ << "seed " << seed_ << " t=" << cluster_.network.elapsed_us() << ": " \
              << message; /* NOLINT */                                             \
      FAIL(detail_.str());                                                         \
    }                                                                              \
  } while (0)

enum class PairLink : std::uint8_t { connecting, up, down };

// Every node ticks periodically: it bumps a global counter, writes it into word[self] of every
// connected peer (signalled on even counters), and sends each peer a message numbered per
// connection. Observers check after every step that
// - a peer's word never goes backwards (per-link FIFO, no torn aligned words, ordered reads);
// - messages on a connection arrive numbered 1, 2, 3... without gap or repeat;
// - completions arrive in posting order, and a successful one means the bytes are there;
// - peer_connected only follows add_peer; peer_failed comes once per connection (attempt), and
//   nothing about the peer follows it until it is re-added; writes to it fail fast meanwhile;
// and at the end, after the faults calm down, that every pair still (or again) connected
// delivered everything (liveness).
// With `reconnect`, a node re-adds a failed peer that is not crashed at its next tick, and a
// restarted node re-registers and re-adds everyone (SimChaos restarts crashed nodes).
class Workload {
 public:
  Workload(std::uint64_t seed, std::uint32_t nodes, SimOptions options, bool reconnect = false)
      : seed_(seed), nodes_(nodes), reconnect_(reconnect),
        cluster_(nodes, nodes * 8, with_seed(options, seed)), state_(nodes + 1) {
    for (auto& per_node : state_) per_node.resize(nodes + 1);
  }

  SimNetwork& network() { return cluster_.network; }

  void run(ChaosOptions chaos_options, std::uint64_t settle_us) {
    cluster_.connect_all();
    for (std::uint32_t a = 1; a <= nodes_; ++a) {
      for (std::uint32_t b = 1; b <= nodes_; ++b) state_[a][b].link = PairLink::up;
      schedule_tick(a);
    }
    if (reconnect_) chaos_options.restart_weight = 2;
    SimChaos chaos(network(), chaos_options);
    chaos.on_restart = [this](NodeId id) { on_restart(id.value); };
    chaos.start();
    const std::uint64_t chaos_end = network().now_us() + chaos_options.stop_after_us;
    drive_until(chaos_end + 1);
    SIM_EXPECT(chaos.is_calm(), "chaos still active after stop_after_us");
    drive_until(network().now_us() + settle_us);
    ticking_ = false;  // stop producing; let everything in flight land
    drive_until(UINT64_MAX);
    check_liveness();
    stats_ = chaos.stats();
  }

  const ChaosStats& chaos_stats() const { return stats_; }
  std::uint64_t reconnections() const { return reconnections_; }

 private:
  struct PairState {
    PairLink link = PairLink::connecting;
    std::uint64_t messages_sent = 0;      // by the row node to the column node (connection)
    std::uint64_t messages_received = 0;  // by the row node from the column node (connection)
    std::uint64_t last_word_seen = 0;     // row node's copy of column node's word
    std::uint64_t last_word_posted = 0;   // row node's counter last posted to column node
    std::uint64_t last_completion = 0;
    std::uint64_t failures = 0;
  };

  static SimOptions with_seed(SimOptions options, std::uint64_t seed) {
    options.seed = seed;
    return options;
  }

  void schedule_tick(std::uint32_t node) {
    const std::uint64_t period_us = 200 + network().random().below(800);
    network().schedule_after(period_us, [this, node] { tick(node); }, node_id(node));
  }

  void tick(std::uint32_t node) {
    if (!ticking_) return;
    ++counter_;
    cluster_.set_word(node, node - 1, counter_);
    for (std::uint32_t peer = 1; peer <= nodes_; ++peer) {
      if (peer != node) post_to(node, peer);
    }
    schedule_tick(node);
  }

  void add_peer(std::uint32_t node, std::uint32_t peer) {
    const Status added = cluster_.at(node).add_peer(node_id(peer), {});
    SIM_EXPECT(added.is_ok(), "add_peer " << node << "->" << peer << ": " << added.to_string());
    state_[node][peer].link = PairLink::connecting;
  }

  void on_restart(std::uint32_t node) {
    const Status registered = cluster_.at(node).register_region(kRegion, cluster_.memory(node));
    SIM_EXPECT(registered.is_ok(), registered.to_string());
    for (std::uint32_t peer = 1; peer <= nodes_; ++peer) {
      if (peer != node) add_peer(node, peer);
    }
    schedule_tick(node);
  }

  void post_to(std::uint32_t node, std::uint32_t peer) {
    PairState& pair = state_[node][peer];
    const std::uint64_t offset = (node - 1) * 8;
    if (pair.link == PairLink::down) {
      SIM_EXPECT(cluster_.write(node, peer, offset, 8).code() == Code::unavailable,
                 "write to failed peer " << peer << " did not fail fast");
      if (reconnect_ && !network().is_crashed(node_id(peer))) add_peer(node, peer);
      return;
    }
    if (pair.link != PairLink::up) return;
    const std::uint64_t context = counter_ % 2 == 0 ? counter_ : 0;
    const Status written = cluster_.write(node, peer, offset, 8, context);
    SIM_EXPECT(written.is_ok() || written.code() == Code::would_block, written.to_string());
    if (written.is_ok()) pair.last_word_posted = counter_;
    const std::string text = std::to_string(pair.messages_sent + 1);
    const Status sent = cluster_.at(node).send(node_id(peer), as_bytes(text));
    SIM_EXPECT(sent.is_ok() || sent.code() == Code::would_block, sent.to_string());
    if (sent.is_ok()) ++pair.messages_sent;
  }

  void drive_until(std::uint64_t limit_us) {
    while (true) {
      const std::optional<std::uint64_t> next = network().next_event_us();
      if (!next || *next > limit_us) break;
      network().step();
      for (std::uint32_t node = 1; node <= nodes_; ++node) {
        if (cluster_.at(node).running() && cluster_.at(node).take_activity()) observe(node);
      }
    }
    if (limit_us != UINT64_MAX) network().run_until(limit_us);
  }

  void observe(std::uint32_t node) {
    for (std::uint32_t peer = 1; peer <= nodes_; ++peer) {
      if (peer == node) continue;
      PairState& pair = state_[node][peer];
      const std::uint64_t word = cluster_.word(node, peer - 1);
      SIM_EXPECT(word >= pair.last_word_seen, "node " << node << " saw word of " << peer
                                                      << " go back " << pair.last_word_seen
                                                      << " -> " << word);
      pair.last_word_seen = word;
    }
    for (const Event& event : drain(cluster_.at(node))) on_event(node, event);
  }

  void on_event(std::uint32_t node, const Event& event) {
    const std::uint32_t peer = event.peer.value;
    PairState& pair = state_[node][peer];
    SIM_EXPECT(pair.link != PairLink::down, "node " << node << " got event kind "
                                                << static_cast<int>(event.kind)
                                                << " about failed peer " << peer);
    switch (event.kind) {
      case EventKind::peer_connected:
        SIM_EXPECT(pair.link == PairLink::connecting, "peer_connected without add_peer");
        pair.link = PairLink::up;
        ++reconnections_;
        pair.messages_sent = 0;
        pair.messages_received = 0;
        break;
      case EventKind::peer_failed:
        pair.link = PairLink::down;
        ++pair.failures;
        break;
      case EventKind::message: {
        SIM_EXPECT(pair.link == PairLink::up, "message before peer_connected");
        const std::string expected = std::to_string(pair.messages_received + 1);
        SIM_EXPECT(as_string_view(event.payload) == expected,
                   "node " << node << " expected message " << expected << " from " << peer
                           << ", got " << as_string_view(event.payload));
        ++pair.messages_received;
        break;
      }
      case EventKind::write_completed:
        SIM_EXPECT(event.context > pair.last_completion, "completion out of order");
        pair.last_completion = event.context;
        // A completion means the data is at the peer (whose memory outlives crashes here).
        SIM_EXPECT(!event.status.is_ok() || cluster_.word(peer, node - 1) >= event.context,
                   "completion before the data landed");
        break;
      case EventKind::remote_write:
        SIM_EXPECT(false, "unexpected remote_write");
        break;
    }
  }

  void check_liveness() {
    const CrashDetection detection = network().options().crash_detection;
    for (std::uint32_t a = 1; a <= nodes_; ++a) {
      if (network().is_crashed(node_id(a))) continue;
      for (std::uint32_t b = 1; b <= nodes_; ++b) {
        if (a == b) continue;
        const PairState& pair = state_[a][b];
        const PairState& reverse = state_[b][a];
        if (network().is_crashed(node_id(b))) {
          // Reset crashes are reported to every survivor, silent ones by nobody (a partition
          // timeout may have failed the connection earlier). Without restarts, once.
          const bool reported = detection == CrashDetection::silent || pair.failures >= 1;
          SIM_EXPECT(reported, "node " << a << " never learned that " << b << " crashed");
          SIM_EXPECT(reconnect_ || pair.failures <= 1, "peer_failed twice");
          continue;
        }
        if (reconnect_) {
          SIM_EXPECT(pair.link == PairLink::up, "live pair " << a << "-" << b << " not back up");
        } else {
          // Failures between live nodes come only from partition timeouts, at both ends.
          SIM_EXPECT(pair.failures == reverse.failures, "asymmetric failure " << a << "-" << b);
          if (pair.failures != 0) continue;
        }
        SIM_EXPECT(pair.messages_received == reverse.messages_sent,
                   "node " << a << " received " << pair.messages_received << " of "
                           << reverse.messages_sent << " messages from " << b);
        // A late source read may carry a newer counter than the one posted, never an older.
        const std::uint64_t held = cluster_.word(a, b - 1);
        SIM_EXPECT(held >= reverse.last_word_posted && held <= cluster_.word(b, b - 1),
                   "node " << a << " holds " << held << " from " << b << ", last posted "
                           << reverse.last_word_posted);
        SIM_EXPECT(cluster_.at(b).outstanding_writes(node_id(a)) == 0, "write never completed");
      }
    }
  }

  std::uint64_t seed_;
  std::uint32_t nodes_;
  bool reconnect_;
  Cluster cluster_;
  std::vector<std::vector<PairState>> state_;  // [node][peer], 1-based
  std::uint64_t counter_ = 0;
  std::uint64_t reconnections_ = 0;  // peer_connected events after the initial connect
  bool ticking_ = true;
  ChaosStats stats_;
};

ChaosOptions chaos_options() {
  ChaosOptions options;
  options.min_gap_us = 2'000;
  options.max_gap_us = 10'000;
  options.min_fault_us = 1'000;
  options.max_fault_us = 15'000;
  options.stop_after_us = 40'000;
  return options;
}

// Options vary with the seed so the seeds also cover the knobs.
SimOptions varied_options(std::uint64_t seed) {
  SimOptions options;
  options.min_delay_us = 1 + seed % 5;
  options.max_delay_us = options.min_delay_us + (seed * 37) % 400;
  options.crash_detection = seed % 2 == 0 ? CrashDetection::reset : CrashDetection::silent;
  options.partition_timeout_us = seed % 3 == 0 ? 8'000 : 0;
  options.torn_write_per_million = seed % 4 == 0 ? 200'000 : 0;
  options.delay_spike_per_million = seed % 5 == 0 ? 20'000 : 0;
  options.late_read_per_million = seed % 7 == 0 ? 300'000 : 0;
  options.send_queue_depth = 8 + seed % 32;
  return options;
}

TEST_CASE("Random fault schedules keep the transport contract over 500 seeds") {
  ChaosStats totals;
  std::uint64_t failures = 0;
  std::uint64_t steps = 0;
  std::uint64_t messages = 0;
  std::uint64_t reconnections = 0;
  for (std::uint64_t seed = 1; seed <= squall::testing::seed_count(500); ++seed) {
    const auto nodes = static_cast<std::uint32_t>(2 + seed % 4);
    const bool reconnect = seed % 3 == 1;
    Workload workload(seed, nodes, varied_options(seed), reconnect);
    workload.run(chaos_options(), /*settle_us=*/reconnect ? 20'000 : 5'000);
    totals.crashes += workload.chaos_stats().crashes;
    totals.restarts += workload.chaos_stats().restarts;
    reconnections += workload.reconnections();
    totals.pauses += workload.chaos_stats().pauses;
    totals.partitions += workload.chaos_stats().partitions;
    failures += workload.network().stats().peer_failures;
    steps += workload.network().stats().steps;
    messages += workload.network().stats().messages_delivered;
  }
  // The schedules really injected every kind of fault.
  REQUIRE(totals.crashes > 100);
  REQUIRE(totals.restarts > 50);
  REQUIRE(reconnections > 200);
  REQUIRE(totals.pauses > 100);
  REQUIRE(totals.partitions > 100);
  REQUIRE(failures > 100);
  REQUIRE(messages > 100'000);  // the workload really ran
  REQUIRE(steps > messages);
}

std::pair<std::uint64_t, std::vector<std::string>> traced_run(std::uint64_t seed) {
  SimOptions options = varied_options(seed);
  options.record_trace = true;
  Workload workload(seed, 4, options);
  workload.run(chaos_options(), 5'000);
  return {workload.network().trace_hash(), workload.network().trace_lines()};
}

TEST_CASE("The same seed replays the same trace byte for byte, other seeds differ") {
  for (std::uint64_t seed : {4ULL, 9ULL, 12ULL}) {
    const auto [hash_a, lines_a] = traced_run(seed);
    const auto [hash_b, lines_b] = traced_run(seed);
    REQUIRE(lines_a.size() > 100);
    REQUIRE(lines_a == lines_b);
    REQUIRE(hash_a == hash_b);
  }
  std::map<std::uint64_t, std::uint64_t> seed_of_hash;
  for (std::uint64_t seed = 100; seed < 120; ++seed) {
    SimOptions options = varied_options(7);  // same knobs: only the seed differs
    Workload workload(seed, 3, options);
    workload.run(chaos_options(), 5'000);
    const auto [it, inserted] = seed_of_hash.emplace(workload.network().trace_hash(), seed);
    REQUIRE(inserted);
  }
  // Without text the hash is the same as with it.
  SimOptions plain = varied_options(9);
  Workload workload(9, 4, plain);
  workload.run(chaos_options(), 5'000);
  REQUIRE(workload.network().trace_hash() == traced_run(9).first);
}

}  // namespace
}  // namespace squall::fabric::test
