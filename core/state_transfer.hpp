// StateTransfer: bringing a replica that is new to a shard up to the shard's state at the start
// of the current view (docs/core.md, "State transfer").
//
// In a new view, a member that serves a shard it did not serve (synced) in the previous view —
// a joiner, or a survivor the assignment moved — holds its shard group's delivery
// (OrderedGroupOptions::hold_delivery) and pulls the state from a *source*: the first member of
// the shard in the new view that served it in the previous view (others in that order if a
// source answers that it has no state itself). Over the view's transport (two-sided messages of
// at most max_message_bytes), the receiver tells its applied version; the source answers with
// a plan: the log suffix when its log reaches back that far (StateMachine::read_log), else a
// checkpoint (make_checkpoint), plus what the receiver's group needs to continue the order: the
// version at which the view began, the last timestamp and the persistence floor of the previous
// view. The receiver then pulls the checkpoint and batches of the suffix as byte blobs, chunk by
// chunk (one request, one answer: bounded memory on both sides), installs them
// (StateMachine::install; a suffix is installed on top of the receiver's own checkpoint), and
// reports the shard complete; its owner then releases the group's delivery.
//
// A deterministic state machine without I/O: handle() takes a received message, outbox() holds
// what to send (the owner sends it and clears it), completed() what finished. A malformed,
// oversized or out-of-turn message is an error the owner answers by suspecting the peer; a
// source that fails mid-transfer is a failure like any other (the view changes, the receiver
// starts again from the next view's source). Not thread-safe: the progress thread owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "common/bytes.hpp"
#include "common/hlc.hpp"
#include "common/ids.hpp"
#include "common/status.hpp"
#include "common/version.hpp"
#include "core/state_machine.hpp"

namespace squall::core {

// First byte of every state-transfer message (RDMC control messages start with 0xD3).
inline constexpr std::uint8_t kStateTransferTag = 0xE7;
inline constexpr std::size_t kTransferHeaderBytes = 16;
// Overhead of one update in a suffix blob: version, timestamp, sender, payload length.
inline constexpr std::size_t kTransferUpdateHeaderBytes = 24;

// Kinds are on the wire: never renumber.
enum class TransferKind : std::uint8_t {
  start = 1,          // receiver -> source: value = receiver's applied version
  plan = 2,           // source -> receiver
  log_request = 3,    // receiver -> source: value = suffix wanted after this version
  batch = 4,          // source -> receiver: a suffix batch blob is ready
  chunk_request = 5,  // receiver -> source: value = offset in the current blob
  chunk = 6,          // source -> receiver: value = offset, then bytes
  not_ready = 7,      // source -> receiver: it has no state of the shard to give
};

// One message. Layout (little-endian): tag:u8 (0xE7) kind:u8 reserved:u16 (0) shard:u32
// view:u32 reserved:u32 (0), then the body of the kind:
//   start, log_request, chunk_request: value:u64
//   plan:      checkpoint:u8 (0|1) reserved:u8[7] (0) view_start:u64 last_timestamp:u64
//              persisted_floor:u64 blob_bytes:u64 checkpoint_version:u64 checkpoint_timestamp:u64
//   batch:     blob_bytes:u64 more:u8 (0|1) reserved:u8[7] (0)
//   chunk:     value:u64 (offset) bytes (the rest, at least 1)
//   not_ready: nothing
struct TransferMessage {
  TransferKind kind = TransferKind::start;
  ShardId shard{};
  ViewId view{};
  std::uint64_t value = 0;
  // plan
  bool checkpoint = false;
  Version view_start = 0;          // the shard's version when the view began
  HlcTimestamp last_timestamp = 0;  // the previous view's last delivered timestamp
  Version persisted_floor = 0;     // the previous view's persistence frontier
  std::uint64_t blob_bytes = 0;    // plan (checkpoint state), batch (suffix blob)
  Version checkpoint_version = 0;
  HlcTimestamp checkpoint_timestamp = 0;
  bool more = false;               // batch: more suffix after this one
  Bytes bytes{};                   // chunk
  bool operator==(const TransferMessage&) const = default;
};

Bytes encode_transfer(const TransferMessage& message);
// corruption for anything but exactly one well-formed message (never reads out of bounds).
Result<TransferMessage> decode_transfer(std::span<const std::byte> message);
bool is_transfer_message(std::span<const std::byte> message);

// A suffix batch as a blob: count:u32 then per update version:u64 timestamp:u64 sender:u32
// length:u32 payload.
Bytes encode_update_batch(std::span<const LoggedUpdate> updates);
// corruption unless well-formed with versions strictly ascending in (after, up_to].
Result<std::vector<LoggedUpdate>> decode_update_batch(std::span<const std::byte> blob,
                                                      Version after, Version up_to);

struct StateTransferOptions {
  std::size_t max_message_bytes = 64 * 1024;  // the transport's; > kTransferHeaderBytes + 8
  std::uint64_t max_blob_bytes = 1ULL << 30;  // largest checkpoint or suffix batch accepted
  std::size_t batch_bytes = 1 << 20;          // payload asked of read_log per batch
  std::uint64_t max_buffered_bytes = 64ULL << 20;  // suffix held before installing a part
};

// How this member's group of a shard began the current view.
struct ShardStart {
  bool synced = false;        // it holds the shard's state (else it receives it itself)
  Version version = 0;        // the state machine's applied version when the view began
  HlcTimestamp last_timestamp = 0;
  Version persisted_floor = 0;
};

// A finished transfer: what the receiver's group continues from.
struct TransferDone {
  ShardId shard{};
  HlcTimestamp last_timestamp = 0;
  Version persisted_floor = 0;
  Version version = 0;  // the state machine's applied version now
  bool lost = false;  // no source had the state: the group continues from the local state
};

class StateTransfer {
 public:
  StateTransfer(ViewId view, NodeId self, StateTransferOptions options);

  // Source side: this member serves `shard` and began the view as `start`; `machine` must
  // outlive the transfer. Call before handle() sees requests for the shard.
  void serve(ShardId shard, ShardStart start, StateMachine& machine);
  // Receiver side: pull `shard` from `sources` (in order; empty: nothing to pull from, done at
  // once as lost).
  void receive(ShardId shard, std::vector<NodeId> sources, StateMachine& machine);

  // A message from `peer`. Errors (the owner suspects the peer): malformed, for a shard or view
  // it has no business with, out of turn, or over the limits.
  Status handle(NodeId peer, std::span<const std::byte> message);

  std::vector<std::pair<NodeId, Bytes>>& outbox() { return outbox_; }
  std::vector<TransferDone>& completed() { return completed_; }
  bool receiving(ShardId shard) const { return receivers_.contains(shard.value); }
  std::size_t receiving_count() const { return receivers_.size(); }
  std::uint64_t bytes_received() const { return bytes_received_; }
  std::uint64_t checkpoints_installed() const { return checkpoints_installed_; }

 private:
  struct Receiver {
    StateMachine* machine = nullptr;
    std::vector<NodeId> sources;
    std::size_t source = 0;         // index into sources
    bool planned = false;
    bool checkpoint = false;        // the current blob is the checkpoint (else a batch)
    bool more = false;              // the current batch is not the last
    Version view_start = 0;
    HlcTimestamp last_timestamp = 0;
    Version persisted_floor = 0;
    Checkpoint pending_checkpoint;  // version and timestamp of the incoming checkpoint
    std::uint64_t blob_bytes = 0;
    Bytes blob;
    Version after = 0;               // the batch in flight follows this version
    std::vector<LoggedUpdate> buffered;
    std::uint64_t buffered_bytes = 0;
  };
  struct Source {
    StateMachine* machine = nullptr;
    ShardStart start;
  };
  struct Session {  // a receiver's transfer at this source
    Bytes blob;
  };

  Status handle_source(NodeId peer, const TransferMessage& message);
  Status handle_receiver(NodeId peer, TransferMessage& message);
  Status on_plan(ShardId shard, Receiver& receiver, const TransferMessage& message);
  Status on_chunk(ShardId shard, Receiver& receiver, const TransferMessage& message);
  Status blob_complete(ShardId shard, Receiver& receiver);
  Status install_buffered(Receiver& receiver);
  void ask_next_source(ShardId shard, Receiver& receiver);
  void request_suffix(ShardId shard, Receiver& receiver);
  void finish(ShardId shard, Receiver& receiver, bool lost);
  void send(NodeId peer, TransferMessage message);
  Status answer_start(NodeId peer, ShardId shard, Source& source, Version applied);
  Status answer_log(NodeId peer, ShardId shard, Source& source, Version after);

  ViewId view_;
  NodeId self_;
  StateTransferOptions options_;
  std::map<std::uint32_t, Receiver> receivers_;                    // by shard
  std::map<std::uint32_t, Source> sources_;                        // by shard
  std::map<std::pair<std::uint32_t, std::uint32_t>, Session> sessions_;  // (peer, shard)
  std::vector<std::pair<NodeId, Bytes>> outbox_;
  std::vector<TransferDone> completed_;
  std::uint64_t bytes_received_ = 0;
  std::uint64_t checkpoints_installed_ = 0;
};

}  // namespace squall::core
