// Group: construction, the public entry points, and failure. The message flow (announce,
// ready, blocks, delivery, release) is in group_flow.cpp.
#include "rdmc/group.hpp"

#include <algorithm>
#include <cstring>
#include <set>

#include "common/assert.hpp"
#include "common/log.hpp"

namespace squall::rdmc {

std::uint64_t slot_bytes(std::uint64_t max_payload_bytes, std::uint64_t block_size_bytes) {
  return block_count(max_payload_bytes, block_size_bytes) * block_size_bytes;
}

std::uint64_t region_bytes(std::uint32_t members, std::uint32_t window,
                           std::uint64_t max_payload_bytes, std::uint64_t block_size_bytes) {
  return std::uint64_t{members} * window * slot_bytes(max_payload_bytes, block_size_bytes);
}

Status GroupOptions::validate() const {
  if (group_id > kMaxGroupId) return invalid_argument("rdmc group id above 65535");
  if (members.empty() || members.size() > kMaxMembers) {
    return invalid_argument(fmt::format("rdmc group of {} members (1..{})", members.size(),
                                        kMaxMembers));
  }
  if (std::set<NodeId>(members.begin(), members.end()).size() != members.size()) {
    return invalid_argument("rdmc group lists a member twice");
  }
  if (block_size_bytes == 0 || max_payload_bytes == 0) {
    return invalid_argument("rdmc block size and max payload must be positive");
  }
  if (block_count(max_payload_bytes, block_size_bytes) > kMaxBlocks) {
    return invalid_argument(fmt::format("rdmc max payload {} is more than {} blocks of {}",
                                        max_payload_bytes, kMaxBlocks, block_size_bytes));
  }
  if (window == 0 || window > kMaxWindow) {
    return invalid_argument(fmt::format("rdmc window {} (1..{})", window, kMaxWindow));
  }
  const std::uint64_t needed = region_bytes(static_cast<std::uint32_t>(members.size()), window,
                                            max_payload_bytes, block_size_bytes);
  if (region_memory.size() < needed) {
    return invalid_argument(fmt::format("rdmc region of {} bytes, {} needed",
                                        region_memory.size(), needed));
  }
  return Status::ok();
}

Result<std::unique_ptr<Group>> Group::create(GroupOptions options,
                                             fabric::Transport& transport,
                                             GroupCallbacks callbacks) {
  SQUALL_TRY(options.validate());
  const auto self = std::find(options.members.begin(), options.members.end(), transport.self());
  if (self == options.members.end()) {
    return invalid_argument(fmt::format("node {} is not a member of rdmc group {}",
                                        transport.self(), options.group_id));
  }
  const auto self_index = static_cast<std::uint32_t>(self - options.members.begin());
  return std::unique_ptr<Group>(
      new Group(std::move(options), transport, std::move(callbacks), self_index));
}

Group::Group(GroupOptions options, fabric::Transport& transport, GroupCallbacks callbacks,
             std::uint32_t self_index)
    : options_(std::move(options)),
      transport_(transport),
      callbacks_(std::move(callbacks)),
      self_index_(self_index),
      next_announce_(options_.members.size(), 0),
      next_deliver_(options_.members.size(), 0),
      outbox_(options_.members.size()) {
  for (std::uint32_t index = 0; index < members(); ++index) {
    index_by_node_.emplace(options_.members[index], index);
  }
}

std::uint32_t Group::member_of_rank(std::uint32_t sender, std::uint32_t rank) const {
  return (sender + rank) % members();
}

std::uint32_t Group::rank_of_member(std::uint32_t sender, std::uint32_t member) const {
  return (member + members() - sender) % members();
}

std::optional<std::uint32_t> Group::index_of(NodeId node) const {
  const auto found = index_by_node_.find(node);
  if (found == index_by_node_.end()) return std::nullopt;
  return found->second;
}

MessageState Group::make_message(std::uint32_t sender, std::uint64_t seq,
                                 std::uint64_t size_bytes) const {
  MessageState message;
  message.sender = sender;
  message.seq = seq;
  message.size_bytes = size_bytes;
  message.blocks = static_cast<std::uint32_t>(block_count(size_bytes, options_.block_size_bytes));
  message.rank = rank_of_member(sender, self_index_);
  const std::uint64_t slot = std::uint64_t{sender} * options_.window + seq % options_.window;
  message.slot_offset = slot * slot_bytes(options_.max_payload_bytes, options_.block_size_bytes);
  message.plan = make_plan(Schedule{options_.algorithm, members(), message.blocks}, message.rank);
  message.have.assign(message.blocks, message.rank == 0);
  message.downstream_ready.assign(members(), false);
  return message;
}

MessageState* Group::find_live(std::uint32_t sender, std::uint32_t seq_low) {
  for (auto it = messages_.lower_bound({sender, 0});
       it != messages_.end() && it->first.first == sender; ++it) {
    if ((it->first.second & kSeqMask) == seq_low && it->second.slot_acquired) return &it->second;
  }
  return nullptr;
}

Result<std::uint64_t> Group::send(std::span<const std::byte> payload) {
  if (stopped()) return Status(Code::unavailable, "rdmc group has stopped");
  if (payload.empty() || payload.size() > options_.max_payload_bytes) {
    return invalid_argument(fmt::format("rdmc message of {} bytes (1..{})", payload.size(),
                                        options_.max_payload_bytes));
  }
  const std::uint64_t seq = next_send_seq_;
  if (seq >= options_.window && messages_.contains({self_index_, seq - options_.window})) {
    return Status(Code::would_block, "rdmc send window full");
  }
  ++next_send_seq_;
  MessageState message = make_message(self_index_, seq, payload.size());
  message.slot_acquired = true;
  std::memcpy(options_.region_memory.data() + message.slot_offset, payload.data(),
              payload.size());
  MessageState& stored = messages_.emplace(Key{self_index_, seq}, std::move(message)).first->second;
  for (std::uint32_t member = 0; member < members(); ++member) {
    if (member == self_index_) continue;
    enqueue_control(member, ControlMessage{ControlKind::announce,
                                           static_cast<std::uint16_t>(options_.group_id),
                                           static_cast<std::uint16_t>(self_index_), seq,
                                           payload.size()});
  }
  flush_outbox();
  if (stopped()) return Status(Code::unavailable, "rdmc group has stopped");
  try_sends(stored);
  maybe_release(stored);
  return seq;
}

bool Group::handle(const fabric::Event& event) {
  switch (event.kind) {
    case fabric::EventKind::message: {
      if (!is_control_message(event.payload)) return false;
      const auto decoded = decode_control(event.payload);
      if (!decoded || decoded->group_id != options_.group_id) return false;
      if (!stopped()) on_control(event.peer, *decoded);
      return true;
    }
    case fabric::EventKind::remote_write:
      if (event.region != options_.region) return false;
      if (!stopped()) on_block(event);
      return true;
    case fabric::EventKind::write_completed: {
      const auto context = decode_context(event.context);
      if (!context || context->group_id != options_.group_id) return false;
      if (!stopped()) on_write_completed(event, *context);
      return true;
    }
    case fabric::EventKind::peer_failed:
      if (index_of(event.peer) && event.peer != transport_.self()) fail(event.peer, event.status);
      return false;
    case fabric::EventKind::peer_connected: return false;
  }
  return false;
}

void Group::flush() {
  if (stopped()) return;
  flush_outbox();
  // try_sends() never erases a message, but a failure inside it clears them all.
  for (auto it = messages_.begin(); it != messages_.end() && !stopped(); ++it) {
    try_sends(it->second);
    if (stopped()) return;
  }
}

void Group::wedge() {
  wedged_ = true;
  abandon_all();
}

void Group::abandon_all() {
  messages_.clear();
  early_ready_.clear();
  for (auto& queue : outbox_) queue.clear();
}

void Group::fail(NodeId member, Status reason) {
  if (stopped()) return;
  logger("rdmc")->warn("group {}: member {} failed ({}); abandoning {} message(s)",
                       options_.group_id, member, reason.to_string(), messages_.size());
  failed_ = true;
  abandon_all();
  if (callbacks_.failed) callbacks_.failed(member, reason);
}

void Group::enqueue_control(std::uint32_t member, const ControlMessage& message) {
  // Per peer at most `window` ANNOUNCEs of ours plus `window` READYs per sender are pending.
  SQUALL_ASSERT(outbox_[member].size() < std::uint64_t{options_.window} * (members() + 1),
                "rdmc outbox to member {} overflows", member);
  outbox_[member].push_back(encode_control(message));
}

void Group::flush_outbox() {
  for (std::uint32_t member = 0; member < members() && !stopped(); ++member) {
    auto& queue = outbox_[member];
    while (!queue.empty()) {
      const Status status = transport_.send(options_.members[member], queue.front());
      if (status.code() == Code::would_block) break;
      if (!status.is_ok()) {
        fail(options_.members[member], status);
        return;
      }
      queue.pop_front();
    }
  }
}

}  // namespace squall::rdmc
