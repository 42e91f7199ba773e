// Channels: several LibfabricTransports of one node behind one bootstrap port (a shared
// BootstrapListener), over the tcp provider on loopback, all polled by the test's thread.
// What a node does across overlapping views: one transport per view, one fabric port.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fabric/bootstrap_listener.hpp"
#include "fabric/libfabric.hpp"

namespace squall::fabric {
namespace {

using Clock = std::chrono::steady_clock;
// Never a pass/fail criterion: only keeps a broken build from hanging the suite.
constexpr auto kSafetyTimeout = std::chrono::seconds(30);
// Writes are sourced from the upper half of each region and land in the lower half.
constexpr std::size_t kSourceOffset = 32 * 1024;
// How far apart the two ends of a channel are created in the skew tests.
constexpr auto kSkew = std::chrono::milliseconds(300);

// One transport of one node: the node's view `channel`.
struct Endpoint {
  std::unique_ptr<LibfabricTransport> transport;
  std::vector<std::byte> region = std::vector<std::byte>(64 * 1024);
  std::vector<Event> events;
};

struct Host {
  NodeId id;
  std::shared_ptr<BootstrapListener> listener;
  std::map<std::uint32_t, std::unique_ptr<Endpoint>> channels;
};

std::shared_ptr<BootstrapListener> start_listener(BootstrapListenerOptions options = {}) {
  auto started = BootstrapListener::start("127.0.0.1", 0, options);
  REQUIRE(started.status().to_string() == "ok");
  return std::move(started).value();
}

Host make_host(std::uint32_t id, BootstrapListenerOptions options = {}) {
  return Host{NodeId(id), start_listener(options), {}};
}

LibfabricOptions options_for(const Host& host, std::uint32_t channel) {
  LibfabricOptions options;
  options.node_id = host.id;
  options.channel = channel;
  options.listener = host.listener;
  options.connect_timeout_ms = 10'000;
  options.tx_depth = 16;
  options.rx_depth = 8;
  options.max_message_bytes = 1024;
  return options;
}

Endpoint& open_channel(Host& host, std::uint32_t channel, LibfabricOptions options = {}) {
  if (options.node_id == NodeId()) options = options_for(host, channel);
  auto endpoint = std::make_unique<Endpoint>();
  auto created = LibfabricTransport::create(options);
  REQUIRE(created.status().to_string() == "ok");
  endpoint->transport = std::move(created).value();
  REQUIRE(endpoint->transport->register_region(1, endpoint->region).is_ok());
  Endpoint& result = *endpoint;
  host.channels[channel] = std::move(endpoint);
  return result;
}

PeerAddress address_of(const Host& host) { return {"127.0.0.1", host.listener->port()}; }

void add_peer(Endpoint& endpoint, const Host& peer) {
  REQUIRE(endpoint.transport->add_peer(peer.id, address_of(peer)).is_ok());
}

// Polls every endpoint until `done` holds; fails (never hangs) after the safety timeout.
void pump(const std::vector<Endpoint*>& endpoints, const std::function<bool()>& done) {
  auto deadline = Clock::now() + kSafetyTimeout;
  while (!done()) {
    for (Endpoint* endpoint : endpoints) endpoint->transport->poll(endpoint->events, 64);
    if (Clock::now() > deadline) FAIL("no progress within the safety timeout");
  }
}

// Polls for at least `duration` (the skew tests' delay; not an outcome check).
void pump_for(const std::vector<Endpoint*>& endpoints, Clock::duration duration) {
  auto until = Clock::now() + duration;
  pump(endpoints, [&] { return Clock::now() >= until; });
}

std::size_t count(const Endpoint& endpoint, EventKind kind) {
  std::size_t n = 0;
  for (const Event& event : endpoint.events) n += event.kind == kind ? 1 : 0;
  return n;
}

bool connected(const Endpoint& a, const Endpoint& b) {
  return count(a, EventKind::peer_connected) == 1 && count(b, EventKind::peer_connected) == 1;
}

Bytes pattern(std::size_t size, std::uint8_t seed) {
  Bytes bytes(size);
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::byte>(seed + i * 13);
  return bytes;
}

// Two hosts with channels 1, 2 and 3 open and connected on each.
struct ThreeChannels {
  Host a = make_host(1);
  Host b = make_host(2);

  ThreeChannels() {
    for (std::uint32_t channel = 1; channel <= 3; ++channel) {
      add_peer(open_channel(a, channel), b);
      add_peer(open_channel(b, channel), a);
    }
    pump(all(), [&] {
      for (std::uint32_t channel = 1; channel <= 3; ++channel) {
        if (!connected(at(a, channel), at(b, channel))) return false;
      }
      return true;
    });
    for (Endpoint* endpoint : all()) endpoint->events.clear();
  }

  static Endpoint& at(Host& host, std::uint32_t channel) { return *host.channels.at(channel); }
  std::vector<Endpoint*> all() {
    std::vector<Endpoint*> endpoints;
    for (Host* host : {&a, &b}) {
      for (auto& [channel, endpoint] : host->channels) endpoints.push_back(endpoint.get());
    }
    return endpoints;
  }
};

// Sends one message each way on `channel` and waits for both.
void exchange_messages(ThreeChannels& nodes, std::uint32_t channel) {
  Endpoint& a = ThreeChannels::at(nodes.a, channel);
  Endpoint& b = ThreeChannels::at(nodes.b, channel);
  std::size_t before_a = count(a, EventKind::message);
  std::size_t before_b = count(b, EventKind::message);
  Bytes message = pattern(32, static_cast<std::uint8_t>(channel));
  REQUIRE(a.transport->send(nodes.b.id, message).is_ok());
  REQUIRE(b.transport->send(nodes.a.id, message).is_ok());
  pump(nodes.all(), [&] {
    return count(a, EventKind::message) == before_a + 1 &&
           count(b, EventKind::message) == before_b + 1;
  });
  REQUIRE(a.events.back().payload == message);
  REQUIRE(b.events.back().payload == message);
}

// A port nothing listens on right now: bound to port 0, then closed.
std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  socklen_t length = sizeof(address);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  ::close(fd);
  return ntohs(address.sin_port);
}

}  // namespace

TEST_CASE("channels: listener options are validated") {
  BootstrapListenerOptions options;
  REQUIRE(options.validate().is_ok());
  options.hold_timeout_ms = 0;  // refuse unknown channels at once: allowed
  REQUIRE(options.validate().is_ok());
  options.hello_timeout_ms = 10;
  REQUIRE(options.validate().message().find("hello_timeout_ms") != std::string::npos);
  options = {};
  options.max_pending_inbound = 0;
  auto started = BootstrapListener::start("127.0.0.1", 0, options);
  REQUIRE(started.status().code() == Code::invalid_argument);
}

TEST_CASE("channels: three transports per node on one port, traffic lands in the right one") {
  ThreeChannels nodes;
  for (std::uint32_t channel = 1; channel <= 3; ++channel) {
    REQUIRE(ThreeChannels::at(nodes.a, channel).transport->bootstrap_port() ==
            nodes.a.listener->port());
  }
  // Node 1 dials node 2: node 2's listener handed each channel its own connection.
  REQUIRE(nodes.b.listener->stats().handed_over == 3);
  REQUIRE(nodes.b.listener->stats().bootstrap_refused == 0);

  // A different write and message on each channel, in both directions.
  for (std::uint32_t channel = 1; channel <= 3; ++channel) {
    auto seed = static_cast<std::uint8_t>(channel * 40);
    for (Host* from : {&nodes.a, &nodes.b}) {
      Host& to = from == &nodes.a ? nodes.b : nodes.a;
      Endpoint& source = ThreeChannels::at(*from, channel);
      Bytes data = pattern(4096, seed);
      std::memcpy(source.region.data() + kSourceOffset, data.data(), data.size());
      WriteRequest write{to.id, 1, kSourceOffset, 1, 1000 * channel, data.size(), 0, channel};
      REQUIRE(source.transport->write(write).is_ok());
      REQUIRE(source.transport->send(to.id, pattern(16, seed)).is_ok());
    }
  }
  pump(nodes.all(), [&] {
    for (Endpoint* endpoint : nodes.all()) {
      if (count(*endpoint, EventKind::remote_write) != 1) return false;
      if (count(*endpoint, EventKind::message) != 1) return false;
    }
    return true;
  });
  for (Host* host : {&nodes.a, &nodes.b}) {
    for (std::uint32_t channel = 1; channel <= 3; ++channel) {
      Endpoint& endpoint = ThreeChannels::at(*host, channel);
      auto seed = static_cast<std::uint8_t>(channel * 40);
      Bytes expected = pattern(4096, seed);
      // Landed in this channel's region at this channel's offset, and nowhere else.
      REQUIRE(std::memcmp(endpoint.region.data() + 1000 * channel, expected.data(),
                          expected.size()) == 0);
      for (std::size_t at = 0; at < kSourceOffset; ++at) {
        if (at >= 1000 * channel && at < 1000 * channel + expected.size()) continue;
        if (endpoint.region[at] != std::byte{0}) FAIL("a write landed outside its range");
      }
      for (const Event& event : endpoint.events) {
        REQUIRE(event.kind != EventKind::peer_failed);
        if (event.kind == EventKind::remote_write) REQUIRE(event.immediate == channel);
        if (event.kind == EventKind::message) REQUIRE(event.payload == pattern(16, seed));
      }
    }
  }
}

TEST_CASE("channels: the dialer creates its channel first, the acceptor 300 ms later") {
  Host a = make_host(1);
  Host b = make_host(2);
  Endpoint& early = open_channel(a, 7);
  add_peer(early, b);
  // Node 1's hello reaches node 2's listener, which holds it: node 2 has no channel 7 yet.
  pump({&early}, [&] { return b.listener->stats().held == 1; });
  pump_for({&early}, kSkew);
  Endpoint& late = open_channel(b, 7);
  add_peer(late, a);
  pump({&early, &late}, [&] { return connected(early, late); });
  REQUIRE(count(early, EventKind::peer_failed) == 0);
  REQUIRE(count(late, EventKind::peer_failed) == 0);
  REQUIRE(b.listener->stats().handed_over == 1);
  REQUIRE(b.listener->stats().bootstrap_refused == 0);
}

TEST_CASE("channels: the acceptor creates its channel first, the dialer 300 ms later") {
  Host a = make_host(1);
  Host b = make_host(2);
  Endpoint& early = open_channel(b, 7);
  add_peer(early, a);
  pump_for({&early}, kSkew);
  Endpoint& late = open_channel(a, 7);
  add_peer(late, b);
  pump({&early, &late}, [&] { return connected(early, late); });
  REQUIRE(count(early, EventKind::peer_failed) == 0);
  REQUIRE(count(late, EventKind::peer_failed) == 0);
}

TEST_CASE("channels: a dialer retries a refused connection until the peer's port listens") {
  Host a = make_host(1);
  std::uint16_t port = free_port();
  Endpoint& early = open_channel(a, 3);
  REQUIRE(early.transport->add_peer(NodeId(2), {"127.0.0.1", port}).is_ok());
  pump_for({&early}, kSkew);  // connection refused meanwhile: nothing listens on `port`
  auto started = BootstrapListener::start("127.0.0.1", port);
  REQUIRE(started.status().to_string() == "ok");
  Host b{NodeId(2), std::move(started).value(), {}};
  Endpoint& late = open_channel(b, 3);
  add_peer(late, a);
  pump({&early, &late}, [&] { return connected(early, late); });
  REQUIRE(count(early, EventKind::peer_failed) == 0);
}

TEST_CASE("channels: one live transport per channel on a listener") {
  Host a = make_host(1);
  open_channel(a, 5);
  auto duplicate = LibfabricTransport::create(options_for(a, 5));
  REQUIRE(duplicate.status().code() == Code::already_exists);
  REQUIRE(duplicate.status().message().find("channel 5") != std::string::npos);
  // Once the first is gone, the channel may be served again.
  a.channels.clear();
  auto again = LibfabricTransport::create(options_for(a, 5));
  REQUIRE(again.status().to_string() == "ok");
}

TEST_CASE("channels: destroying one channel's transport leaves the others working") {
  ThreeChannels nodes;
  nodes.b.channels.erase(1);
  Endpoint& orphan = ThreeChannels::at(nodes.a, 1);
  pump(nodes.all(), [&] { return count(orphan, EventKind::peer_failed) == 1; });
  for (std::uint32_t channel = 2; channel <= 3; ++channel) {
    exchange_messages(nodes, channel);
    for (Host* host : {&nodes.a, &nodes.b}) {
      REQUIRE(count(ThreeChannels::at(*host, channel), EventKind::peer_failed) == 0);
    }
  }

  // Node 1 tries channel 1 again: node 2's listener knows it is retired and refuses at once
  // (not held); node 1 keeps retrying until its connect timeout.
  nodes.a.channels.erase(1);
  BootstrapListenerStats before = nodes.b.listener->stats();
  LibfabricOptions options = options_for(nodes.a, 1);
  options.connect_timeout_ms = 500;
  Endpoint& retry = open_channel(nodes.a, 1, options);
  add_peer(retry, nodes.b);
  pump(nodes.all(), [&] { return count(retry, EventKind::peer_failed) == 1; });
  REQUIRE(retry.events.back().status.code() == Code::timed_out);
  BootstrapListenerStats stats = nodes.b.listener->stats();
  REQUIRE(stats.refused_retired > before.refused_retired);
  REQUIRE(stats.held == before.held);  // (the set-up may hold hellos; the retry never is)
  REQUIRE(stats.handed_over == before.handed_over);
  exchange_messages(nodes, 2);
  exchange_messages(nodes, 3);
}

TEST_CASE("channels: a hello for a channel that never registers is refused after the hold") {
  BootstrapListenerOptions hold;
  hold.hold_timeout_ms = 200;
  Host a = make_host(1);
  Host b = make_host(2, hold);
  LibfabricOptions options = options_for(a, 9);
  options.connect_timeout_ms = 1500;
  Endpoint& lonely = open_channel(a, 9, options);
  add_peer(lonely, b);
  pump({&lonely}, [&] { return count(lonely, EventKind::peer_failed) == 1; });
  REQUIRE(lonely.events.back().status.code() == Code::timed_out);
  BootstrapListenerStats stats = b.listener->stats();
  REQUIRE(stats.held >= 1);
  REQUIRE(stats.refused_unclaimed >= 1);
  REQUIRE(stats.refused_retired == 0);
  REQUIRE(stats.handed_over == 0);
}

TEST_CASE("channels: a transport with its own listener refuses other channels at once") {
  Host a{NodeId(1), nullptr, {}};
  Host b{NodeId(2), nullptr, {}};
  LibfabricOptions options = options_for(a, 1);
  options.connect_timeout_ms = 500;
  Endpoint& one = open_channel(a, 1, options);
  Endpoint& two = open_channel(b, 2, options_for(b, 2));
  REQUIRE(two.transport->add_peer(NodeId(1), {"127.0.0.1", one.transport->bootstrap_port()})
              .is_ok());
  REQUIRE(one.transport->add_peer(NodeId(2), {"127.0.0.1", two.transport->bootstrap_port()})
              .is_ok());
  pump({&one, &two}, [&] { return count(one, EventKind::peer_failed) == 1; });
  REQUIRE(one.events.back().status.code() == Code::timed_out);
  REQUIRE(two.transport->stats().bootstrap_refused >= 1);
  REQUIRE(count(two, EventKind::peer_connected) == 0);
}

}  // namespace squall::fabric
