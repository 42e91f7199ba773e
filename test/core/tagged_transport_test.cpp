// TaggedTransport: completions of writes posted through different wrappers on one transport
// come back to the wrapper that posted them, with the original context.
#include <catch2/catch.hpp>

#include <array>

#include "core/tagged_transport.hpp"
#include "fabric/sim_network.hpp"

using namespace squall;
using namespace squall::core;

TEST_CASE("Each wrapper recognises only its own completions, with the original context") {
  fabric::SimNetwork network;
  auto& a = network.add_node(NodeId{1});
  auto& b = network.add_node(NodeId{2});
  std::array<std::byte, 64> memory_a{};
  std::array<std::byte, 64> memory_b{};
  REQUIRE(a.register_region(1, memory_a).is_ok());
  REQUIRE(b.register_region(1, memory_b).is_ok());
  REQUIRE(a.add_peer(NodeId{2}, {}).is_ok());
  REQUIRE(b.add_peer(NodeId{1}, {}).is_ok());
  network.run_until_idle(10'000);
  std::vector<fabric::Event> events;
  a.poll(events, 100);

  TaggedTransport first(a, 1);
  TaggedTransport second(a, 2);
  // Both modules use the same raw context: the wrappers keep them apart.
  fabric::WriteRequest write{.peer = NodeId{2}, .local_region = 1, .local_offset = 0,
                             .remote_region = 1, .remote_offset = 0, .length = 8,
                             .context = 42, .immediate = std::nullopt};
  REQUIRE(first.write(write).is_ok());
  REQUIRE(second.write(write).is_ok());
  write.context = 0;  // unsignalled: passed through untouched, nothing to track
  REQUIRE(first.write(write).is_ok());
  REQUIRE(first.outstanding() == 1);
  network.run_until_idle(10'000);
  events.clear();
  a.poll(events, 100);
  REQUIRE(events.size() == 2);
  int first_hits = 0;
  int second_hits = 0;
  for (const auto& event : events) {
    REQUIRE(event.kind == fabric::EventKind::write_completed);
    REQUIRE((event.context >> 56) == 0xC5);
    if (auto context = first.translate(event)) {
      REQUIRE(*context == 42);
      ++first_hits;
    } else if (auto other = second.translate(event)) {
      REQUIRE(*other == 42);
      ++second_hits;
    }
  }
  REQUIRE(first_hits == 1);
  REQUIRE(second_hits == 1);
  REQUIRE(first.outstanding() == 0);

  // Writes to a peer that failed are forgotten.
  write.context = 7;
  REQUIRE(second.write(write).is_ok());
  second.forget_peer(NodeId{2});
  REQUIRE(second.outstanding() == 0);
}
