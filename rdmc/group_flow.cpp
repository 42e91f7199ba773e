// Group: the flow of one message — announce, ready, blocks, delivery, release.
#include <algorithm>

#include "common/assert.hpp"
#include "rdmc/group.hpp"

namespace squall::rdmc {
namespace {

Status protocol_error(std::string what) { return corruption("rdmc protocol: " + what); }

}  // namespace

void Group::on_control(NodeId from, const ControlMessage& message) {
  const auto member = index_of(from);
  if (!member || *member == self_index_ || message.sender >= members()) {
    fail(from, protocol_error(fmt::format("control message from {} about sender {}", from,
                                          message.sender)));
    return;
  }
  if (message.kind == ControlKind::announce) {
    on_announce(*member, message);
  } else {
    on_ready(*member, message);
  }
}

// A new message of `from`: remember it, pick up READYs that overtook this ANNOUNCE, and
// claim our slot for it if the slot is free.
void Group::on_announce(std::uint32_t from, const ControlMessage& message) {
  const NodeId node = options_.members[from];
  if (message.sender != from || message.seq != next_announce_[from] ||
      message.size_bytes == 0 || message.size_bytes > options_.max_payload_bytes) {
    fail(node, protocol_error(fmt::format("bad announce of seq {} ({} bytes)", message.seq,
                                          message.size_bytes)));
    return;
  }
  ++next_announce_[from];
  const Key key{from, message.seq};
  MessageState& state =
      messages_.emplace(key, make_message(from, message.seq, message.size_bytes)).first->second;
  if (const auto early = early_ready_.find(key); early != early_ready_.end()) {
    for (const std::uint32_t rank : early->second) state.downstream_ready[rank] = true;
    early_ready_.erase(early);
  }
  try_acquire(from, message.seq);
}

// `from` is ready for the blocks we owe it of one message.
void Group::on_ready(std::uint32_t from, const ControlMessage& message) {
  const Key key{message.sender, message.seq};
  const std::uint32_t rank = rank_of_member(message.sender, from);
  const auto found = messages_.find(key);
  if (found == messages_.end()) {
    // Legitimate only for a message whose ANNOUNCE has not reached us yet.
    const bool future = message.sender != self_index_ &&
                        message.seq >= next_announce_[message.sender];
    const std::uint64_t bound = std::uint64_t{options_.window} * members() * members();
    if (!future || early_ready_.size() >= bound) {
      fail(options_.members[from], protocol_error(fmt::format(
                                       "unexpected ready for seq {} of member {}", message.seq,
                                       message.sender)));
      return;
    }
    early_ready_[key].push_back(rank);
    return;
  }
  MessageState& state = found->second;
  if (!std::binary_search(state.plan.downstream.begin(), state.plan.downstream.end(), rank) ||
      state.downstream_ready[rank]) {
    fail(options_.members[from], protocol_error("ready from a member we do not send to"));
    return;
  }
  state.downstream_ready[rank] = true;
  try_sends(state);
}

// Claims our slot for (sender, seq) once message seq - window of that sender has left it, and
// tells every member we receive from that we are ready.
void Group::try_acquire(std::uint32_t sender, std::uint64_t seq) {
  const auto found = messages_.find({sender, seq});
  if (found == messages_.end() || found->second.slot_acquired) return;
  if (seq >= options_.window && messages_.contains({sender, seq - options_.window})) return;
  MessageState& state = found->second;
  state.slot_acquired = true;
  const ControlMessage ready{ControlKind::ready, static_cast<std::uint16_t>(options_.group_id),
                             static_cast<std::uint16_t>(sender), seq, 0};
  for (const std::uint32_t rank : state.plan.upstream) {
    enqueue_control(member_of_rank(sender, rank), ready);
  }
  flush_outbox();
}

// Posts, in step order, every write whose block we hold and whose receiver is ready.
void Group::try_sends(MessageState& message) {
  while (!stopped() && !message.sends_done()) {
    const Transfer& transfer = message.plan.sends[message.next_send];
    if (!message.have[transfer.block] || !message.downstream_ready[transfer.to]) return;
    const Status status = post_block(message, transfer);
    if (status.code() == Code::would_block) return;  // flush() retries
    if (!status.is_ok()) {
      fail(options_.members[member_of_rank(message.sender, transfer.to)], status);
      return;
    }
    ++message.next_send;
    ++message.writes_outstanding;
  }
}

Status Group::post_block(const MessageState& message, const Transfer& transfer) {
  const std::uint64_t offset =
      message.slot_offset + std::uint64_t{transfer.block} * options_.block_size_bytes;
  fabric::WriteRequest request;
  request.peer = options_.members[member_of_rank(message.sender, transfer.to)];
  request.local_region = options_.region;
  request.local_offset = offset;
  request.remote_region = options_.region;
  request.remote_offset = offset;
  request.length = block_length(message.size_bytes, options_.block_size_bytes, transfer.block);
  const auto seq_low = static_cast<std::uint32_t>(message.seq & kSeqMask);
  const auto sender = static_cast<std::uint16_t>(message.sender);
  request.context =
      encode_context(WriteContext{static_cast<std::uint16_t>(options_.group_id), sender, seq_low});
  request.immediate = encode_immediate(BlockTag{sender, seq_low, transfer.block});
  return transport_.write(request);
}

// A block landed in our region: check it is one we asked for, then relay and deliver.
void Group::on_block(const fabric::Event& event) {
  const BlockTag tag = decode_immediate(event.immediate);
  MessageState* message = tag.sender < members() && tag.sender != self_index_
                              ? find_live(tag.sender, tag.seq_low)
                              : nullptr;
  const bool valid =
      message != nullptr && tag.block < message->blocks && !message->have[tag.block] &&
      event.offset ==
          message->slot_offset + std::uint64_t{tag.block} * options_.block_size_bytes &&
      event.length ==
          block_length(message->size_bytes, options_.block_size_bytes, tag.block);
  if (!valid) {
    fail(event.peer, protocol_error(fmt::format("unexpected block write (sender {}, block {})",
                                                tag.sender, tag.block)));
    return;
  }
  message->have[tag.block] = true;
  ++message->received;
  try_sends(*message);
  if (!stopped() && message->complete()) try_deliver(message->sender);
}

void Group::on_write_completed(const fabric::Event& event, const WriteContext& context) {
  if (!event.status.is_ok()) {
    fail(event.peer, event.status);
    return;
  }
  MessageState* message = context.sender < members() ? find_live(context.sender, context.seq_low)
                                                     : nullptr;
  if (message == nullptr || message->writes_outstanding == 0) {
    fail(event.peer, protocol_error("completion of a write we did not post"));
    return;
  }
  --message->writes_outstanding;
  maybe_release(*message);
}

// Delivers complete messages of `sender` in seq order.
void Group::try_deliver(std::uint32_t sender) {
  while (!stopped()) {
    const auto found = messages_.find({sender, next_deliver_[sender]});
    if (found == messages_.end() || !found->second.slot_acquired || !found->second.complete()) {
      return;
    }
    MessageState& message = found->second;
    ++next_deliver_[sender];
    message.delivered = true;
    if (callbacks_.delivered) {
      const std::span<const std::byte> payload(
          options_.region_memory.data() + message.slot_offset, message.size_bytes);
      callbacks_.delivered(options_.members[sender], message.seq, payload);
    }
    if (stopped()) return;
    maybe_release(message);  // `message` may be gone after this
  }
}

// Frees the slot of a message we are done with: delivered (or ours), every write posted and
// completed. Then the sender's next message for that slot may claim it.
void Group::maybe_release(MessageState& message) {
  const bool received = message.rank == 0 || message.delivered;
  if (stopped() || !message.slot_acquired || !received || !message.sends_done() ||
      message.writes_outstanding > 0) {
    return;
  }
  const std::uint32_t sender = message.sender;
  const std::uint64_t seq = message.seq;
  messages_.erase({sender, seq});
  if (sender == self_index_) {
    if (callbacks_.sent) callbacks_.sent(seq);
    return;
  }
  try_acquire(sender, seq + options_.window);
}

}  // namespace squall::rdmc
