// OrderedGroup: the total order of one shard within one view, at one member.
//
// A deterministic state machine on one SST table (sst/) with SMC slots: the owner's progress
// loop feeds it transport events (handle()) and calls step(now_us) regularly; it never reads
// a clock (time arrives as now_us; timestamps come from the node's HLC, itself on a Clock the
// owner chose), never blocks and never spins. docs/core.md describes the protocol.
//
// - send() queues an update (bounded queue; would_block when full). step() moves queued
//   updates into SMC slots as the SMC window and the delivery window allow, stamping each
//   with the HLC; when idle and behind the others it emits one null batch that brings it
//   level, so idle senders never hold the order back.
// - Each member publishes, per sender, how many slots it holds (gap-free); a slot every live
//   member holds is stable; stable slots are delivered in sequence order to the
//   StateMachine (apply), skipping nulls, with identical versions and timestamps everywhere.
// - Each member publishes its state machine's persisted version; the minimum over the
//   members is the persistence frontier (never moves back); wait_persisted() registers
//   callbacks on it.
// - A suspected member (heartbeat silence, transport failure, malformed slot) wedges the
//   group: no more sends, receives or deliveries; the received counts stay fixed for the
//   ragged trim that the view change computes (deliver_trim()). Persistence keeps being
//   tracked while wedged.
// Not thread-safe: the node's progress thread calls everything.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "common/hlc.hpp"
#include "common/ids.hpp"
#include "common/status.hpp"
#include "common/version.hpp"
#include "core/persistence_frontier.hpp"
#include "core/sequencer.hpp"
#include "core/state_machine.hpp"
#include "core/tagged_transport.hpp"
#include "core/view.hpp"
#include "fabric/transport.hpp"
#include "rdmc/group.hpp"
#include "sst/failure_detector.hpp"
#include "sst/smc.hpp"
#include "sst/table.hpp"

namespace squall::core {

// Updates larger than a slot travel by RDMC (rdmc/group.hpp) in the same total order: the
// RDMC message takes its sender's next slot, the slot carries a descriptor, and the update is
// received (for stability) only once its body has arrived.
struct LargeMessageOptions {
  fabric::RegionId region = 0;   // the RDMC receive region (same id on every member)
  std::uint32_t group_id = 0;    // tells RDMC groups sharing a transport apart
  std::uint64_t block_size_bytes = 1024 * 1024;
  rdmc::Algorithm algorithm = rdmc::Algorithm::binomial_pipeline;
  std::uint64_t max_payload_bytes = 16ULL * 1024 * 1024;  // largest update
  std::uint32_t window = 4;      // large messages in flight per sender
};

struct OrderedGroupOptions {
  ViewId view;
  ShardId shard;                 // for logs
  std::vector<NodeId> members;   // the shard's members in sender-rank order
  NodeId self;                   // one of `members`
  fabric::RegionId sst_region = 0;  // region id of this group's table (same on all members)
  // Tells this group's SST write completions apart from those of other groups and modules on
  // the same transport (core/tagged_transport.hpp): unique per transport, e.g. the shard id.
  std::uint16_t transport_tag = 0;
  std::uint32_t window = 16;     // SMC slots per sender (messages in flight, 1..1024)
  // SMC slot payload, header included; updates up to max_small_payload_bytes() travel in a
  // slot (64 B .. 1 MiB).
  std::uint64_t smc_payload_bytes = 8 * 1024;
  // A sender may put data in its slot k only when every live member has delivered its slot
  // k - delivery_window_slots. 0 = 2 x window. Bounds the undelivered messages a member holds.
  std::uint32_t delivery_window_slots = 0;
  std::size_t send_queue_messages = 1024;             // bound of the local send queue
  std::uint64_t send_queue_bytes = 64ULL * 1024 * 1024;
  std::uint64_t heartbeat_ms = 100;
  std::uint64_t failure_timeout_ms = 1000;
  // Wait for a member's first heartbeat (sst::FailureDetector); 0 = failure_timeout_ms.
  std::uint64_t first_heartbeat_timeout_ms = 0;
  std::size_t max_persistence_waiters = 1 << 16;
  // Carried over from the previous view: the last delivered timestamp of the shard and its
  // persistence frontier (both 0 for the first view).
  HlcTimestamp last_timestamp = 0;
  Version persisted_floor = 0;
  // Data messages one sender may send in this view; 0 = kMaxDataPerView / members, so the
  // view's delivered-data counter cannot overflow 32 bits. Lower values are for tests.
  std::uint64_t max_data_per_sender = 0;
  // Unset: updates must fit a slot.
  std::optional<LargeMessageOptions> large;
  // Start with delivery held: the member receives (and publishes what it holds) but delivers
  // nothing until release_delivery(). For a replica whose state arrives by state transfer
  // (core/state_transfer.hpp); last_timestamp and persisted_floor are then given at release.
  bool hold_delivery = false;

  // invalid_argument with the reason when a field or relation is out of range.
  Status validate() const;
  std::size_t max_small_payload_bytes() const {
    return static_cast<std::size_t>(smc_payload_bytes) - kMessageHeaderBytes;
  }
  // The largest update send() accepts.
  std::uint64_t max_payload_bytes() const {
    return large ? std::max<std::uint64_t>(large->max_payload_bytes, max_small_payload_bytes())
                 : max_small_payload_bytes();
  }
};

// Options for `self`'s group of `shard` in `view`: view, shard, members (the shard's, in
// sender-rank order), self and transport_tag (the shard id) filled in, the rest default.
// The caller still picks region ids (unique per transport) and the multicast settings.
// REQUIRES: shard < view.layout().shards.
OrderedGroupOptions shard_group_options(const View& view, ShardId shard, NodeId self);

struct OrderedGroupCallbacks {
  std::function<void(Version frontier)> persisted;  // the persistence frontier moved
  // A member was suspected (the group is now wedged).
  std::function<void(NodeId member, const std::string& reason)> suspected;
  // The local state machine refused an update (the group is now wedged).
  std::function<void(const Status& reason)> failed;
};

struct OrderedGroupStats {
  std::uint64_t data_sent = 0;
  std::uint64_t null_batches_sent = 0;
  std::uint64_t null_slots_sent = 0;
  std::uint64_t large_sent = 0;
  std::uint64_t delivered = 0;
  // Slots that carried more than one update (docs/core.md, "Packed slots"), and the updates
  // they carried.
  std::uint64_t packed_slots = 0;
  std::uint64_t packed_updates = 0;
};

class OrderedGroup {
 public:
  // Builds the table and registers its memory with `transport` as options.sst_region (and the
  // RDMC region, with options.large): call before the transport's first add_peer(). The
  // owner then connects the members and routes events to handle(). The RDMC group starts
  // once every member is connected. `state_machine` and `clock` must outlive the group.
  static Result<std::unique_ptr<OrderedGroup>> create(OrderedGroupOptions options,
                                                      fabric::Transport& transport,
                                                      StateMachine& state_machine,
                                                      HybridLogicalClock& clock,
                                                      OrderedGroupCallbacks callbacks = {});
  ~OrderedGroup();
  OrderedGroup(const OrderedGroup&) = delete;
  OrderedGroup& operator=(const OrderedGroup&) = delete;

  // Feeds a transport event. Returns true if it was only this group's (a completion of one
  // of its pushes, an RDMC message or write of its RDMC group); peer_connected / peer_failed
  // are acted on and return false, since other modules need them too.
  bool handle(const fabric::Event& event);

  // One round of progress: receive, deliver, send, publish, heartbeat/suspicion.
  void step(std::uint64_t now_us);

  // Queues an update; returns its sender_index (as apply() will see it). Errors:
  // invalid_argument (larger than options().max_payload_bytes(); or, without RDMC, than a
  // slot), would_block (send queue full), unavailable (wedged, or this sender used up its
  // versions of the view: a new view is needed).
  Result<std::uint64_t> send(std::span<const std::byte> payload);

  // Calls `waiter` (from a later step()) once the persistence frontier reaches `version`.
  // would_block when max_persistence_waiters are registered.
  Status wait_persisted(Version version, PersistenceFrontier::Waiter waiter);
  // Fails every waiter with `reason` (shutdown, view change).
  void abort_waiters(const Status& reason) { frontier_.abort_all(reason); }

  // Stops sending, receiving and delivering, and publishes `wedged`. Idempotent.
  void wedge();
  // Ragged trim: delivers exactly the slots below trim[s] of each sender s, in sequence
  // order. REQUIRES: wedged. invalid_argument if trim.size() != size(); out_of_range if
  // this member lacks some of the slots.
  Result<std::size_t> deliver_trim(std::span<const std::uint64_t> trim);

  // Ends a hold (options.hold_delivery): the state machine now holds the shard's state up to
  // at least the end of the previous view. Deliveries build on `last_timestamp` (the previous
  // view's last); updates the state machine already holds (version <= its applied_version()
  // now, a checkpoint taken after this view began) are delivered without apply(). The
  // frontier is raised to `persisted_floor`. REQUIRES: held.
  void release_delivery(HlcTimestamp last_timestamp, Version persisted_floor);
  bool delivery_held() const { return held_; }

  bool wedged() const { return wedged_; }
  ViewId view() const { return options_.view; }
  std::size_t rank() const { return rank_; }
  std::size_t size() const { return options_.members.size(); }
  const OrderedGroupOptions& options() const { return options_; }
  // Slots this member holds per sender (what its SST row publishes).
  std::vector<std::uint64_t> received_slots() const;
  // Whether every live member has published `wedged` (for the view change).
  bool all_wedged() const;
  Version delivered_version() const { return sequencer_.last_version(); }
  HlcTimestamp delivered_timestamp() const { return sequencer_.last_timestamp(); }
  std::uint64_t next_sequence() const { return sequencer_.next_sequence(); }
  Version persisted_frontier() const { return frontier_.value(); }
  std::size_t send_queue_size() const { return queue_.size(); }
  std::uint64_t sent_slots() const { return sent_slots_; }
  const OrderedGroupStats& stats() const { return stats_; }
  const Sequencer& sequencer() const { return sequencer_; }
  bool suspected(std::size_t rank) const { return detector_->suspected(rank); }
  // Whether the RDMC group runs (large messages configured and every member connected).
  bool large_ready() const { return rdmc_ != nullptr; }
  // For the owner's idle policy. activity() grows whenever a step() moved the protocol on
  // (slots received, sent or delivered, persistence advanced); in_flight(): something is
  // under way that the next steps will move (queued or undelivered updates, delivered ones
  // not yet persisted everywhere), so the owner should poll again soon.
  std::uint64_t activity() const { return activity_; }
  bool in_flight() const;

 private:
  struct OrderFields {
    sst::Array<std::uint64_t> received_slots;  // per sender rank
    sst::Scalar<std::uint64_t> next_sequence;  // every sequence below it delivered/skipped
    sst::Scalar<std::uint64_t> persisted_version;
    sst::Scalar<std::uint64_t> wedged;         // 0 or 1
    sst::RowRange block() const;               // all of the above, contiguous
  };
  // Registered regions are page-aligned (the table needs cache-line alignment; NICs like
  // pages).
  static constexpr std::size_t kRegionAlignBytes = 4096;
  struct AlignedDelete {
    void operator()(std::byte* memory) const;
  };
  static std::unique_ptr<std::byte[], AlignedDelete> allocate_region(std::size_t bytes);

  OrderedGroup(OrderedGroupOptions options, std::size_t rank, fabric::Transport& transport,
               StateMachine& state_machine, HybridLogicalClock& clock,
               OrderedGroupCallbacks callbacks);
  Status init();
  Status init_large();
  // Large messages (ordered_group_large.cpp).
  bool handle_large(const fabric::Event& event);
  void start_large();
  bool send_large(const Bytes& payload);
  void on_large_delivered(NodeId sender, std::uint64_t rdmc_index,
                          std::span<const std::byte> payload);
  void on_large_failed(NodeId member, const Status& reason);

  void on_smc_message(std::size_t sender, std::span<const std::byte> message);
  void on_suspected(std::size_t rank, const std::string& reason);
  bool apply(const SequencedDelivery& delivery);
  void receive_and_deliver();
  void send_queued();
  std::size_t send_small();  // sends the queue's front (and what packs with it); how many
  void send_nulls();
  bool delivery_window_open() const;
  std::vector<std::uint64_t> stable_slots() const;
  bool live(std::size_t rank) const;
  void track_persistence();
  void publish_row();
  void step_protocol(std::uint64_t now_us);
  std::uint64_t progress_signature() const;

  OrderedGroupOptions options_;
  std::size_t rank_;
  fabric::Transport& transport_;
  StateMachine& state_machine_;
  HybridLogicalClock& clock_;
  OrderedGroupCallbacks callbacks_;

  sst::Schema schema_;
  sst::FailureDetectorFields detector_fields_;
  sst::SmcFields smc_fields_;
  OrderFields order_fields_;
  std::unique_ptr<std::byte[], AlignedDelete> memory_;
  TaggedTransport tagged_transport_;
  std::unique_ptr<sst::Table> table_;
  std::unique_ptr<sst::FailureDetector> detector_;
  std::unique_ptr<sst::Smc> smc_;
  std::unique_ptr<std::byte[], AlignedDelete> rdmc_memory_;
  std::uint64_t rdmc_memory_bytes_ = 0;
  std::unique_ptr<rdmc::Group> rdmc_;
  // RDMC control messages that arrived before our RDMC group started (bounded).
  std::vector<fabric::Event> early_rdmc_events_;

  Sequencer sequencer_;
  PersistenceFrontier frontier_;
  std::deque<Bytes> queue_;
  std::uint64_t queue_bytes_ = 0;
  std::uint64_t data_enqueued_ = 0;
  std::uint64_t sent_slots_ = 0;
  std::uint32_t delivery_window_slots_ = 0;
  std::uint64_t max_data_per_sender_ = 0;
  Version published_persisted_ = 0;
  bool wedged_ = false;
  bool held_ = false;
  Version skip_through_ = 0;  // delivered without apply(): the state already holds them
  bool row_dirty_ = true;
  Bytes scratch_;
  OrderedGroupStats stats_;
  std::uint64_t activity_ = 0;
  std::uint64_t last_signature_ = 0;
};

}  // namespace squall::core
