// fabric_node: one node of the multi-process LibfabricTransport tests (driven by
// fabric_driver_test.cpp). Line protocol on stdin/stdout:
//   node  -> driver  PORT <bootstrap port>
//   driver -> node   PEERS <id>:<port> ...
//   node  -> driver  CONNECTED                 (every peer connected)
//   node  -> driver  RESULT key=value ...      (scenario verdict; the node keeps polling)
//   node  -> driver  PEER_FAILED <id> <code>   (scenario kill)
//   driver -> node   EXIT  (or EOF)            then  node -> driver  BYE failures=<n>
//   node  -> driver  ERROR <reason>            and exit status 1, on any failed check
// Scenarios: rma (2 nodes: random RMA writes, final image and hash), messages (n nodes:
// ordered messages after writes, immediates), kill (n nodes: traffic until one is killed).
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/crc32c.hpp"
#include "fabric/libfabric.hpp"

namespace squall::fabric::node {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kMaxMessageBytes = 4096;
// Region 1: rma target image [0, 16 MiB) and, on the writer, source slots [16, 32 MiB).
constexpr std::size_t kRegion1Bytes = 32 << 20;
constexpr std::uint64_t kTargetBytes = 16 << 20;
constexpr std::uint64_t kMaxWriteBytes = 1 << 20;
constexpr std::uint64_t kSourceSlots = 16;
// Region 2: counter pairs [0, 4 KiB) (one 16-byte slot per sender id), then staging rings of
// kStagingPairs pairs per peer for the pairs this node writes.
constexpr std::size_t kRegion2Bytes = 64 << 10;
constexpr std::size_t kStagingAt = 4096;
constexpr std::size_t kStagingPairs = 256;
constexpr std::size_t kMaxPeers = (kRegion2Bytes - kStagingAt) / (kStagingPairs * 16);

// ---- deterministic data ----------------------------------------------------------------

constexpr std::uint64_t kPairCheck = 0x5EED'F00D'CAFE'BABEULL;
constexpr std::uint64_t kCounterContextBase = 1ULL << 40;

std::uint64_t mix(std::uint64_t value) {
  value += 0x9E37'79B9'7F4A'7C15ULL;
  value = (value ^ (value >> 30)) * 0xBF58'476D'1CE4'E5B9ULL;
  value = (value ^ (value >> 27)) * 0x94D0'49BB'1331'11EBULL;
  return value ^ (value >> 31);
}

struct SplitMix {
  std::uint64_t state;
  std::uint64_t next() { return mix(state++); }
};

void fill(std::byte* out, std::size_t length, std::uint64_t seed) {
  SplitMix random{seed};
  std::size_t i = 0;
  for (; i + 8 <= length; i += 8) {
    std::uint64_t word = random.next();
    std::memcpy(out + i, &word, 8);
  }
  std::uint64_t word = random.next();
  std::memcpy(out + i, &word, length - i);
}

// A 16-byte (value, value ^ kPairCheck) pair: a reader can tell a half-applied update.
void put_pair(std::byte* at, std::uint64_t value) {
  std::uint64_t words[2] = {value, value ^ kPairCheck};
  std::memcpy(at, words, sizeof(words));
}
std::optional<std::uint64_t> read_pair(std::byte* at) {
  auto* words = reinterpret_cast<std::uint64_t*>(at);
  std::uint64_t value = std::atomic_ref<std::uint64_t>(words[0]).load(std::memory_order_acquire);
  std::uint64_t check = std::atomic_ref<std::uint64_t>(words[1]).load(std::memory_order_acquire);
  if ((value ^ kPairCheck) != check) return std::nullopt;
  return value;
}

// A node that makes no progress for this long reports an error instead of hanging.
constexpr auto kSafetyTimeout = std::chrono::seconds(90);

struct Args {
  std::uint32_t id = 0;
  std::string scenario;
  std::uint64_t seed = 1;
  std::uint64_t total_bytes = 1ULL << 30;
  std::uint32_t messages = 2000;
  std::uint64_t expect_refused = 0;
  std::uint32_t hello_timeout_ms = 5000;
};

[[noreturn]] void fail(const std::string& why) {
  std::printf("ERROR %s\n", why.c_str());
  std::fflush(stdout);
  std::_Exit(1);
}

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

void check(bool condition, const std::string& what) {
  if (!condition) fail(what);
}

Args parse_args(int argc, char** argv) {
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string key = argv[i];
    std::string value = argv[i + 1];
    if (key == "--id") args.id = static_cast<std::uint32_t>(std::stoul(value));
    else if (key == "--scenario") args.scenario = value;
    else if (key == "--seed") args.seed = std::stoull(value);
    else if (key == "--bytes") args.total_bytes = std::stoull(value);
    else if (key == "--messages") args.messages = static_cast<std::uint32_t>(std::stoul(value));
    else if (key == "--expect-refused") args.expect_refused = std::stoull(value);
    else if (key == "--hello-timeout-ms") args.hello_timeout_ms = std::stoul(value);
    else fail("unknown argument " + key);
  }
  check(args.id != 0 && !args.scenario.empty(), "usage: --id N --scenario NAME [...]");
  return args;
}

// Non-blocking line reader on stdin.
class StdinLines {
 public:
  std::optional<std::string> next(bool wait) {
    while (true) {
      if (auto newline = buffer_.find('\n'); newline != std::string::npos) {
        std::string line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        return line;
      }
      if (eof_) return std::nullopt;
      pollfd descriptor{0, POLLIN, 0};
      if (::poll(&descriptor, 1, wait ? 1000 : 0) <= 0) {
        if (!wait) return std::nullopt;
        continue;
      }
      char chunk[512];
      ssize_t count = ::read(0, chunk, sizeof(chunk));
      if (count <= 0) {
        eof_ = true;
        continue;
      }
      buffer_.append(chunk, static_cast<std::size_t>(count));
    }
  }
  bool eof() const { return eof_ && buffer_.empty(); }

 private:
  std::string buffer_;
  bool eof_ = false;
};

class Runner {
 public:
  explicit Runner(Args args) : args_(std::move(args)) {}

  const Args& args() const { return args_; }
  LibfabricTransport& transport() { return *transport_; }
  std::byte* region1() { return region1_.data(); }
  std::byte* region2() { return region2_.data(); }
  const std::vector<NodeId>& peers() const { return peers_; }

  // Creates the transport, registers both regions, learns the peers and connects.
  void start() {
    LibfabricOptions options;
    options.node_id = NodeId(args_.id);
    options.max_message_bytes = kMaxMessageBytes;
    options.hello_timeout_ms = args_.hello_timeout_ms;
    options.connect_timeout_ms = 20'000;
    auto created = LibfabricTransport::create(options);
    check(created.is_ok(), "create: " + created.status().to_string());
    transport_ = std::move(created).value();
    for (std::size_t at = 0; at < kStagingAt; at += 16) put_pair(region2_.data() + at, 0);
    check(transport_->register_region(1, {region1_.data(), region1_.size()}).is_ok(), "region 1");
    check(transport_->register_region(2, {region2_.data(), region2_.size()}).is_ok(), "region 2");
    say(fmt::format("PORT {}", transport_->bootstrap_port()));
    auto line = stdin_.next(true);
    check(line && line->rfind("PEERS", 0) == 0, "expected a PEERS line");
    std::istringstream words(line->substr(5));
    std::string entry;
    while (words >> entry) {
      auto colon = entry.find(':');
      NodeId peer(static_cast<std::uint32_t>(std::stoul(entry.substr(0, colon))));
      auto port = static_cast<std::uint16_t>(std::stoul(entry.substr(colon + 1)));
      check(transport_->add_peer(peer, {"127.0.0.1", port}).is_ok(), "add_peer");
      peers_.push_back(peer);
    }
    std::size_t connected = 0;
    // Peers connected early may already write or send: keep their events for the scenario.
    handler_ = [&](const Event& event) {
      check(event.kind != EventKind::peer_failed,
            "peer failed while connecting: " + event.status.to_string());
      if (event.kind == EventKind::peer_connected) {
        ++connected;
      } else {
        early_.push_back(event);
      }
    };
    wait("connections", [&] { return connected == peers_.size(); });
    say("CONNECTED");
  }

  void set_handler(std::function<void(const Event&)> handler) {
    handler_ = std::move(handler);
    std::vector<Event> early = std::move(early_);
    early_.clear();
    for (const Event& event : early) handler_(event);
  }

  void pump() {
    events_.clear();
    transport_->poll(events_, 256);
    for (const Event& event : events_) {
      if (event.kind == EventKind::peer_failed) {
        ++failures_;
        if (++failures_by_peer_[event.peer] > 1) ++duplicate_failures_;
      }
      handler_(event);
    }
  }

  void wait(const std::string& what, const std::function<bool()>& done) {
    auto deadline = SteadyClock::now() + kSafetyTimeout;
    while (!done()) {
      pump();
      if (SteadyClock::now() > deadline) fail("timed out waiting for " + what);
    }
  }

  // Prints the verdict, then keeps the transport alive until the driver says EXIT, so no
  // node tears its connections down while a peer still needs them.
  [[noreturn]] void finish(const std::string& result) {
    if (args_.expect_refused > 0) {
      wait("bootstrap refusals", [&] {
        return transport_->stats().bootstrap_refused >= args_.expect_refused;
      });
    }
    say(fmt::format("RESULT {} refused={}", result, transport_->stats().bootstrap_refused));
    std::size_t failures_at_result = failures_;
    handler_ = [](const Event&) {};
    auto deadline = SteadyClock::now() + kSafetyTimeout;
    while (SteadyClock::now() < deadline) {
      pump();
      auto line = stdin_.next(false);
      if ((line && *line == "EXIT") || stdin_.eof()) break;
    }
    say(fmt::format("BYE failures={} failures_after_result={} duplicates={}", failures_,
                    failures_ - failures_at_result, duplicate_failures_));
    transport_.reset();
    std::exit(0);
  }

 private:
  Args args_;
  std::unique_ptr<LibfabricTransport> transport_;
  std::vector<std::byte> region1_ = std::vector<std::byte>(kRegion1Bytes);
  std::vector<std::byte> region2_ = std::vector<std::byte>(kRegion2Bytes);
  std::vector<NodeId> peers_;
  std::vector<Event> events_;
  std::vector<Event> early_;  // arrived before every peer was connected
  std::function<void(const Event&)> handler_;
  StdinLines stdin_;
  std::size_t failures_ = 0;
  std::size_t duplicate_failures_ = 0;
  std::map<NodeId, std::size_t> failures_by_peer_;
};

// Posts a write, polling while the transport says would_block.
void write_blocking(Runner& runner, const WriteRequest& request) {
  auto deadline = SteadyClock::now() + kSafetyTimeout;
  while (true) {
    Status status = runner.transport().write(request);
    if (status.is_ok()) return;
    check(status.code() == Code::would_block, "write: " + status.to_string());
    runner.pump();
    if (SteadyClock::now() > deadline) fail("write stayed blocked");
  }
}

void send_blocking(Runner& runner, NodeId peer, std::span<const std::byte> message) {
  auto deadline = SteadyClock::now() + kSafetyTimeout;
  while (true) {
    Status status = runner.transport().send(peer, message);
    if (status.is_ok()) return;
    check(status.code() == Code::would_block, "send: " + status.to_string());
    runner.pump();
    if (SteadyClock::now() > deadline) fail("send stayed blocked");
  }
}

struct Op {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

// Random writes into [0, kTargetBytes): half small (1..4096 B), half large (up to 1 MiB), at
// any alignment, until total_bytes are covered. Writer and reader derive the same list.
std::vector<Op> make_schedule(std::uint64_t seed, std::uint64_t total_bytes) {
  SplitMix random{mix(seed)};
  std::vector<Op> ops;
  std::uint64_t covered = 0;
  while (covered < total_bytes) {
    Op op;
    bool large = (random.next() & 1) != 0;
    op.length = large ? 4096 + random.next() % (kMaxWriteBytes - 4096 + 1)
                      : 1 + random.next() % 4096;
    op.offset = random.next() % (kTargetBytes - op.length + 1);
    covered += op.length;
    ops.push_back(op);
  }
  return ops;
}

std::uint64_t op_data_seed(std::uint64_t seed, std::uint64_t index) {
  return mix(seed ^ mix(index + 1));
}

std::string text_of(const Event& event) {
  return std::string(reinterpret_cast<const char*>(event.payload.data()), event.payload.size());
}

// ---- rma: 2 nodes; the lower id writes, the higher checks ------------------------------------

void rma_writer(Runner& runner, NodeId peer, const std::vector<Op>& ops) {
  std::uint64_t seed = runner.args().seed;
  std::vector<char> data_done(ops.size(), 0);
  std::vector<char> counter_done(ops.size(), 0);
  std::vector<std::int64_t> slot_user(kSourceSlots, -1);
  std::vector<std::int64_t> pair_user(kStagingPairs, -1);
  std::optional<std::string> reply;
  runner.set_handler([&](const Event& event) {
    if (event.kind == EventKind::message) {
      reply = text_of(event);
      return;
    }
    check(event.kind == EventKind::write_completed && event.status.is_ok(),
          "writer: unexpected event " + event.status.to_string());
    if (event.context >= kCounterContextBase) {
      counter_done[event.context - kCounterContextBase - 1] = 1;
    } else {
      data_done[event.context - 1] = 1;
    }
  });
  std::byte* mirror = runner.region1();
  for (std::uint64_t k = 0; k < ops.size(); ++k) {
    std::uint64_t slot = k % kSourceSlots;
    runner.wait("source slot", [&] {
      return slot_user[slot] < 0 || data_done[static_cast<std::size_t>(slot_user[slot])];
    });
    std::uint64_t source_offset = kTargetBytes + slot * kMaxWriteBytes;
    std::byte* source = runner.region1() + source_offset;
    fill(source, ops[k].length, op_data_seed(seed, k));
    std::memcpy(mirror + ops[k].offset, source, ops[k].length);
    std::optional<std::uint64_t> immediate;
    if (k % 16 == 0) immediate = k;
    write_blocking(runner, {peer, 1, source_offset, 1, ops[k].offset, ops[k].length, k + 1,
                            immediate});
    slot_user[slot] = static_cast<std::int64_t>(k);

    std::size_t pair = k % kStagingPairs;
    runner.wait("staging pair", [&] {
      return pair_user[pair] < 0 || counter_done[static_cast<std::size_t>(pair_user[pair])];
    });
    std::size_t stage_offset = kStagingAt + pair * 16;
    put_pair(runner.region2() + stage_offset, k + 1);
    write_blocking(runner, {peer, 2, stage_offset, 2, 0, 16, kCounterContextBase + k + 1,
                            std::nullopt});
    pair_user[pair] = static_cast<std::int64_t>(k);
  }
  runner.wait("all write completions", [&] {
    return std::all_of(data_done.begin(), data_done.end(), [](char d) { return d != 0; }) &&
           std::all_of(counter_done.begin(), counter_done.end(), [](char d) { return d != 0; });
  });
  std::uint32_t hash = crc32c({mirror, kTargetBytes});
  send_blocking(runner, peer, as_bytes(fmt::format("DONE {} {}", ops.size(), hash)));
  runner.wait("the reader's verdict", [&] { return reply.has_value(); });
  check(*reply == "ACK", "reader answered: " + *reply);
  runner.finish(fmt::format("role=writer writes={} hash={}", ops.size(), hash));
}

void rma_reader(Runner& runner, const std::vector<Op>& ops) {
  std::uint64_t last_counter = 0;
  std::uint64_t torn_pairs = 0;
  std::uint64_t regressions = 0;
  std::uint64_t immediates = 0;
  std::uint64_t next_immediate = 0;
  std::optional<std::string> done;
  std::byte* counter = runner.region2();
  runner.set_handler([&](const Event& event) {
    if (event.kind == EventKind::message) {
      done = text_of(event);
      return;
    }
    check(event.kind == EventKind::remote_write, "reader: unexpected event " +
                                                     event.status.to_string());
    std::uint64_t k = event.immediate;
    check(k == next_immediate && k < ops.size(), fmt::format("immediate {} out of order", k));
    check(event.region == 1 && event.offset == ops[k].offset && event.length == ops[k].length,
          fmt::format("immediate {}: region {} offset {} length {}", k, event.region,
                      event.offset, event.length));
    // Counter k (written before data write k) must be visible when write k's notice is.
    if (auto value = read_pair(counter)) check(*value >= k, "counter behind an immediate");
    next_immediate += 16;
    ++immediates;
  });
  auto* counter_word = reinterpret_cast<std::uint64_t*>(counter);
  runner.wait("the writer's DONE", [&] {
    // The first word alone: it must never move backwards nor past the last write. A torn
    // update of a little-endian counter shows up as a step backwards.
    std::uint64_t word =
        std::atomic_ref<std::uint64_t>(*counter_word).load(std::memory_order_acquire);
    if (word < last_counter || word > ops.size()) ++regressions;
    last_counter = std::max(last_counter, word);
    // The whole pair: a mismatch means a write was seen half applied (tcp can do that).
    if (!read_pair(counter)) ++torn_pairs;
    return done.has_value();
  });
  std::uint32_t hash = crc32c({runner.region1(), kTargetBytes});
  auto expected = fmt::format("DONE {} {}", ops.size(), hash);
  check(*done == expected, fmt::format("writer said '{}', reader computed '{}'", *done, expected));
  check(read_pair(counter) == ops.size(), "final counter");
  check(regressions == 0, fmt::format("the counter went backwards {} times", regressions));
  send_blocking(runner, runner.peers().front(), as_bytes(std::string_view("ACK")));
  runner.finish(fmt::format("role=reader writes={} hash={} match=1 immediates={} "
                            "torn_pairs={} regressions={}",
                            ops.size(), hash, immediates, torn_pairs, regressions));
}

void run_rma(Runner& runner) {
  check(runner.peers().size() == 1, "rma needs exactly one peer");
  auto ops = make_schedule(runner.args().seed, runner.args().total_bytes);
  NodeId peer = runner.peers().front();
  if (NodeId(runner.args().id) < peer) {
    rma_writer(runner, peer, ops);
  } else {
    rma_reader(runner, ops);
  }
}

// ---- messages: every node sends to every peer; each message follows a write ----------------

Bytes expected_message(std::uint64_t seed, NodeId from, NodeId to, std::uint64_t k) {
  std::uint64_t key = mix(seed ^ mix((std::uint64_t{from.value} << 48) ^
                                     (std::uint64_t{to.value} << 32) ^ k));
  Bytes message(key % (kMaxMessageBytes + 1));
  if (!message.empty()) fill(message.data(), message.size(), key);
  return message;
}

struct Link {
  NodeId peer;
  std::uint64_t sent = 0;        // messages posted
  bool wrote_next = false;       // the write preceding message `sent` is posted
  std::uint64_t received = 0;
  std::uint64_t next_immediate = 0;
  std::vector<std::int64_t> pair_user = std::vector<std::int64_t>(kStagingPairs, -1);
};

class MessageExchange {
 public:
  explicit MessageExchange(Runner& runner) : runner_(runner), self_(runner.args().id) {
    check(runner.peers().size() <= kMaxPeers, "too many peers");
    for (NodeId peer : runner.peers()) links_.push_back(Link{peer});
  }

  void run() {
    runner_.set_handler([this](const Event& event) { on_event(event); });
    std::uint64_t total = runner_.args().messages;
    runner_.wait("the message exchange", [&] {
      bool finished = true;
      for (std::size_t index = 0; index < links_.size(); ++index) {
        Link& link = links_[index];
        while (link.sent < total && step(index, link)) {
        }
        finished = finished && link.sent == total && link.received == total;
      }
      return finished && std::all_of(write_done_.begin(), write_done_.end(),
                                     [](const auto& entry) { return entry.second; });
    });
    runner_.finish(fmt::format("messages={} immediates={} torn_pairs={}",
                               total * links_.size(), immediates_, torn_pairs_));
  }

 private:
  // Posts the next write or message to `link`; false when the transport is busy.
  bool step(std::size_t index, Link& link) {
    std::uint64_t k = link.sent;
    if (!link.wrote_next) {
      std::size_t pair = k % kStagingPairs;
      std::int64_t user = link.pair_user[pair];
      if (user >= 0 && !write_done_[context(index, static_cast<std::uint64_t>(user))]) {
        return false;
      }
      std::size_t stage = kStagingAt + (index * kStagingPairs + pair) * 16;
      put_pair(runner_.region2() + stage, k + 1);
      std::optional<std::uint64_t> immediate;
      if (k % 4 == 0) immediate = (std::uint64_t{self_.value} << 32) | k;
      std::uint64_t id = context(index, k);
      Status status = runner_.transport().write(
          {link.peer, 2, stage, 2, self_.value * 16ULL, 16, id, immediate});
      if (status.code() == Code::would_block) return false;
      check(status.is_ok(), "write: " + status.to_string());
      write_done_[id] = false;
      link.pair_user[pair] = static_cast<std::int64_t>(k);
      link.wrote_next = true;
    }
    Bytes message = expected_message(runner_.args().seed, self_, link.peer, k);
    Status status = runner_.transport().send(link.peer, message);
    if (status.code() == Code::would_block) return false;
    check(status.is_ok(), "send: " + status.to_string());
    link.wrote_next = false;
    ++link.sent;
    return true;
  }

  static std::uint64_t context(std::size_t index, std::uint64_t k) {
    return (static_cast<std::uint64_t>(index + 1) << 40) | (k + 1);
  }

  Link& link_of(NodeId peer) {
    for (Link& link : links_) {
      if (link.peer == peer) return link;
    }
    fail(fmt::format("event from unknown peer {}", peer));
  }

  void on_event(const Event& event) {
    if (event.kind == EventKind::write_completed) {
      check(event.status.is_ok(), "write failed: " + event.status.to_string());
      write_done_[event.context] = true;
      return;
    }
    Link& link = link_of(event.peer);
    // The pair the sender wrote before message/immediate k must be visible by now.
    auto written = read_pair(runner_.region2() + std::uint64_t{event.peer.value} * 16);
    if (!written) ++torn_pairs_;
    if (event.kind == EventKind::message) {
      std::uint64_t k = link.received;
      check(event.payload == expected_message(runner_.args().seed, event.peer, self_, k),
            fmt::format("message {} from {} is not what was sent", k, event.peer));
      check(!written || *written >= k + 1,
            fmt::format("message {} from {} overtook the write before it", k, event.peer));
      ++link.received;
      return;
    }
    check(event.kind == EventKind::remote_write,
          fmt::format("unexpected event {} ({})", static_cast<int>(event.kind),
                      event.status.to_string()));
    std::uint64_t k = link.next_immediate;
    check(event.immediate == ((std::uint64_t{event.peer.value} << 32) | k) &&
              event.region == 2 && event.offset == std::uint64_t{event.peer.value} * 16 &&
              event.length == 16,
          fmt::format("immediate {:#x} from {}: region {} offset {} length {}",
                      event.immediate, event.peer, event.region, event.offset, event.length));
    check(!written || *written >= k + 1, "an immediate overtook its write");
    link.next_immediate += 4;
    ++immediates_;
  }

  Runner& runner_;
  NodeId self_;
  std::vector<Link> links_;
  std::map<std::uint64_t, bool> write_done_;
  std::uint64_t immediates_ = 0;
  std::uint64_t torn_pairs_ = 0;
};

// ---- kill: traffic to every peer until one dies; survivors must each see it once ----------

void run_kill(Runner& runner) {
  std::map<NodeId, std::size_t> failures;
  std::map<NodeId, bool> alive_from;
  runner.set_handler([&](const Event& event) {
    if (event.kind == EventKind::peer_failed) {
      ++failures[event.peer];
      say(fmt::format("PEER_FAILED {} {}", event.peer, code_name(event.status.code())));
    } else if (event.kind == EventKind::message && text_of(event) == "alive") {
      alive_from[event.peer] = true;
    }
  });
  Bytes traffic(256);
  std::uint64_t round = 0;
  // Writes with and without immediates plus messages to every live peer, until one fails.
  runner.wait("a peer failure", [&] {
    for (NodeId peer : runner.peers()) {
      if (failures.contains(peer)) continue;
      std::optional<std::uint64_t> immediate;
      if (round % 8 == 0) immediate = round;
      Status wrote = runner.transport().write({peer, 1, 0, 1, 0, 4096, 0, immediate});
      Status sent = runner.transport().send(peer, traffic);
      for (const Status& status : {wrote, sent}) {
        check(status.is_ok() || status.code() == Code::would_block ||
                  status.code() == Code::unavailable,
              "traffic: " + status.to_string());
      }
    }
    ++round;
    return !failures.empty();
  });
  NodeId dead = failures.begin()->first;
  std::vector<NodeId> survivors;
  for (NodeId peer : runner.peers()) {
    if (peer != dead) survivors.push_back(peer);
  }
  check(runner.transport().send(dead, traffic).code() == Code::unavailable,
        "send to a failed peer must fail fast");
  check(runner.transport().write({dead, 1, 0, 1, 0, 8, 0, std::nullopt}).code() ==
            Code::unavailable,
        "write to a failed peer must fail fast");
  for (NodeId peer : survivors) send_blocking(runner, peer, as_bytes(std::string_view("alive")));
  runner.wait("survivors", [&] {
    return std::all_of(survivors.begin(), survivors.end(),
                       [&](NodeId peer) { return alive_from.contains(peer); });
  });
  check(failures.size() == 1, "more than one peer failed");
  runner.finish(fmt::format("failed={} reports={} survivors={}", dead, failures[dead],
                            survivors.size()));
}

}  // namespace
}  // namespace squall::fabric::node

int main(int argc, char** argv) {
  using namespace squall::fabric::node;
  Runner runner(parse_args(argc, argv));
  runner.start();
  const std::string& scenario = runner.args().scenario;
  if (scenario == "rma") run_rma(runner);
  if (scenario == "messages") MessageExchange(runner).run();
  if (scenario == "kill") run_kill(runner);
  fail("unknown scenario " + scenario);
}
