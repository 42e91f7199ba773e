#include "test/rdmc/cluster.hpp"

#include <catch2/catch.hpp>

#include "common/log.hpp"

namespace squall::rdmc::test {

Bytes pattern(std::uint64_t seed, std::size_t size) {
  Bytes bytes(size);
  std::uint64_t state = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (std::size_t i = 0; i < size; ++i) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    bytes[i] = static_cast<std::byte>(state);
  }
  return bytes;
}

Cluster::Cluster(const ClusterOptions& options, const fabric::SimOptions& sim) : network_(sim) {
  // Failure tests fail hundreds of groups on purpose; keep their warnings out of the output.
  logger("rdmc")->set_level(spdlog::level::err);
  std::vector<NodeId> ids;
  const std::uint64_t bytes = region_bytes(options.members, options.window,
                                           options.max_payload_bytes, options.block_size_bytes);
  for (std::uint32_t i = 1; i <= options.members; ++i) {
    auto member = std::make_unique<Member>();
    member->id = NodeId{i};
    member->words.assign((bytes + 7) / 8, 0);
    fabric::SimTransport& transport = network_.add_node(member->id);
    std::span<std::byte> memory(reinterpret_cast<std::byte*>(member->words.data()), bytes);
    REQUIRE(transport.register_region(kRegion, memory).is_ok());
    ids.push_back(member->id);
    members_.push_back(std::move(member));
  }
  connect_all();
  for (auto& member : members_) make_group(*member, options, ids);
}

void Cluster::connect_all() {
  for (auto& a : members_) {
    for (auto& b : members_) {
      if (a != b) REQUIRE(network_.node(a->id).add_peer(b->id, {}).is_ok());
    }
  }
  REQUIRE(network_.run_until_idle(1'000'000));
  for (auto& member : members_) {
    std::vector<fabric::Event> events;
    network_.node(member->id).poll(events, 1'000);
    REQUIRE(events.size() == members_.size() - 1);
    for (const auto& event : events) REQUIRE(event.kind == fabric::EventKind::peer_connected);
  }
}

void Cluster::make_group(Member& member, const ClusterOptions& options,
                         std::vector<NodeId> ids) {
  GroupOptions group;
  group.group_id = 3;
  group.members = std::move(ids);
  group.block_size_bytes = options.block_size_bytes;
  group.algorithm = options.algorithm;
  group.max_payload_bytes = options.max_payload_bytes;
  group.window = options.window;
  group.region = kRegion;
  group.region_memory = {reinterpret_cast<std::byte*>(member.words.data()),
                         region_bytes(options.members, options.window,
                                      options.max_payload_bytes, options.block_size_bytes)};
  GroupCallbacks callbacks;
  Member* self = &member;
  callbacks.delivered = [self](NodeId sender, std::uint64_t seq,
                               std::span<const std::byte> payload) {
    self->deliveries.push_back(Delivery{sender, seq, Bytes(payload.begin(), payload.end())});
  };
  callbacks.sent = [self](std::uint64_t seq) { self->sent.push_back(seq); };
  callbacks.failed = [self](NodeId who, const Status& reason) {
    self->failures.emplace_back(who, reason);
  };
  auto created = Group::create(std::move(group), network_.node(member.id), std::move(callbacks));
  REQUIRE(created.is_ok());
  member.group = std::move(created.value());
}

void Cluster::send_queued(Member& member) {
  while (!member.to_send.empty() && !member.group->stopped()) {
    const auto seq = member.group->send(member.to_send.front());
    if (!seq.is_ok()) {
      REQUIRE(seq.status().code() == Code::would_block);
      return;
    }
    REQUIRE(*seq == member.sent_payloads.size());
    member.sent_payloads.push_back(std::move(member.to_send.front()));
    member.to_send.pop_front();
  }
}

bool Cluster::pump() {
  bool busy = false;
  std::vector<fabric::Event> events;
  for (auto& member : members_) {
    fabric::SimTransport& transport = network_.node(member->id);
    if (!transport.running()) continue;
    events.clear();
    while (transport.poll(events, 64) > 0) {
    }
    busy = busy || !events.empty();
    for (const auto& event : events) member->group->handle(event);
    member->group->flush();
    send_queued(*member);
  }
  return busy;
}

bool Cluster::run(std::uint64_t max_steps) {
  std::uint64_t steps = 0;
  pump();
  while (steps < max_steps) {
    if (network_.step()) {
      ++steps;
      pump();
      continue;
    }
    if (!pump() && !network_.next_event_us()) return true;
  }
  return false;
}

void Cluster::run_steps(std::uint64_t steps) {
  pump();
  for (std::uint64_t i = 0; i < steps && network_.step(); ++i) pump();
}

}  // namespace squall::rdmc::test
