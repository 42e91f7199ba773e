#include "core/ordered_group.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "common/log.hpp"
#include "rdmc/plan.hpp"

namespace squall::core {

namespace {

constexpr std::uint64_t kMinSmcPayloadBytes = 64;
constexpr std::uint64_t kMaxSmcPayloadBytes = 1024 * 1024;
constexpr std::uint32_t kMaxWindow = 1024;
constexpr std::size_t kMaxShardMembers = 1024;
// Most updates one slot carries (a bound on the work one slot's delivery does).
constexpr std::size_t kMaxPackedUpdates = 4096;

}  // namespace

Status OrderedGroupOptions::validate() const {
  if (members.empty() || members.size() > kMaxShardMembers) {
    return invalid_argument(fmt::format("a shard group has 1..{} members, not {}",
                                        kMaxShardMembers, members.size()));
  }
  if (std::find(members.begin(), members.end(), self) == members.end()) {
    return invalid_argument(fmt::format("node {} is not a member of shard {}", self, shard));
  }
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (std::find(members.begin() + static_cast<std::ptrdiff_t>(i) + 1, members.end(),
                  members[i]) != members.end()) {
      return invalid_argument(fmt::format("node {} appears twice in shard {}", members[i],
                                          shard));
    }
  }
  if (window < 1 || window > kMaxWindow) {
    return invalid_argument(fmt::format("window {} outside 1..{}", window, kMaxWindow));
  }
  if (smc_payload_bytes < kMinSmcPayloadBytes || smc_payload_bytes > kMaxSmcPayloadBytes) {
    return invalid_argument(fmt::format("smc_payload_bytes {} outside {}..{}",
                                        smc_payload_bytes, kMinSmcPayloadBytes,
                                        kMaxSmcPayloadBytes));
  }
  if (send_queue_messages < 1 || send_queue_bytes < 1 || max_persistence_waiters < 1) {
    return invalid_argument("send queue and waiter limits must be at least 1");
  }
  if (heartbeat_ms < 1 || failure_timeout_ms <= heartbeat_ms) {
    return invalid_argument(fmt::format("need 1 <= heartbeat_ms ({}) < failure_timeout_ms ({})",
                                        heartbeat_ms, failure_timeout_ms));
  }
  if (max_data_per_sender > kMaxDataPerView / members.size()) {
    return invalid_argument(fmt::format("max_data_per_sender {} exceeds {} / {} members",
                                        max_data_per_sender, kMaxDataPerView, members.size()));
  }
  if (large) {
    if (large->region == sst_region) {
      return invalid_argument("the RDMC region must differ from the SST region");
    }
    if (large->group_id > rdmc::kMaxGroupId || large->block_size_bytes == 0 ||
        large->max_payload_bytes == 0 || large->window < 1 ||
        large->window > rdmc::kMaxWindow ||
        rdmc::block_count(large->max_payload_bytes, large->block_size_bytes) >
            rdmc::kMaxBlocks) {
      return invalid_argument(fmt::format(
          "large messages: group id {} (<= {}), block {} B, max payload {} B (<= {} blocks), "
          "window {} (1..{})", large->group_id, rdmc::kMaxGroupId, large->block_size_bytes,
          large->max_payload_bytes, rdmc::kMaxBlocks, large->window, rdmc::kMaxWindow));
    }
  }
  return Status::ok();
}

OrderedGroupOptions shard_group_options(const View& view, ShardId shard, NodeId self) {
  OrderedGroupOptions options;
  options.view = view.id();
  options.shard = shard;
  options.members = view.shard_members(shard);
  options.self = self;
  options.transport_tag = static_cast<std::uint16_t>(shard.value);
  return options;
}

sst::RowRange OrderedGroup::OrderFields::block() const {
  std::size_t begin = received_slots.offset;
  std::size_t end = wedged.offset + sizeof(std::uint64_t);
  return {begin, end - begin};
}

void OrderedGroup::AlignedDelete::operator()(std::byte* memory) const {
  ::operator delete[](memory, std::align_val_t{kRegionAlignBytes});
}

std::unique_ptr<std::byte[], OrderedGroup::AlignedDelete> OrderedGroup::allocate_region(
    std::size_t bytes) {
  std::unique_ptr<std::byte[], AlignedDelete> memory(
      static_cast<std::byte*>(::operator new[](bytes, std::align_val_t{kRegionAlignBytes})));
  std::fill_n(memory.get(), bytes, std::byte{0});
  return memory;
}

Result<std::unique_ptr<OrderedGroup>> OrderedGroup::create(OrderedGroupOptions options,
                                                           fabric::Transport& transport,
                                                           StateMachine& state_machine,
                                                           HybridLogicalClock& clock,
                                                           OrderedGroupCallbacks callbacks) {
  SQUALL_TRY(options.validate());
  auto self = std::find(options.members.begin(), options.members.end(), options.self);
  auto rank = static_cast<std::size_t>(self - options.members.begin());
  std::unique_ptr<OrderedGroup> group(new OrderedGroup(std::move(options), rank, transport,
                                                       state_machine, clock,
                                                       std::move(callbacks)));
  SQUALL_TRY(group->init());
  return group;
}

OrderedGroup::OrderedGroup(OrderedGroupOptions options, std::size_t rank,
                           fabric::Transport& transport, StateMachine& state_machine,
                           HybridLogicalClock& clock, OrderedGroupCallbacks callbacks)
    : options_(std::move(options)),
      rank_(rank),
      transport_(transport),
      state_machine_(state_machine),
      clock_(clock),
      callbacks_(std::move(callbacks)),
      tagged_transport_(transport, options_.transport_tag),
      // A large body precedes its descriptor by less than an SMC window per sender.
      sequencer_(options_.members.size(), options_.view, options_.last_timestamp,
                 options_.max_data_per_sender != 0
                     ? options_.max_data_per_sender
                     : kMaxDataPerView / options_.members.size(),
                 options_.members.size() * (options_.window + 1)),
      frontier_(options_.persisted_floor, options_.max_persistence_waiters) {
  std::size_t members = options_.members.size();
  delivery_window_slots_ =
      options_.delivery_window_slots != 0 ? options_.delivery_window_slots : 2 * options_.window;
  max_data_per_sender_ = options_.max_data_per_sender != 0 ? options_.max_data_per_sender
                                                           : kMaxDataPerView / members;
  held_ = options_.hold_delivery;
}

OrderedGroup::~OrderedGroup() = default;

Status OrderedGroup::init() {
  std::size_t members = options_.members.size();
  detector_fields_ = sst::add_failure_detector_fields(schema_, members);
  smc_fields_ = sst::add_smc_fields(schema_, members, options_.window,
                                    static_cast<std::size_t>(options_.smc_payload_bytes));
  // Contiguous, so one push publishes them all; declared after the SMC fields so a newly
  // connected peer gets the slots before any count that refers to them.
  order_fields_.received_slots = schema_.array<std::uint64_t>("received_slots", members);
  order_fields_.next_sequence = schema_.scalar<std::uint64_t>("next_sequence");
  order_fields_.persisted_version = schema_.scalar<std::uint64_t>("persisted_version");
  order_fields_.wedged = schema_.scalar<std::uint64_t>("wedged");

  std::size_t bytes = sst::Table::memory_bytes(schema_, members);
  memory_ = allocate_region(bytes);
  std::span<std::byte> memory(memory_.get(), bytes);
  SQUALL_TRY(transport_.register_region(options_.sst_region, memory));
  table_ = std::make_unique<sst::Table>(schema_, options_.members, rank_, memory,
                                        tagged_transport_, options_.sst_region);
  detector_ = std::make_unique<sst::FailureDetector>(
      *table_, detector_fields_, options_.heartbeat_ms, options_.failure_timeout_ms,
      [this](std::size_t rank, const std::string& reason) { on_suspected(rank, reason); },
      options_.first_heartbeat_timeout_ms);
  smc_ = std::make_unique<sst::Smc>(
      *table_, smc_fields_,
      [this](std::size_t sender, std::uint64_t, std::span<const std::byte> message) {
        on_smc_message(sender, message);
      },
      [this](std::size_t sender, const std::string& reason) {
        detector_->suspect(sender, reason);
      });
  table_->set_overflow_callback([this](std::size_t rank) {
    detector_->suspect(rank, "its SST pushes stopped draining");
  });
  return init_large();
}

bool OrderedGroup::handle(const fabric::Event& event) {
  if (handle_large(event)) return true;
  return handle_sst_event(event, tagged_transport_, *table_, *detector_);
}

void OrderedGroup::step(std::uint64_t now_us) {
  start_large();
  step_protocol(now_us);
  std::uint64_t signature = progress_signature();
  if (signature != last_signature_) {
    last_signature_ = signature;
    ++activity_;
  }
}

std::uint64_t OrderedGroup::progress_signature() const {
  // Every term only grows, so the sum changes whenever one of them does.
  std::uint64_t sum = sequencer_.next_sequence() + sent_slots_ + frontier_.value() +
                      published_persisted_ + stats_.delivered;
  for (std::size_t sender = 0; sender < size(); ++sender) {
    sum += sequencer_.announced_slots(sender);
  }
  return sum;
}

bool OrderedGroup::in_flight() const {
  Version delivered = sequencer_.last_version();
  return !queue_.empty() || sequencer_.pending_entries() > 0 ||
         published_persisted_ < delivered || frontier_.value() < delivered;
}

void OrderedGroup::step_protocol(std::uint64_t now_us) {
  if (!wedged_) {
    receive_and_deliver();
    send_queued();
    send_nulls();
    smc_->flush();
    receive_and_deliver();  // our own new slots (a group of one needs nobody else)
  }
  track_persistence();
  publish_row();
  table_->flush();
  if (rdmc_) rdmc_->flush();
  detector_->tick(now_us);
}

Result<std::uint64_t> OrderedGroup::send(std::span<const std::byte> payload) {
  if (wedged_) return unavailable("the shard group is wedged (view change pending)");
  if (payload.size() > options_.max_payload_bytes()) {
    return invalid_argument(fmt::format("update of {} bytes exceeds the limit of {} bytes{}",
                                        payload.size(), options_.max_payload_bytes(),
                                        options_.large ? "" : " (a slot; RDMC is off)"));
  }
  if (data_enqueued_ >= max_data_per_sender_) {
    return unavailable(fmt::format("sender used its {} versions of view {}; a new view is "
                                   "needed", max_data_per_sender_, options_.view));
  }
  if (queue_.size() >= options_.send_queue_messages ||
      queue_bytes_ + payload.size() > options_.send_queue_bytes) {
    return Status(Code::would_block, "send queue full");
  }
  queue_.emplace_back(payload.begin(), payload.end());
  queue_bytes_ += payload.size();
  return data_enqueued_++;
}

Status OrderedGroup::wait_persisted(Version version, PersistenceFrontier::Waiter waiter) {
  return frontier_.wait(version, std::move(waiter));
}

void OrderedGroup::wedge() {
  if (wedged_) return;
  wedged_ = true;
  row_dirty_ = true;
  if (rdmc_) rdmc_->wedge();
  logger("core")->info("shard {} view {}: wedged at sequence {} (version {:#x})",
                       options_.shard, options_.view, sequencer_.next_sequence(),
                       sequencer_.last_version());
}

Result<std::size_t> OrderedGroup::deliver_trim(std::span<const std::uint64_t> trim) {
  SQUALL_ASSERT(wedged_, "the ragged trim is delivered by a wedged member");
  if (trim.size() != size()) {
    return invalid_argument(fmt::format("trim of {} senders for a group of {}", trim.size(),
                                        size()));
  }
  auto delivered = sequencer_.deliver_trim(
      trim, [this](const SequencedDelivery& delivery) { return apply(delivery); });
  if (delivered) row_dirty_ = true;
  return delivered;
}

void OrderedGroup::on_suspected(std::size_t rank, const std::string& reason) {
  tagged_transport_.forget_peer(options_.members[rank]);  // its pushes will never complete
  wedge();
  if (callbacks_.suspected) callbacks_.suspected(options_.members[rank], reason);
}

void OrderedGroup::on_smc_message(std::size_t sender, std::span<const std::byte> message) {
  // Once wedged, the counts stay where they were: late slots are not taken in.
  if (wedged_ || (sender != rank_ && table_->frozen(sender))) return;
  Result<DecodedMessage> decoded = decode_message(message);
  if (!decoded) {
    detector_->suspect(sender, "malformed multicast message: " + decoded.status().to_string());
    return;
  }
  if (sender != rank_) (void)clock_.update(decoded->timestamp);
  Status status;
  switch (decoded->kind) {
    case MessageKind::data:
      status = sequencer_.add_data(sender, decoded->timestamp, decoded->payload);
      break;
    case MessageKind::nulls:
      status = sequencer_.add_nulls(sender, decoded->null_count);
      break;
    case MessageKind::packed:
      status = sequencer_.add_packed(sender, decoded->timestamp, decoded->payload,
                                     decoded->packed_count);
      break;
    case MessageKind::large:
      if (!options_.large || decoded->size_bytes > options_.large->max_payload_bytes) {
        status = corruption("large-message descriptor without RDMC or over the limit");
        break;
      }
      status = sequencer_.add_large(sender, decoded->timestamp, decoded->rdmc_index,
                                    decoded->size_bytes);
      break;
  }
  if (!status.is_ok()) detector_->suspect(sender, "protocol violation: " + status.to_string());
}

void OrderedGroup::release_delivery(HlcTimestamp last_timestamp, Version persisted_floor) {
  SQUALL_ASSERT(held_, "release_delivery without a hold");
  held_ = false;
  sequencer_.set_last_timestamp(last_timestamp);
  skip_through_ = state_machine_.applied_version();
  if (frontier_.offer(persisted_floor) && callbacks_.persisted) {
    callbacks_.persisted(frontier_.value());
  }
  logger("core")->info("shard {} view {}: delivery released (state at {:#x})", options_.shard,
                       options_.view, skip_through_);
}

bool OrderedGroup::apply(const SequencedDelivery& delivery) {
  if (delivery.version <= skip_through_) {
    (void)clock_.update(delivery.timestamp);
    return true;  // the transferred state already holds it
  }
  DeliveredUpdate update{.version = delivery.version,
                         .timestamp = delivery.timestamp,
                         .sender = options_.members[delivery.sender],
                         .sender_index = delivery.sender_index,
                         .payload = delivery.payload};
  (void)clock_.update(delivery.timestamp);
  ++stats_.delivered;
  Status status = state_machine_.apply(update);
  if (status.is_ok()) return true;
  logger("core")->error("shard {} view {}: state machine refused version {:#x}: {}",
                        options_.shard, options_.view, delivery.version, status.to_string());
  wedge();
  if (callbacks_.failed) callbacks_.failed(status);
  return false;
}

bool OrderedGroup::live(std::size_t rank) const {
  return rank == rank_ || !table_->frozen(rank);
}

std::vector<std::uint64_t> OrderedGroup::stable_slots() const {
  std::vector<std::uint64_t> stable(size());
  for (std::size_t sender = 0; sender < size(); ++sender) {
    std::uint64_t slots = sequencer_.received_slots(sender);
    for (std::size_t member = 0; member < size(); ++member) {
      if (member == rank_ || !live(member)) continue;
      slots = std::min(slots, table_->read(member, order_fields_.received_slots, sender));
    }
    stable[sender] = slots;
  }
  return stable;
}

void OrderedGroup::receive_and_deliver() {
  if (wedged_) return;
  smc_->receive();
  if (wedged_) return;
  if (held_) return;  // receive only: the state arrives by state transfer
  std::vector<std::uint64_t> stable = stable_slots();
  std::uint64_t before = sequencer_.next_sequence();
  sequencer_.deliver_stable(
      stable, [this](const SequencedDelivery& delivery) { return apply(delivery); });
  if (sequencer_.next_sequence() != before) row_dirty_ = true;
}

bool OrderedGroup::delivery_window_open() const {
  // Data may enter our slot k only once every live member delivered our slot k - D.
  std::uint64_t slot = sent_slots_;
  if (slot < delivery_window_slots_) return true;
  std::uint64_t required = (slot - delivery_window_slots_) * size() + rank_ + 1;
  if (sequencer_.next_sequence() < required) return false;
  for (std::size_t member = 0; member < size(); ++member) {
    if (member == rank_ || !live(member)) continue;
    if (table_->read(member, order_fields_.next_sequence) < required) return false;
  }
  return true;
}

void OrderedGroup::send_queued() {
  while (!queue_.empty() && smc_->can_send() && delivery_window_open()) {
    const Bytes& payload = queue_.front();
    std::size_t count = 1;
    if (payload.size() > options_.max_small_payload_bytes()) {
      if (!send_large(payload)) return;
    } else {
      count = send_small();
    }
    ++sent_slots_;
    stats_.data_sent += count;
    for (std::size_t i = 0; i < count; ++i) {
      queue_bytes_ -= queue_.front().size();
      queue_.pop_front();
    }
  }
}

std::size_t OrderedGroup::send_small() {
  // As many queued updates as fit go into this one slot (docs/core.md, "Packed slots"): one
  // slot, one round of SST writes to the peers, for all of them.
  std::size_t count = 0;
  std::size_t bytes = 0;
  for (const Bytes& next : queue_) {
    if (next.size() > options_.max_small_payload_bytes() ||
        packed_size_bytes(count + 1, bytes + next.size()) > options_.smc_payload_bytes ||
        count == kMaxPackedUpdates) {
      break;
    }
    ++count;
    bytes += next.size();
  }
  if (count <= 1) {
    encode_data(scratch_, clock_.now(), queue_.front());
    count = 1;
  } else {
    scratch_.reserve(packed_size_bytes(count, bytes));
    begin_packed(scratch_, clock_.now(), static_cast<std::uint32_t>(count));
    for (std::size_t i = 0; i < count; ++i) add_packed(scratch_, queue_[i]);
    ++stats_.packed_slots;
    stats_.packed_updates += count;
  }
  Status status = smc_->send(scratch_);
  SQUALL_ASSERT(status.is_ok(), "SMC refused a slot it offered: {}", status.to_string());
  return count;
}

void OrderedGroup::send_nulls() {
  // Idle (or blocked) and behind: one batch brings us level with every slot announced by the
  // others, so the order never waits on us — however many senders are idle, one hop.
  std::uint64_t needed = sequencer_.slots_needed(rank_);
  if (needed <= sent_slots_ || !smc_->can_send()) return;
  std::uint64_t count = needed - sent_slots_;
  encode_nulls(scratch_, clock_.now(), count);
  Status status = smc_->send(scratch_);
  SQUALL_ASSERT(status.is_ok(), "SMC refused a slot it offered: {}", status.to_string());
  sent_slots_ = needed;
  ++stats_.null_batches_sent;
  stats_.null_slots_sent += count;
}

void OrderedGroup::track_persistence() {
  Version persisted = state_machine_.persisted_version();
  SQUALL_ASSERT(persisted >= published_persisted_,
                "state machine's persisted version went back from {:#x} to {:#x}",
                published_persisted_, persisted);
  if (persisted != published_persisted_) {
    published_persisted_ = persisted;
    row_dirty_ = true;
  }
  Version minimum = persisted;
  for (std::size_t member = 0; member < size(); ++member) {
    if (member == rank_ || !live(member)) continue;
    minimum = std::min(minimum, table_->read(member, order_fields_.persisted_version));
  }
  if (frontier_.offer(minimum) && callbacks_.persisted) callbacks_.persisted(frontier_.value());
  frontier_.fire();
}

void OrderedGroup::publish_row() {
  for (std::size_t sender = 0; sender < size(); ++sender) {
    std::uint64_t slots = sequencer_.received_slots(sender);
    if (table_->read(rank_, order_fields_.received_slots, sender) != slots) {
      table_->write(order_fields_.received_slots, sender, slots);
      row_dirty_ = true;
    }
  }
  if (!row_dirty_) return;
  // A push still waiting for a peer's link means the link is saturated: pushing now would
  // only lengthen its queue (and delay heartbeats behind it). The counters only grow, so the
  // next push, once the queue drained, carries the latest values of all of them.
  for (std::size_t member = 0; member < size(); ++member) {
    if (member != rank_ && live(member) && table_->pending_pushes(member) > 0) return;
  }
  table_->write(order_fields_.next_sequence, sequencer_.next_sequence());
  table_->write(order_fields_.persisted_version, published_persisted_);
  table_->write(order_fields_.wedged, std::uint64_t{wedged_ ? 1U : 0U});
  table_->push(order_fields_.block());
  row_dirty_ = false;
}

std::vector<std::uint64_t> OrderedGroup::received_slots() const {
  std::vector<std::uint64_t> slots(size());
  for (std::size_t sender = 0; sender < size(); ++sender) {
    slots[sender] = sequencer_.received_slots(sender);
  }
  return slots;
}

bool OrderedGroup::all_wedged() const {
  if (!wedged_) return false;
  for (std::size_t member = 0; member < size(); ++member) {
    if (member == rank_ || !live(member)) continue;
    if (table_->read(member, order_fields_.wedged) == 0) return false;
  }
  return true;
}

}  // namespace squall::core
