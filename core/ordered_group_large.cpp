// OrderedGroup: updates larger than a slot, by RDMC, in the same total order.
//
// The sender hands the update to its RDMC group (which relays it along the block schedule)
// and puts a `large` descriptor (RDMC index, size) in its next SMC slot. Every member feeds
// both into its sequencer: the slot counts as received only once the body is there, so a
// large update becomes stable only when every member holds its bytes, and it is delivered at
// its slot's place in the order. RDMC does not deliver a sender's own message back to it, so
// the sender gives its copy to its own sequencer.
#include <fmt/format.h>

#include "common/log.hpp"
#include "core/ordered_group.hpp"
#include "rdmc/wire.hpp"

namespace squall::core {

Status OrderedGroup::init_large() {
  if (!options_.large) return Status::ok();
  const LargeMessageOptions& large = *options_.large;
  rdmc_memory_bytes_ = rdmc::region_bytes(static_cast<std::uint32_t>(size()), large.window,
                                          large.max_payload_bytes, large.block_size_bytes);
  rdmc_memory_ = allocate_region(rdmc_memory_bytes_);
  return transport_.register_region(large.region, {rdmc_memory_.get(), rdmc_memory_bytes_});
}

void OrderedGroup::start_large() {
  if (!options_.large || rdmc_ != nullptr || wedged_) return;
  // RDMC needs a connection to every member before it starts.
  for (std::size_t rank = 0; rank < size(); ++rank) {
    if (rank != rank_ && !table_->connected(rank)) return;
  }
  const LargeMessageOptions& large = *options_.large;
  rdmc::GroupOptions group_options{
      .group_id = large.group_id,
      .members = options_.members,
      .block_size_bytes = large.block_size_bytes,
      .algorithm = large.algorithm,
      .max_payload_bytes = large.max_payload_bytes,
      .window = large.window,
      .region = large.region,
      .region_memory = {rdmc_memory_.get(), rdmc_memory_bytes_}};
  rdmc::GroupCallbacks callbacks{
      .delivered = [this](NodeId sender, std::uint64_t index,
                          std::span<const std::byte> payload) {
        on_large_delivered(sender, index, payload);
      },
      .sent = nullptr,
      .failed = [this](NodeId member, const Status& reason) { on_large_failed(member, reason); }};
  auto created = rdmc::Group::create(std::move(group_options), transport_, std::move(callbacks));
  SQUALL_ASSERT(created.is_ok(), "RDMC group with validated options: {}",
                created.status().to_string());
  rdmc_ = std::move(created).value();
  std::vector<fabric::Event> early;
  early.swap(early_rdmc_events_);
  for (const fabric::Event& event : early) (void)rdmc_->handle(event);
}

bool OrderedGroup::handle_large(const fabric::Event& event) {
  if (!options_.large) return false;
  if (rdmc_ != nullptr) return rdmc_->handle(event);
  // Before our RDMC group starts, a faster member may already announce a message to us.
  if (event.kind != fabric::EventKind::message || !rdmc::is_control_message(event.payload)) {
    return false;
  }
  auto decoded = rdmc::decode_control(event.payload);
  if (!decoded || decoded->group_id != options_.large->group_id) return false;
  // Each sender announces at most `window` messages before it hears from us.
  if (early_rdmc_events_.size() >= size() * options_.large->window) {
    detector_->peer_failed(event.peer, "too many RDMC messages before our group started");
    return true;
  }
  early_rdmc_events_.push_back(event);
  return true;
}

bool OrderedGroup::send_large(const Bytes& payload) {
  if (rdmc_ == nullptr) return false;  // not every member connected yet
  Result<std::uint64_t> index = rdmc_->send(payload);
  if (!index) {
    SQUALL_ASSERT(index.status().code() == Code::would_block ||
                      index.status().code() == Code::unavailable,
                  "RDMC refused a valid message: {}", index.status().to_string());
    return false;  // window full (retry next step) or the group failed (we wedge)
  }
  Status own = sequencer_.complete_large(rank_, *index, payload);
  SQUALL_ASSERT(own.is_ok(), "own large message {}: {}", *index, own.to_string());
  encode_large(scratch_, clock_.now(), *index, payload.size());
  Status status = smc_->send(scratch_);
  SQUALL_ASSERT(status.is_ok(), "SMC refused a slot it offered: {}", status.to_string());
  ++stats_.large_sent;
  return true;
}

void OrderedGroup::on_large_delivered(NodeId sender, std::uint64_t rdmc_index,
                                      std::span<const std::byte> payload) {
  auto rank = table_->rank_of(sender);
  SQUALL_ASSERT(rank.has_value() && *rank != rank_, "RDMC delivery from {}", sender);
  if (wedged_ || table_->frozen(*rank)) return;
  Status status = sequencer_.complete_large(*rank, rdmc_index, payload);
  if (!status.is_ok()) detector_->suspect(*rank, "large message: " + status.to_string());
}

void OrderedGroup::on_large_failed(NodeId member, const Status& reason) {
  auto rank = table_->rank_of(member);
  if (rank && *rank != rank_) {
    detector_->suspect(*rank, "RDMC: " + reason.to_string());
    return;
  }
  logger("core")->error("shard {} view {}: local RDMC failure: {}", options_.shard,
                        options_.view, reason.to_string());
  wedge();
  if (callbacks_.failed) callbacks_.failed(reason);
}

}  // namespace squall::core
