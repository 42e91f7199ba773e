#include "sst_sim_harness.hpp"

namespace squall::sst::testing {

constexpr fabric::RegionId kSstRegion = 1;

SimMember::SimMember(fabric::SimTransport& endpoint, const HarnessOptions& options,
                     std::vector<NodeId> ids, std::size_t rank)
    : delivered(ids.size()), transport(endpoint) {
  detector_fields = add_failure_detector_fields(schema, ids.size());
  smc_fields = add_smc_fields(schema, ids.size(), options.window, options.payload_bytes);
  std::size_t bytes = Table::memory_bytes(schema, ids.size());
  memory.reset(static_cast<std::byte*>(
      ::operator new[](bytes, std::align_val_t{kCacheLineBytes})));
  REQUIRE_OK(transport.register_region(kSstRegion, {memory.get(), bytes}));
  table = std::make_unique<Table>(schema, ids, rank, std::span(memory.get(), bytes), transport,
                                  kSstRegion);
  detector = std::make_unique<FailureDetector>(
      *table, detector_fields, options.heartbeat_ms, options.failure_timeout_ms,
      [this](std::size_t suspect, const std::string&) {
        suspected_at_us[suspect] = transport.network().now_us();
      });
  smc = std::make_unique<Smc>(
      *table, smc_fields,
      [this](std::size_t sender, std::uint64_t index, std::span<const std::byte> payload) {
        delivered[sender].push_back({index, Bytes(payload.begin(), payload.end())});
      },
      [this](std::size_t sender, const std::string& reason) {
        faults.push_back(reason);
        detector->suspect(sender, reason);
      });
}

void SimMember::tick() {
  std::vector<fabric::Event> events;
  transport.poll(events, 1024);
  for (const fabric::Event& event : events) {
    if (event.kind == fabric::EventKind::peer_connected) table->peer_connected(event.peer);
    if (event.kind == fabric::EventKind::write_completed &&
        (event.context & PushQueue::kContextTag) != 0) {
      table->on_write_completed(event.context, event.status);
    }
    if (event.kind == fabric::EventKind::peer_failed) {
      detector->peer_failed(event.peer, event.status.to_string());
    }
  }
  smc->receive();
  while (next_to_send < outbox.size() && smc->send(outbox[next_to_send]).is_ok()) {
    ++next_to_send;
  }
  smc->flush();
  smc->receive();  // our own new messages
  table->flush();
  detector->tick(transport.network().now_us());
}

SimGroup::SimGroup(fabric::SimOptions sim_options, HarnessOptions group_options)
    : network(sim_options), options(group_options) {
  for (std::size_t rank = 0; rank < options.members; ++rank) {
    ids.push_back(NodeId{static_cast<std::uint32_t>(rank + 1)});
  }
  for (std::size_t rank = 0; rank < options.members; ++rank) {
    members.push_back(std::make_unique<SimMember>(network.add_node(ids[rank]), options, ids, rank));
  }
  for (std::size_t rank = 0; rank < options.members; ++rank) {
    for (std::size_t peer = 0; peer < options.members; ++peer) {
      if (peer != rank) REQUIRE_OK(members[rank]->transport.add_peer(ids[peer], {}));
    }
    arm_tick(rank);
  }
}

void SimGroup::arm_tick(std::size_t rank) {
  network.schedule_after(
      options.tick_us,
      [this, rank] {
        members[rank]->tick();
        arm_tick(rank);
      },
      ids[rank]);
}

Bytes message_content(std::uint64_t seed, std::size_t sender, std::uint64_t index,
                      std::size_t max_bytes) {
  std::uint64_t state = seed * 1'000'003 + sender * 7919 + index;
  std::size_t size = fabric::splitmix64_next(state) % (max_bytes + 1);
  Bytes bytes(size);
  for (std::byte& b : bytes) b = static_cast<std::byte>(fabric::splitmix64_next(state));
  return bytes;
}

}  // namespace squall::sst::testing
