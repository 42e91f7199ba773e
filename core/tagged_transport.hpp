// TaggedTransport: gives one module's signalled writes contexts that no other module on the
// same Transport can produce, and maps their completions back.
//
// Why: the SST's push queue encodes (chunk id, rank) in its write contexts but not which table
// posted them, so two tables sharing a transport (a node serving several shards) could not
// tell their completions apart and would release each other's staging chunks. Each
// OrderedGroup therefore hands its table this wrapper: writes pass through with the context
// replaced by
//   0xC5 (top byte) | tag (16 bits) | serial (40 bits)
// and the group's handle() asks translate() whether a completion is one of its own. RDMC's
// contexts start with 0xD3 and SST's raw ones with 0x80, so neither can collide with these.
// Everything else is forwarded unchanged. Not thread-safe (the progress thread owns it).
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>

#include "fabric/transport.hpp"
#include "sst/failure_detector.hpp"
#include "sst/table.hpp"

namespace squall::core {

class TaggedTransport final : public fabric::Transport {
 public:
  static constexpr std::uint64_t kPrefix = 0xC5ULL << 56;
  static constexpr std::uint64_t kSerialMask = (1ULL << 40) - 1;

  TaggedTransport(fabric::Transport& base, std::uint16_t tag) : base_(base), tag_(tag) {}

  NodeId self() const override { return base_.self(); }
  Status register_region(fabric::RegionId id, std::span<std::byte> memory) override {
    return base_.register_region(id, memory);
  }
  Status add_peer(NodeId peer, const fabric::PeerAddress& address) override {
    return base_.add_peer(peer, address);
  }
  void remove_peer(NodeId peer) override { base_.remove_peer(peer); }
  Status write(const fabric::WriteRequest& request) override;
  Status send(NodeId peer, std::span<const std::byte> message) override {
    return base_.send(peer, message);
  }
  // Events are polled by the owner from the base transport, never through this wrapper.
  std::size_t poll(std::vector<fabric::Event>& out, std::size_t max_events) override;
  std::size_t max_message_bytes() const override { return base_.max_message_bytes(); }

  // For a write_completed event of a write posted here: the context the module gave (and the
  // mapping is forgotten). nullopt for anything else.
  std::optional<std::uint64_t> translate(const fabric::Event& event);
  // `peer` failed: its writes will never complete; forget them.
  void forget_peer(NodeId peer);
  std::size_t outstanding() const { return outstanding_.size(); }

 private:
  struct Posted {
    NodeId peer;
    std::uint64_t context = 0;
  };

  fabric::Transport& base_;
  std::uint16_t tag_;
  std::uint64_t next_serial_ = 0;
  std::unordered_map<std::uint64_t, Posted> outstanding_;
};

// The SST side of a group's event handling, shared by every table that runs over a
// TaggedTransport: connections reach the table, failures the detector, and write completions
// whose context belongs to this transport's tag reach the table's push queue. Returns true
// when the event was consumed (a completion of ours).
bool handle_sst_event(const fabric::Event& event, TaggedTransport& transport,
                      sst::Table& table, sst::FailureDetector& detector);

}  // namespace squall::core
