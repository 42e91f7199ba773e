// LibfabricTransport in one process: two or three transports over the tcp provider on
// loopback, driven by one thread that polls them all. Multi-process behaviour (kill -9, 1 GiB
// of writes) is covered by test/integration/fabric_driver_test.cpp.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "fabric/libfabric.hpp"

namespace squall::fabric {
namespace {

using Clock = std::chrono::steady_clock;
// Never a pass/fail criterion: only keeps a broken build from hanging the suite.
constexpr auto kSafetyTimeout = std::chrono::seconds(30);

struct Node {
  std::unique_ptr<LibfabricTransport> transport;
  std::vector<std::byte> region = std::vector<std::byte>(1 << 20);
  std::vector<std::byte> second = std::vector<std::byte>(4096);
  std::vector<Event> events;
};

LibfabricOptions options_for(std::uint32_t id) {
  LibfabricOptions options;
  options.node_id = NodeId(id);
  options.connect_timeout_ms = 5000;
  options.tx_depth = 16;
  options.rx_depth = 8;
  options.max_message_bytes = 1024;
  return options;
}

std::unique_ptr<Node> make_node(std::uint32_t id, LibfabricOptions options = {}) {
  if (options.node_id == NodeId()) options = options_for(id);
  auto node = std::make_unique<Node>();
  auto created = LibfabricTransport::create(options);
  REQUIRE(created.status().to_string() == "ok");
  node->transport = std::move(created).value();
  REQUIRE(node->transport->register_region(1, node->region).is_ok());
  REQUIRE(node->transport->register_region(2, node->second).is_ok());
  return node;
}

PeerAddress address_of(const Node& node) {
  return {"127.0.0.1", node.transport->bootstrap_port()};
}

// Polls every node until `done` holds; fails (never hangs) after the safety timeout.
void pump(const std::vector<Node*>& nodes, const std::function<bool()>& done) {
  auto deadline = Clock::now() + kSafetyTimeout;
  while (!done()) {
    for (Node* node : nodes) node->transport->poll(node->events, 64);
    if (Clock::now() > deadline) FAIL("no progress within the safety timeout");
  }
}

std::size_t count(const Node& node, EventKind kind) {
  std::size_t n = 0;
  for (const Event& event : node.events) n += event.kind == kind ? 1 : 0;
  return n;
}

void connect(Node& a, Node& b) {
  REQUIRE(a.transport->add_peer(b.transport->self(), address_of(b)).is_ok());
  REQUIRE(b.transport->add_peer(a.transport->self(), address_of(a)).is_ok());
  pump({&a, &b}, [&] {
    return count(a, EventKind::peer_connected) == 1 && count(b, EventKind::peer_connected) == 1;
  });
  a.events.clear();
  b.events.clear();
}

Bytes pattern(std::size_t size, std::uint8_t seed) {
  Bytes bytes(size);
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::byte>(seed + i * 7);
  return bytes;
}

}  // namespace

TEST_CASE("libfabric: options are validated and sockets is refused") {
  LibfabricOptions options;
  REQUIRE(options.validate().is_ok());
  options.provider = "sockets";
  Status refused = options.validate();
  REQUIRE(refused.code() == Code::invalid_argument);
  REQUIRE(refused.message().find("deprecated") != std::string::npos);
  options.provider = "psm3";
  REQUIRE(options.validate().code() == Code::invalid_argument);
  options = {};
  options.tx_depth = 1;
  REQUIRE(options.validate().message().find("tx_depth") != std::string::npos);
  options = {};
  options.tx_depth = 16384;  // valid, but deeper than the tcp provider queues
  auto too_deep = LibfabricTransport::create(options);
  REQUIRE(too_deep.status().code() == Code::not_found);
  REQUIRE(too_deep.status().message().find("tx_depth 16384") != std::string::npos);
  options = {};
  options.domain = "no-such-domain";
  auto created = LibfabricTransport::create(options);
  REQUIRE(created.status().code() == Code::not_found);
  REQUIRE(created.status().message().find("lo") != std::string::npos);
}

TEST_CASE("libfabric: writes, immediates and messages between two transports") {
  auto a = make_node(1);
  auto b = make_node(2);
  connect(*a, *b);

  Bytes data = pattern(5000, 3);
  std::memcpy(a->region.data() + 100, data.data(), data.size());
  WriteRequest write{NodeId(2), 1, 100, 1, 200'000, data.size(), 77, std::nullopt};
  REQUIRE(a->transport->write(write).is_ok());
  WriteRequest notify{NodeId(2), 1, 100, 2, 8, 16, 0, 0xDEADBEEFULL};
  REQUIRE(a->transport->write(notify).is_ok());
  pump({a.get(), b.get()}, [&] {
    return count(*a, EventKind::write_completed) == 1 && count(*b, EventKind::remote_write) == 1;
  });
  REQUIRE(std::memcmp(b->region.data() + 200'000, data.data(), data.size()) == 0);
  REQUIRE(std::memcmp(b->second.data() + 8, data.data(), 16) == 0);
  const Event& completed = a->events.front();
  REQUIRE(completed.context == 77);
  REQUIRE(completed.status.is_ok());
  const Event& remote = b->events.front();
  REQUIRE(remote.peer == NodeId(1));
  REQUIRE(remote.region == 2);
  REQUIRE(remote.offset == 8);
  REQUIRE(remote.length == 16);
  REQUIRE(remote.immediate == 0xDEADBEEFULL);

  // Messages in both directions, more than the receive depth, in order and intact.
  b->events.clear();
  constexpr std::size_t kMessages = 200;
  std::size_t sent = 0;
  pump({a.get(), b.get()}, [&] {
    while (sent < kMessages) {
      Bytes message = pattern(sent * 5 % 1025, static_cast<std::uint8_t>(sent));
      Status status = a->transport->send(NodeId(2), message);
      if (status.code() == Code::would_block) break;
      REQUIRE(status.is_ok());
      ++sent;
    }
    return count(*b, EventKind::message) == kMessages;
  });
  std::size_t index = 0;
  for (const Event& event : b->events) {
    if (event.kind != EventKind::message) continue;
    REQUIRE(event.payload == pattern(index * 5 % 1025, static_cast<std::uint8_t>(index)));
    ++index;
  }
}

TEST_CASE("libfabric: flow control blocks a sender whose peer does not poll") {
  auto a = make_node(1);
  auto b = make_node(2);
  connect(*a, *b);
  Bytes message = pattern(64, 1);
  std::size_t accepted = 0;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    a->transport->poll(a->events, 64);
    Status status = a->transport->send(NodeId(2), message);
    if (status.is_ok()) ++accepted;
    else REQUIRE(status.code() == Code::would_block);
  }
  // b never polled: a may not have more frames outstanding than b's receive buffers.
  REQUIRE(accepted == 8);
  pump({a.get(), b.get()}, [&] { return count(*b, EventKind::message) == accepted; });
}

TEST_CASE("libfabric: invalid requests are refused with reasons") {
  auto a = make_node(1);
  auto b = make_node(2);
  Bytes small(8);
  REQUIRE(a->transport->send(NodeId(2), small).code() == Code::unavailable);
  REQUIRE(a->transport->add_peer(NodeId(1), address_of(*b)).code() == Code::invalid_argument);
  connect(*a, *b);
  REQUIRE(a->transport->register_region(3, small).code() == Code::precondition_failed);
  REQUIRE(a->transport->add_peer(NodeId(2), address_of(*b)).code() == Code::already_exists);
  WriteRequest bad{NodeId(2), 9, 0, 1, 0, 8, 0, std::nullopt};
  REQUIRE(a->transport->write(bad).code() == Code::invalid_argument);
  bad.local_region = 1;
  bad.remote_region = 2;
  bad.remote_offset = 4090;
  REQUIRE(a->transport->write(bad).code() == Code::invalid_argument);
  bad.remote_offset = 0;
  bad.length = 0;
  REQUIRE(a->transport->write(bad).code() == Code::invalid_argument);
  Bytes large(1025);
  REQUIRE(a->transport->send(NodeId(2), large).code() == Code::invalid_argument);
  bad.peer = NodeId(3);
  bad.length = 8;
  REQUIRE(a->transport->write(bad).code() == Code::unavailable);
}

TEST_CASE("libfabric: remove_peer fails the peer once on both sides") {
  auto a = make_node(1);
  auto b = make_node(2);
  connect(*a, *b);
  a->transport->remove_peer(NodeId(2));
  pump({a.get(), b.get()}, [&] {
    return count(*a, EventKind::peer_failed) == 1 && count(*b, EventKind::peer_failed) == 1;
  });
  REQUIRE(a->events.front().status.code() == Code::aborted);
  Bytes message(8);
  REQUIRE(b->transport->send(NodeId(1), message).code() == Code::unavailable);
  // More polling produces no second failure.
  for (int i = 0; i < 100; ++i) {
    a->transport->poll(a->events, 64);
    b->transport->poll(b->events, 64);
  }
  REQUIRE(count(*a, EventKind::peer_failed) == 1);
  REQUIRE(count(*b, EventKind::peer_failed) == 1);

  // Both sides may add each other again: a new connection.
  a->events.clear();
  b->events.clear();
  b->transport->remove_peer(NodeId(1));
  REQUIRE(b->events.empty());
  connect(*a, *b);
  REQUIRE(a->transport->send(NodeId(2), message).is_ok());
  pump({a.get(), b.get()}, [&] { return count(*b, EventKind::message) == 1; });
}

TEST_CASE("libfabric: a destroyed transport is reported as failed by its peers") {
  auto a = make_node(1);
  auto b = make_node(2);
  auto c = make_node(3);
  connect(*a, *b);
  connect(*a, *c);
  connect(*b, *c);
  b.reset();
  pump({a.get(), c.get()}, [&] {
    return count(*a, EventKind::peer_failed) == 1 && count(*c, EventKind::peer_failed) == 1;
  });
  REQUIRE(a->events.back().peer == NodeId(2));
  REQUIRE(c->events.back().peer == NodeId(2));
  Bytes message(8);
  REQUIRE(a->transport->send(NodeId(3), message).is_ok());
  pump({a.get(), c.get()}, [&] { return count(*c, EventKind::message) == 1; });
}

TEST_CASE("libfabric: an unreachable or wrong peer fails without hanging") {
  LibfabricOptions options = options_for(1);
  options.connect_timeout_ms = 300;
  auto a = make_node(1, options);
  auto b = make_node(2);
  // Nobody listens on port 1.
  REQUIRE(a->transport->add_peer(NodeId(7), {"127.0.0.1", 1}).is_ok());
  // Node 2 answers at an address where node 5 was expected.
  REQUIRE(a->transport->add_peer(NodeId(5), address_of(*b)).is_ok());
  pump({a.get(), b.get()}, [&] { return count(*a, EventKind::peer_failed) == 2; });
  for (const Event& event : a->events) {
    if (event.peer == NodeId(7)) REQUIRE(event.status.code() == Code::timed_out);
    if (event.peer == NodeId(5)) REQUIRE(event.status.code() != Code::ok);
  }
  pump({a.get(), b.get()}, [&] { return b->transport->stats().bootstrap_refused >= 1; });
}

}  // namespace squall::fabric
