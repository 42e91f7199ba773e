// Transport: what the data planes (SST, SMC, RDMC) need from a network, and nothing more.
//
// Two implementations sit behind this interface: LibfabricTransport (fabric/libfabric_*,
// providers `verbs` and `tcp`) and SimTransport (fabric/sim_*, deterministic, in-process).
// Protocol code is written once against Transport; no libfabric header appears outside fabric/.
//
// Model
// - Memory regions are registered up front, each under a RegionId the application picks (the
//   same id on every node names the same purpose, e.g. 1 = SST table). Regions are fixed for
//   the transport's lifetime; all regions must be registered before the first add_peer() so
//   that every peer learns every region's remote key during connection set-up.
// - write(): one-sided RMA write of bytes of a local region into a peer's region at an offset.
//   Writes from one node to one peer are applied at the peer in the order they were posted,
//   an aligned 8-byte word is never seen torn, and a completion means the bytes are at the
//   peer. A write may carry 64-bit immediate data; then the peer also gets a remote_write
//   event (after the bytes are visible). Writes without immediate data are silent at the peer.
// - send(): a two-sided message of at most max_message_bytes(); messages from one node to one
//   peer arrive in order, and after every write posted before them.
// - poll(): the single place where progress happens and events come out. Not thread-safe:
//   one thread (the node's progress loop) owns a Transport and calls every method.
// - A peer's death (connection loss, CQ error, bootstrap loss, remove_peer) yields exactly one
//   peer_failed event for that peer; afterwards writes/sends to it fail fast with unavailable.
//   Never an abort, never a hang.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "common/ids.hpp"
#include "common/status.hpp"

namespace squall::fabric {

using RegionId = std::uint32_t;

// Where to reach a peer: host and the port of its fabric bootstrap listener.
struct PeerAddress {
  std::string host;
  std::uint16_t port = 0;
};

enum class EventKind : std::uint8_t {
  peer_connected,   // add_peer() completed; writes and sends to `peer` may start
  peer_failed,      // `peer` is gone (status says why); reported once
  write_completed,  // a write posted with a non-zero context completed (status ok or error)
  remote_write,     // a peer wrote into one of our regions with immediate data
  message,          // a two-sided message from `peer`
};

struct Event {
  EventKind kind = EventKind::message;
  NodeId peer;
  Status status;                 // peer_failed: the reason; write_completed: the outcome
  std::uint64_t context = 0;     // write_completed: the context given to write()
  RegionId region = 0;           // remote_write: which local region was written
  std::uint64_t offset = 0;      // remote_write: byte offset of the write in that region
  std::uint64_t length = 0;      // remote_write: bytes written
  std::uint64_t immediate = 0;   // remote_write: the immediate data
  Bytes payload;                 // message: the bytes sent
};

struct WriteRequest {
  NodeId peer;
  RegionId local_region = 0;
  std::uint64_t local_offset = 0;
  RegionId remote_region = 0;
  std::uint64_t remote_offset = 0;
  std::uint64_t length = 0;
  // Non-zero: a write_completed event with this context is produced when the write completes
  // or fails. Zero: unsignalled (failures still surface as peer_failed).
  std::uint64_t context = 0;
  std::optional<std::uint64_t> immediate;  // set: the peer gets a remote_write event
};

class Transport {
 public:
  virtual ~Transport() = default;
  Transport() = default;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  virtual NodeId self() const = 0;

  // Registers `memory` (owned by the caller, alive as long as the transport) as region `id`.
  // Peers may write anywhere inside it. Must precede the first add_peer().
  virtual Status register_region(RegionId id, std::span<std::byte> memory) = 0;

  // Starts connecting to `peer` (asynchronous): a peer_connected or peer_failed event follows.
  // Both sides call add_peer() for each other; the transport resolves who dials.
  virtual Status add_peer(NodeId peer, const PeerAddress& address) = 0;

  // Disconnects `peer`; it is reported as peer_failed (status aborted) if it was connected.
  virtual void remove_peer(NodeId peer) = 0;

  // Posts an RMA write. Errors: invalid_argument (bad region/range), unavailable (peer not
  // connected or failed), would_block (send queue full: poll() and retry).
  virtual Status write(const WriteRequest& request) = 0;

  // Posts a two-sided message (copied; the caller's buffer is free on return).
  virtual Status send(NodeId peer, std::span<const std::byte> message) = 0;

  // Makes progress and appends up to `max_events` events to `out`; returns how many.
  virtual std::size_t poll(std::vector<Event>& out, std::size_t max_events) = 0;

  // The largest message send() accepts.
  virtual std::size_t max_message_bytes() const = 0;
};

}  // namespace squall::fabric
