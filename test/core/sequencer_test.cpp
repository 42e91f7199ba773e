// The round-robin sequencer: order, stability, nulls, versions, timestamps, trim.
#include <catch2/catch.hpp>

#include "test/seeds.hpp"

#include <algorithm>
#include <string>

#include "core/sequencer.hpp"
#include "fabric/sim_random.hpp"

using namespace squall;
using namespace squall::core;

namespace {

Bytes text(const std::string& value) {
  Bytes bytes;
  for (char c : value) bytes.push_back(static_cast<std::byte>(c));
  return bytes;
}

struct Delivered {
  std::uint64_t sequence;
  std::size_t sender;
  std::uint64_t sender_index;
  Version version;
  HlcTimestamp timestamp;
  std::string payload;
  bool operator==(const Delivered&) const = default;
};

struct Recorder {
  std::vector<Delivered> log;
  Sequencer::DeliverFn fn() {
    return [this](const SequencedDelivery& d) {
      log.push_back({d.sequence, d.sender, d.sender_index, d.version, d.timestamp,
                     std::string(as_string_view(d.payload))});
      return true;
    };
  }
  std::vector<std::string> payloads() const {
    std::vector<std::string> result;
    for (const auto& d : log) result.push_back(d.payload);
    return result;
  }
};

void ok(const Status& status) {
  INFO(status.to_string());
  REQUIRE(status.is_ok());
}

std::vector<std::uint64_t> all_received(const Sequencer& sequencer) {
  std::vector<std::uint64_t> counts;
  for (std::size_t s = 0; s < sequencer.senders(); ++s) {
    counts.push_back(sequencer.received_slots(s));
  }
  return counts;
}

}  // namespace

TEST_CASE("Stable slots are delivered round-robin: slot k of sender s is sequence k*N+s") {
  Sequencer sequencer(3, ViewId{2}, 0, 1000, 64);
  for (std::size_t s = 0; s < 3; ++s) {
    for (int k = 0; k < 2; ++k) {
      ok(sequencer.add_data(s, 100, text(fmt::format("s{}k{}", s, k))));
    }
  }
  Recorder recorder;
  REQUIRE(sequencer.deliver_stable(all_received(sequencer), recorder.fn()) == 6);
  REQUIRE(recorder.payloads() ==
          std::vector<std::string>{"s0k0", "s1k0", "s2k0", "s0k1", "s1k1", "s2k1"});
  for (std::size_t i = 0; i < recorder.log.size(); ++i) {
    REQUIRE(recorder.log[i].sequence == i);
    REQUIRE(recorder.log[i].version == make_version(ViewId{2}, static_cast<std::uint32_t>(i + 1)));
  }
  REQUIRE(sequencer.next_sequence() == 6);
  REQUIRE(sequencer.last_version() == make_version(ViewId{2}, 6));
  REQUIRE(sequencer.pending_entries() == 0);
  REQUIRE(sequencer.pending_bytes() == 0);
}

TEST_CASE("Delivery stops at the first sequence not stable everywhere") {
  Sequencer sequencer(2, ViewId{1}, 0, 1000, 64);
  ok(sequencer.add_data(0, 1, text("a0")));
  ok(sequencer.add_data(0, 1, text("a1")));
  ok(sequencer.add_data(1, 1, text("b0")));
  Recorder recorder;
  // Sender 1's slot 0 is not stable yet: only sender 0's slot 0 (sequence 0) goes.
  REQUIRE(sequencer.deliver_stable(std::vector<std::uint64_t>{2, 0}, recorder.fn()) == 1);
  REQUIRE(sequencer.next_sequence() == 1);
  REQUIRE(sequencer.deliver_stable(std::vector<std::uint64_t>{2, 1}, recorder.fn()) == 2);
  REQUIRE(recorder.payloads() == std::vector<std::string>{"a0", "b0", "a1"});
  // Sequence 4 (sender 0, slot 2) is not there: the frontier is 3 (sender 1, slot 1).
  REQUIRE(sequencer.next_sequence() == 3);
}

TEST_CASE("Null batches are skipped and level an idle sender in one message") {
  Sequencer sequencer(3, ViewId{1}, 0, 1000, 64);
  for (int k = 0; k < 4; ++k) ok(sequencer.add_data(1, 1, text(fmt::format("b{}", k))));
  // Sender 1 announced slots 0..3 (last sequence 3*3+1 = 10). Sender 0 needs 4 slots, sender 2
  // (after it) needs 3.
  REQUIRE(sequencer.slots_needed(0) == 4);
  REQUIRE(sequencer.slots_needed(2) == 3);
  REQUIRE(sequencer.slots_needed(1) == 0);
  ok(sequencer.add_nulls(0, 4));
  ok(sequencer.add_nulls(2, 3));
  Recorder recorder;
  REQUIRE(sequencer.deliver_stable(all_received(sequencer), recorder.fn()) == 4);
  REQUIRE(recorder.payloads() == std::vector<std::string>{"b0", "b1", "b2", "b3"});
  // Everything up to sender 2's slot 3 (sequence 11) is decided.
  REQUIRE(sequencer.next_sequence() == 11);
  REQUIRE(sequencer.pending_entries() == 0);
  REQUIRE(sequencer.last_version() == make_version(ViewId{1}, 4));
}

TEST_CASE("Timestamps follow max(previous + 1, carried), so they strictly increase") {
  Sequencer sequencer(2, ViewId{1}, 50, 1000, 64);
  ok(sequencer.add_data(0, 40, text("x")));   // carried below the previous view's last: 51
  ok(sequencer.add_data(1, 100, text("y")));  // 100
  ok(sequencer.add_data(0, 90, text("z")));   // stamped before y was seen: 101
  ok(sequencer.add_nulls(1, 1));
  Recorder recorder;
  sequencer.deliver_stable(all_received(sequencer), recorder.fn());
  REQUIRE(recorder.log.size() == 3);
  REQUIRE(recorder.log[0].timestamp == 51);
  REQUIRE(recorder.log[1].timestamp == 100);
  REQUIRE(recorder.log[2].timestamp == 101);
  REQUIRE(sequencer.last_timestamp() == 101);
}

TEST_CASE("A callee that stops delivery stops it after the current update") {
  Sequencer sequencer(1, ViewId{1}, 0, 1000, 64);
  for (int i = 0; i < 3; ++i) ok(sequencer.add_data(0, 1, text("m")));
  int calls = 0;
  auto stop_after_first = [&calls](const SequencedDelivery&) { return ++calls < 1; };
  REQUIRE(sequencer.deliver_stable(std::vector<std::uint64_t>{3}, stop_after_first) == 1);
  REQUIRE(sequencer.delivered_data() == 1);
  REQUIRE(sequencer.pending_entries() == 2);
}

TEST_CASE("Ragged trim delivers exactly the trimmed slots in sequence order") {
  Sequencer sequencer(3, ViewId{1}, 0, 1000, 64);
  for (int k = 0; k < 3; ++k) ok(sequencer.add_data(0, 1, text(fmt::format("a{}", k))));
  ok(sequencer.add_data(1, 1, text("b0")));
  for (int k = 0; k < 2; ++k) ok(sequencer.add_data(2, 1, text(fmt::format("c{}", k))));
  Recorder recorder;
  // Nothing stable yet beyond sequence 0.
  REQUIRE(sequencer.deliver_stable(std::vector<std::uint64_t>{1, 0, 0}, recorder.fn()) == 1);
  // The trim keeps a0..a2, b0 and c0 (not c1), delivered in sequence order.
  auto trimmed = sequencer.deliver_trim(std::vector<std::uint64_t>{3, 1, 1}, recorder.fn());
  REQUIRE(trimmed.is_ok());
  REQUIRE(*trimmed == 4);
  REQUIRE(recorder.payloads() == std::vector<std::string>{"a0", "b0", "c0", "a1", "a2"});
  REQUIRE(sequencer.last_version() == make_version(ViewId{1}, 5));

  Sequencer short_of(2, ViewId{1}, 0, 1000, 64);
  ok(short_of.add_data(0, 1, text("a")));
  auto refused = short_of.deliver_trim(std::vector<std::uint64_t>{2, 0}, recorder.fn());
  REQUIRE(refused.status().code() == Code::out_of_range);
  REQUIRE(short_of.delivered_data() == 0);
}

TEST_CASE("A large message counts as received only once its body is there") {
  Sequencer sequencer(2, ViewId{1}, 0, 1000, 64);
  ok(sequencer.add_large(0, 5, /*rdmc_index=*/0, 4));
  ok(sequencer.add_data(0, 6, text("after")));
  REQUIRE(sequencer.announced_slots(0) == 2);
  REQUIRE(sequencer.received_slots(0) == 0);
  REQUIRE(sequencer.complete_large(0, 0, text("abc")).code() == Code::corruption);  // size
  REQUIRE(sequencer.complete_large(0, 0, text("body")).is_ok());
  REQUIRE(sequencer.received_slots(0) == 2);
  REQUIRE(sequencer.complete_large(0, 0, text("body")).code() == Code::corruption);  // again

  // A body may arrive before its descriptor.
  REQUIRE(sequencer.complete_large(1, 0, text("early")).is_ok());
  REQUIRE(sequencer.complete_large(1, 0, text("early")).code() == Code::corruption);
  ok(sequencer.add_large(1, 7, 0, 5));
  REQUIRE(sequencer.received_slots(1) == 1);
  ok(sequencer.add_nulls(1, 1));
  Recorder recorder;
  sequencer.deliver_stable(all_received(sequencer), recorder.fn());
  REQUIRE(recorder.payloads() == std::vector<std::string>{"body", "early", "after"});
}

TEST_CASE("Any arrival interleaving and stability schedule yields the same delivery") {
  // Two members receive the same per-sender streams in different interleavings and learn of
  // stability at different times; both must deliver exactly the reference order.
  for (std::uint64_t seed = 1; seed <= squall::testing::seed_count(300); ++seed) {
    fabric::SimRandom random(seed);
    std::size_t senders = random.between(1, 6);
    struct Message { bool null; std::uint64_t count; HlcTimestamp ts; std::string payload; };
    std::vector<std::vector<Message>> streams(senders);
    std::vector<std::uint64_t> slots(senders, 0);
    std::vector<std::pair<std::uint64_t, std::string>> reference;  // (sequence, payload)
    for (std::size_t s = 0; s < senders; ++s) {
      std::size_t count = random.below(30);
      for (std::size_t i = 0; i < count; ++i) {
        if (random.below(3) == 0) {
          std::uint64_t nulls = random.between(1, 5);
          streams[s].push_back({true, nulls, 0, ""});
          slots[s] += nulls;
        } else {
          std::string payload = fmt::format("{}:{}", s, i);
          streams[s].push_back({false, 1, random.below(1000), payload});
          reference.emplace_back(slots[s] * senders + s, payload);
          ++slots[s];
        }
      }
    }
    std::sort(reference.begin(), reference.end());
    // Only slots below the round where every sender is present are ever stable.
    std::uint64_t frontier = UINT64_MAX;
    for (std::size_t s = 0; s < senders; ++s) frontier = std::min(frontier, slots[s] * senders + s);
    std::vector<std::string> expected;
    for (const auto& [sequence, payload] : reference) {
      if (sequence < frontier) expected.push_back(payload);
    }
    std::vector<std::vector<Delivered>> logs;
    for (int member = 0; member < 2; ++member) {
      Sequencer sequencer(senders, ViewId{1}, 0, 1000, 64);
      Recorder recorder;
      std::vector<std::size_t> next(senders, 0);
      bool more = true;
      while (more) {
        more = false;
        std::size_t s = random.below(senders);
        if (next[s] < streams[s].size()) {
          const Message& m = streams[s][next[s]++];
          if (m.null) {
            ok(sequencer.add_nulls(s, m.count));
          } else {
            ok(sequencer.add_data(s, m.ts, text(m.payload)));
          }
        }
        for (std::size_t t = 0; t < senders; ++t) more = more || next[t] < streams[t].size();
        if (random.below(4) == 0 || !more) {
          std::vector<std::uint64_t> stable = all_received(sequencer);
          for (auto& count : stable) count = more ? random.below(count + 1) : count;
          sequencer.deliver_stable(stable, recorder.fn());
        }
      }
      logs.push_back(recorder.log);
      INFO("seed " << seed << " member " << member);
      REQUIRE(recorder.payloads() == expected);
    }
    REQUIRE(logs[0] == logs[1]);
  }
}

TEST_CASE("A sender breaking the protocol is refused, never trusted") {
  Sequencer sequencer(2, ViewId{1}, 0, /*max_data_per_sender=*/2, 4);
  ok(sequencer.add_data(0, 1, text("a")));
  ok(sequencer.add_large(0, 1, 0, 3));
  // A third message exceeds the sender's share of the view's versions.
  REQUIRE(sequencer.add_data(0, 1, text("c")).code() == Code::corruption);
  REQUIRE(sequencer.add_large(0, 1, 1, 3).code() == Code::corruption);
  // Null batches: empty, or far past any honest stream.
  REQUIRE(sequencer.add_nulls(1, 0).code() == Code::corruption);
  REQUIRE(sequencer.add_nulls(1, Sequencer::kMaxSlots + 1).code() == Code::corruption);
  ok(sequencer.add_nulls(1, Sequencer::kMaxSlots - 1));
  REQUIRE(sequencer.add_nulls(1, 2).code() == Code::corruption);
  // A body whose size disagrees with the descriptor that follows it.
  ok(sequencer.complete_large(1, 5, text("xyz")));
  Sequencer other(2, ViewId{1}, 0, 2, 4);
  ok(other.complete_large(1, 0, text("xyz")));
  REQUIRE(other.add_large(1, 1, 0, 4).code() == Code::corruption);
  // Early bodies are bounded.
  Sequencer bounded(1, ViewId{1}, 0, 10, 2);
  ok(bounded.complete_large(0, 0, text("a")));
  ok(bounded.complete_large(0, 1, text("b")));
  REQUIRE(bounded.complete_large(0, 2, text("c")).code() == Code::would_block);
  REQUIRE(sequencer.received_slots(0) == 1);  // the large one still lacks its body
}
