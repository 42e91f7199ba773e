// Internal state of the simulated fabric, shared by SimNetwork and SimTransport.
// Not part of the public API: include fabric/sim_network.hpp instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "common/bytes.hpp"
#include "fabric/transport.hpp"

namespace squall::fabric::sim_detail {

constexpr std::uint32_t kNoNode = std::numeric_limits<std::uint32_t>::max();
// A Close sent before the closing side learned the peer's incarnation matches any.
constexpr std::uint32_t kAnyIncarnation = std::numeric_limits<std::uint32_t>::max();

enum class PacketKind : std::uint8_t { hello, close, write, message, ack };

// One operation travelling on a directed link. Payload bytes (write snapshot or message) live
// in the link's arena at [payload_position, payload_position + length) (logical positions).
struct Packet {
  PacketKind kind = PacketKind::write;
  std::uint8_t torn_stage = 0;      // write: 0 = untouched, 1 = first piece applied
  bool torn_low_first = true;       // write: which piece of a torn write lands first
  bool has_immediate = false;
  std::uint32_t source_incarnation = 0;
  std::uint32_t target_incarnation = 0;
  RegionId region = 0;
  std::uint64_t due_us = 0;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::uint64_t torn_split = 0;     // write: bytes in the low piece; 0 = not torn
  std::uint64_t context = 0;
  std::uint64_t immediate = 0;
  std::uint64_t payload_position = 0;
  // write: read the source here when the write lands instead of using the post-time snapshot
  // (only while the source node is still the same live incarnation).
  const std::byte* late_source = nullptr;
};

// A directed link src -> dst: a FIFO of packets with non-decreasing due times, and the byte
// arena holding their payloads. At most one heap entry per link is live (scheduled_sequence).
struct Link {
  std::uint32_t source = kNoNode;
  std::uint32_t target = kNoNode;
  std::deque<Packet> queue;
  Bytes arena;
  std::uint64_t arena_base = 0;     // logical position of arena[0]
  std::uint64_t last_due_us = 0;    // due time of the latest packet ever queued
  std::uint64_t scheduled_sequence = 0;  // 0: no live heap entry
  std::uint32_t operations_in_flight = 0;  // writes + messages queued (acks excluded)
  // A queued write reads its source late, so every later write on the link must too: a NIC
  // reads the sources of one queue in order. Cleared when the link drains.
  bool late_reads = false;
  bool cut = false;                 // partitioned
  std::uint64_t cut_epoch = 0;      // bumped by every partition() of this pair
};

enum class PeerStateKind : std::uint8_t { none, connecting, connected, failed };

// One node's view of one peer connection.
struct PeerState {
  PeerStateKind state = PeerStateKind::none;
  std::uint32_t remote_incarnation = 0;   // valid when connected
  bool hello_stored = false;              // the peer asked to connect before we did
  std::uint32_t stored_incarnation = 0;
  std::deque<std::uint64_t> outstanding;  // contexts of signalled writes awaiting their ack
  // Region sizes the peer had registered when the connection formed (the "remote keys").
  std::vector<std::pair<RegionId, std::uint64_t>> remote_regions;
};

enum class EntryKind : std::uint8_t { link, task };

// A heap entry: ordered by (time_us, sequence); sequence numbers are unique and increasing, so
// simultaneous events run in the order they were scheduled.
struct Entry {
  std::uint64_t time_us = 0;
  std::uint64_t sequence = 0;
  std::uint32_t index = 0;        // link index or task index
  std::uint32_t generation = 0;   // task generation (stale when the task was reused)
  EntryKind kind = EntryKind::link;
};

struct EntryLater {
  bool operator()(const Entry& a, const Entry& b) const {
    if (a.time_us != b.time_us) return a.time_us > b.time_us;
    return a.sequence > b.sequence;
  }
};

enum class TaskKind : std::uint8_t { timer, detect_failure, partition_timeout };

struct Task {
  TaskKind kind = TaskKind::timer;
  bool live = false;
  std::uint32_t generation = 0;
  std::uint32_t owner = kNoNode;          // timer: owning node index, or kNoNode
  std::uint32_t owner_incarnation = 0;
  std::uint32_t first = kNoNode;          // detect: observer; partition: one end
  std::uint32_t second = kNoNode;         // detect: failed node; partition: other end
  std::uint64_t epoch = 0;                // detect: failed incarnation; partition: cut epoch
  std::function<void()> callback;         // timer only
};

}  // namespace squall::fabric::sim_detail
