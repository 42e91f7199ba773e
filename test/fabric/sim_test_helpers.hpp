// Helpers shared by the simulated-fabric tests.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include <catch2/catch.hpp>

#include "fabric/sim_network.hpp"

namespace squall::fabric::test {

constexpr RegionId kRegion = 1;

inline NodeId node_id(std::uint32_t value) { return NodeId{value}; }

inline std::vector<Event> drain(SimTransport& transport) {
  std::vector<Event> events;
  while (transport.poll(events, 64) > 0) {
  }
  return events;
}

inline std::uint64_t load_u64(const std::vector<std::byte>& memory, std::size_t offset) {
  std::uint64_t value = 0;
  std::memcpy(&value, memory.data() + offset, sizeof value);
  return value;
}

inline void store_u64(std::vector<std::byte>& memory, std::size_t offset, std::uint64_t value) {
  std::memcpy(memory.data() + offset, &value, sizeof value);
}

inline std::size_t count_kind(const std::vector<Event>& events, EventKind kind) {
  std::size_t count = 0;
  for (const Event& event : events) count += event.kind == kind ? 1 : 0;
  return count;
}

// A network of nodes 1..n, each with one region of `region_bytes`, all connected pairwise.
// Memory is 8-byte aligned (vector of u64) and exposed as bytes.
class Cluster {
 public:
  Cluster(std::uint32_t nodes, std::size_t region_bytes, SimOptions options = {})
      : network(options), words_(nodes, std::vector<std::uint64_t>(region_bytes / 8)) {
    for (std::uint32_t i = 0; i < nodes; ++i) {
      SimTransport& transport = network.add_node(node_id(i + 1));
      auto& words = words_[i];
      std::span<std::byte> bytes(reinterpret_cast<std::byte*>(words.data()), words.size() * 8);
      REQUIRE(transport.register_region(kRegion, bytes).is_ok());
    }
  }

  SimTransport& at(std::uint32_t id) { return network.node(node_id(id)); }
  std::span<std::byte> memory(std::uint32_t id) {
    auto& words = words_[id - 1];
    return {reinterpret_cast<std::byte*>(words.data()), words.size() * 8};
  }
  std::uint64_t word(std::uint32_t id, std::size_t index) const { return words_[id - 1][index]; }
  void set_word(std::uint32_t id, std::size_t index, std::uint64_t value) {
    words_[id - 1][index] = value;
  }

  // Adds every pair and runs until all connections are up; drains the connect events.
  void connect_all() {
    const auto count = static_cast<std::uint32_t>(words_.size());
    for (std::uint32_t a = 1; a <= count; ++a) {
      for (std::uint32_t b = 1; b <= count; ++b) {
        if (a != b) REQUIRE(at(a).add_peer(node_id(b), {}).is_ok());
      }
    }
    network.run_until_idle(100'000);
    for (std::uint32_t a = 1; a <= count; ++a) {
      const auto events = drain(at(a));
      at(a).take_activity();
      REQUIRE(count_kind(events, EventKind::peer_connected) == count - 1);
      for (std::uint32_t b = 1; b <= count; ++b) {
        if (a != b) REQUIRE(at(a).connected(node_id(b)));
      }
    }
  }

  // An RMA write of `length` bytes from `from`'s region to `to`'s region at the same offset.
  Status write(std::uint32_t from, std::uint32_t to, std::uint64_t offset, std::uint64_t length,
               std::uint64_t context = 0, std::optional<std::uint64_t> immediate = {}) {
    WriteRequest request;
    request.peer = node_id(to);
    request.local_region = kRegion;
    request.local_offset = offset;
    request.remote_region = kRegion;
    request.remote_offset = offset;
    request.length = length;
    request.context = context;
    request.immediate = immediate;
    return at(from).write(request);
  }

  SimNetwork network;

 private:
  std::vector<std::vector<std::uint64_t>> words_;
};

}  // namespace squall::fabric::test
