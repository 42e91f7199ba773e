// Sequencer: the round-robin total order of one shard, within one view, at one member.
//
// Pure logic: no I/O, no clock, no SST. The ordered group feeds it each sender's messages as
// they arrive (in the sender's order) and the per-sender stable counts it reads from the SST;
// the sequencer says what to deliver, in what order, with which version and timestamp.
//
// Order. Sender s (of N, s = its rank in the shard) fills *slots* 0, 1, 2, ...: a data (or
// large) message fills one, a packed message of c updates fills one, a null batch of c fills
// c. Slot k of sender s has sequence k·N + s. A slot is delivered once it is stable (every
// live member received it) and every lower sequence has been delivered or skipped; nulls are
// skipped. The updates of a packed slot are delivered one after the other, in send order, as
// if each had its own slot: a slot is delivered (or trimmed) whole.
//
// Versions and timestamps (docs/core.md). The i-th update delivered in view v gets version
// (v << 32) | i, i = 1, 2, ... Its timestamp is max(previous timestamp + 1, the timestamp its
// slot carries), so timestamps strictly increase with versions; every input to that rule is
// identical on every member, so every member computes the same values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <span>
#include <utility>
#include <vector>

#include "common/assert.hpp"
#include "common/bytes.hpp"
#include "common/hlc.hpp"
#include "common/ids.hpp"
#include "common/status.hpp"
#include "common/version.hpp"
#include "core/wire.hpp"

namespace squall::core {

// The largest delivered-data counter of a view: versions (v << 32) | 1 .. (v << 32) | this.
inline constexpr std::uint64_t kMaxDataPerView = 0xffff'ffffULL;

struct SequencedDelivery {
  std::uint64_t sequence = 0;        // k·N + sender
  std::size_t sender = 0;            // rank in the shard
  std::uint64_t sender_index = 0;    // the sender's data-message number in this view
  Version version = 0;
  HlcTimestamp timestamp = 0;        // after the monotonicity rule
  HlcTimestamp carried_timestamp = 0;  // as the sender stamped it
  std::span<const std::byte> payload;  // valid during the callback only
};

class Sequencer {
 public:
  // Returns false to stop delivering (the callee cannot go on); the delivery counts as done.
  using DeliverFn = std::function<bool(const SequencedDelivery&)>;

  // `last_timestamp`: the timestamp of the shard's last delivered update before this view
  // (0 for none), so timestamps keep increasing across views. `max_data_per_sender`: data
  // (and large) messages a sender may send in the view; senders * it <= kMaxDataPerView.
  // `max_early_bodies` bounds the large-message bodies held before their descriptors.
  Sequencer(std::size_t senders, ViewId view, HlcTimestamp last_timestamp,
            std::uint64_t max_data_per_sender, std::size_t max_early_bodies);

  // ---- Receive side: each sender's messages, in that sender's order ----
  // Each returns corruption, taking nothing in, when the sender breaks the protocol: more
  // data than its share of the view's versions, or a null batch of 0 slots or one that would
  // take its stream past kMaxSlots. The caller then suspects the sender.
  Status add_data(std::size_t sender, HlcTimestamp timestamp,
                  std::span<const std::byte> payload);
  Status add_nulls(std::size_t sender, std::uint64_t count);
  // A packed slot: `count` (>= 2) updates, `records` as decode_message() checked them (each a
  // u32 length and that many bytes). They take sender indexes in order.
  Status add_packed(std::size_t sender, HlcTimestamp timestamp,
                    std::span<const std::byte> records, std::uint32_t count);
  // A large message's descriptor: it fills one slot but counts as received only once its
  // body has arrived (complete_large, which may come before or after this call).
  Status add_large(std::size_t sender, HlcTimestamp timestamp, std::uint64_t rdmc_index,
                   std::uint64_t size_bytes);
  // The body of the sender's large message `rdmc_index`. corruption if its size disagrees
  // with the descriptor or it was already given; would_block if max_early_bodies bodies
  // already wait for their descriptors.
  Status complete_large(std::size_t sender, std::uint64_t rdmc_index,
                        std::span<const std::byte> payload);

  // Slots of `sender` held here, gap-free and complete (what the SST row publishes).
  std::uint64_t received_slots(std::size_t sender) const { return senders_.at(sender).received; }
  // Slots of `sender` announced (complete or waiting for a large body).
  std::uint64_t announced_slots(std::size_t sender) const {
    return senders_.at(sender).announced;
  }
  // How many slots member `me` must have filled so that no sequence announced by another
  // sender waits on one of its slots: the level a null batch brings it to.
  std::uint64_t slots_needed(std::size_t me) const;

  // ---- Delivery ----
  // `stable[s]`: slots of sender s every live member has received (<= received_slots(s)).
  // Delivers every data message below the first sequence not known to be stable, in
  // sequence order. Returns the number of updates delivered.
  std::size_t deliver_stable(std::span<const std::uint64_t> stable, const DeliverFn& deliver);
  // Ragged trim (end of a view): delivers every data message of sender s in a slot below
  // trim[s], in sequence order, whatever lies between. out_of_range if trim[s] exceeds what
  // is held here for some s (nothing is delivered then).
  Result<std::size_t> deliver_trim(std::span<const std::uint64_t> trim,
                                   const DeliverFn& deliver);

  // Every sequence below this one has been delivered or skipped.
  std::uint64_t next_sequence() const { return next_sequence_; }
  std::uint64_t delivered_data() const { return delivered_data_; }
  // Version of the last data message delivered in this view (0 if none yet).
  Version last_version() const;
  HlcTimestamp last_timestamp() const { return last_timestamp_; }
  // Sets the timestamp the first delivery builds on (a replica that learns it by state
  // transfer after the view began). REQUIRES: nothing delivered yet in this view.
  void set_last_timestamp(HlcTimestamp timestamp) {
    SQUALL_ASSERT(next_sequence_ == 0 && delivered_data_ == 0, "timestamp base set after "
                  "delivering");
    last_timestamp_ = timestamp;
  }
  std::size_t senders() const { return senders_.size(); }
  std::size_t pending_entries() const;
  std::uint64_t pending_bytes() const { return pending_bytes_; }

  // Slots one sender's stream may reach in a view. Honest senders stay near the view's data
  // count (< 2^32); the bound keeps k·N + s far from overflowing.
  static constexpr std::uint64_t kMaxSlots = 1ULL << 48;

 private:
  struct Entry {
    MessageKind kind = MessageKind::data;
    std::uint64_t first_slot = 0;
    std::uint64_t slots = 1;
    HlcTimestamp timestamp = 0;
    std::uint64_t sender_index = 0;
    std::uint64_t rdmc_index = 0;
    std::uint64_t size_bytes = 0;
    std::uint32_t count = 1;       // updates in the slot (> 1: packed, payload = records)
    bool complete = true;
    Bytes payload;
  };
  struct SenderState {
    std::deque<Entry> entries;     // undelivered, in slot order
    std::uint64_t announced = 0;   // slot after the last entry
    std::uint64_t received = 0;    // slots before the first incomplete entry
    std::uint64_t data_count = 0;  // data + large messages announced
  };

  std::uint64_t sequence_of(std::size_t sender, std::uint64_t slot) const {
    return slot * senders_.size() + sender;
  }
  void append(std::size_t sender, Entry entry);
  void refresh_received(std::size_t sender);
  // The sender's first data or large entry, skipping nulls; nullptr if none.
  const Entry* first_message(std::size_t sender) const;
  // Among senders whose first message lies in a slot below limit(s), the one with the lowest
  // sequence; senders_.size() if none.
  std::size_t next_sender(const std::function<std::uint64_t(std::size_t)>& limit) const;
  // Delivers and removes `sender`'s first message (and the nulls before it); adds the updates
  // delivered to `delivered`. False if `deliver` stopped.
  bool deliver_front(std::size_t sender, const DeliverFn& deliver, std::size_t& delivered);
  bool deliver_one(SequencedDelivery& delivery, const DeliverFn& deliver);
  void drop_skipped();

  ViewId view_;
  std::vector<SenderState> senders_;
  Status check_data(std::size_t sender, std::uint64_t count = 1) const;

  std::map<std::pair<std::size_t, std::uint64_t>, Bytes> early_bodies_;
  std::uint64_t max_data_per_sender_;
  std::size_t max_early_bodies_;
  std::uint64_t next_sequence_ = 0;
  std::uint64_t delivered_data_ = 0;
  HlcTimestamp last_timestamp_ = 0;
  std::uint64_t pending_bytes_ = 0;
};

}  // namespace squall::core
