// rdmc::Group: the block-multicast engine of one group of members, at one member.
//
// A deterministic state machine: it reads no clock, starts no thread and does I/O only by
// posting writes and sends on the fabric::Transport it is given. The owner's progress loop
// polls the transport, passes every event to handle(), and calls flush() after each batch.
// Not thread-safe: the thread that owns the transport calls every method.
//
// Protocol (docs/rdmc.md has the byte layouts and the reasoning):
// - Every member may send; for a message of member s, ranks are rotated so that s is rank 0.
//   Message k of sender s (k = 0, 1, ... per sender) lives in slot s*window + k mod window of
//   the group's region on every member: the same offset everywhere, so a relay writes a
//   block from its copy straight into the next member's copy.
// - The sender copies the message into its slot and sends ANNOUNCE(k, size) to every member.
// - A member that learns of message k waits until its slot is free (message k - window of s
//   delivered and relayed), then sends READY to each member it will receive blocks from. A
//   block is written to a member only after its READY, so no buffer is ever overwritten.
// - Blocks move as one-sided writes along the schedule (schedule.hpp); the immediate data
//   names the message and block. A member with every block delivers the message.
// - Any member's failure fails the group: every in-flight message is abandoned and the
//   owner is told once. A new view builds a new group.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "common/ids.hpp"
#include "common/status.hpp"
#include "fabric/transport.hpp"
#include "rdmc/message.hpp"
#include "rdmc/schedule.hpp"

namespace squall::rdmc {

struct GroupOptions {
  // Distinguishes groups sharing one transport; carried in control messages and write
  // contexts. 0..kMaxGroupId.
  std::uint32_t group_id = 0;
  // The members in view order, this node among them; all members use the same list.
  std::vector<NodeId> members;
  std::uint64_t block_size_bytes = 1024 * 1024;
  Algorithm algorithm = Algorithm::binomial_pipeline;
  // Largest message; a longer one is refused by send(). ceil(max / block) <= kMaxBlocks.
  std::uint64_t max_payload_bytes = 16 * 1024 * 1024;
  // Messages each sender may have in flight (1..kMaxWindow).
  std::uint32_t window = 4;
  // The receive region: registered by the caller with the transport under `region` (same id
  // on every member), at least region_bytes() long, alive as long as the group.
  fabric::RegionId region = 0;
  std::span<std::byte> region_memory;

  // Checks every field and relation; create() calls it.
  Status validate() const;
};

inline constexpr std::uint32_t kMaxWindow = 1024;

// Bytes of one message slot: max_payload_bytes rounded up to whole blocks.
std::uint64_t slot_bytes(std::uint64_t max_payload_bytes, std::uint64_t block_size_bytes);
// Bytes of region a group needs: members * window slots (the pinned-memory cost).
std::uint64_t region_bytes(std::uint32_t members, std::uint32_t window,
                           std::uint64_t max_payload_bytes, std::uint64_t block_size_bytes);

// Callbacks run inside handle(), flush() or send(). They may call send() and wedge(); they
// must not destroy the group.
struct GroupCallbacks {
  // Message `seq` of `sender` arrived whole. `payload` is valid until the callback returns.
  // Per sender, messages are delivered in seq order, each exactly once.
  std::function<void(NodeId sender, std::uint64_t seq, std::span<const std::byte> payload)>
      delivered;
  // Our message `seq` has left this node (every write we had to make completed); its slot is
  // free again.
  std::function<void(std::uint64_t seq)> sent;
  // The group failed because of `member` (peer failure, failed write, or a protocol
  // violation by it). Called once; afterwards the group does nothing.
  std::function<void(NodeId member, const Status& reason)> failed;
};

class Group {
 public:
  // REQUIRES: the transport is connected to every other member (peer_connected seen) and the
  // region is registered. Errors: invalid_argument (options, or self not a member).
  static Result<std::unique_ptr<Group>> create(GroupOptions options,
                                               fabric::Transport& transport,
                                               GroupCallbacks callbacks);
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  // Multicasts `message` (copied into this member's slot) and returns its seq. Errors:
  // invalid_argument (empty or larger than max_payload_bytes), would_block (window full: wait
  // for `sent`), unavailable (the group failed or was wedged).
  Result<std::uint64_t> send(std::span<const std::byte> message);

  // Feeds one transport event. Returns true when the event was this group's (an RDMC control
  // message of this group, a write into this group's region, a completion of this group's
  // write). peer_failed events of members are acted on but return false: other modules need
  // them too.
  bool handle(const fabric::Event& event);

  // Retries sends and writes the transport refused with would_block. Cheap when idle.
  void flush();

  // Stops the group without a callback: nothing more is posted, events are ignored.
  void wedge();

  bool failed() const { return failed_; }
  bool wedged() const { return wedged_; }
  bool stopped() const { return failed_ || wedged_; }
  std::uint32_t self_index() const { return self_index_; }
  const GroupOptions& options() const { return options_; }
  // Messages this member still works on (sent or announced, not yet released).
  std::size_t messages_in_flight() const { return messages_.size(); }

 private:
  using Key = std::pair<std::uint32_t, std::uint64_t>;  // (sender index, seq)

  Group(GroupOptions options, fabric::Transport& transport, GroupCallbacks callbacks,
        std::uint32_t self_index);

  std::uint32_t members() const { return static_cast<std::uint32_t>(options_.members.size()); }
  std::uint32_t member_of_rank(std::uint32_t sender, std::uint32_t rank) const;
  std::uint32_t rank_of_member(std::uint32_t sender, std::uint32_t member) const;
  std::optional<std::uint32_t> index_of(NodeId node) const;
  MessageState make_message(std::uint32_t sender, std::uint64_t seq,
                            std::uint64_t size_bytes) const;
  MessageState* find_live(std::uint32_t sender, std::uint32_t seq_low);

  void on_control(NodeId from, const ControlMessage& message);
  void on_announce(std::uint32_t from, const ControlMessage& message);
  void on_ready(std::uint32_t from, const ControlMessage& message);
  void on_block(const fabric::Event& event);
  void on_write_completed(const fabric::Event& event, const WriteContext& context);

  void try_acquire(std::uint32_t sender, std::uint64_t seq);
  void try_sends(MessageState& message);
  Status post_block(const MessageState& message, const Transfer& transfer);
  void try_deliver(std::uint32_t sender);
  void maybe_release(MessageState& message);
  void enqueue_control(std::uint32_t member, const ControlMessage& message);
  void flush_outbox();
  void fail(NodeId member, Status reason);
  void abandon_all();

  GroupOptions options_;
  fabric::Transport& transport_;
  GroupCallbacks callbacks_;
  std::uint32_t self_index_;
  std::map<NodeId, std::uint32_t> index_by_node_;
  std::map<Key, MessageState> messages_;
  // READYs that arrived before the ANNOUNCE of their message: key -> ranks that are ready.
  std::map<Key, std::vector<std::uint32_t>> early_ready_;
  std::vector<std::uint64_t> next_announce_;  // per sender: next seq expected in an ANNOUNCE
  std::vector<std::uint64_t> next_deliver_;   // per sender: next seq to deliver
  std::uint64_t next_send_seq_ = 0;
  // Control messages not yet accepted by the transport, per member, in order.
  std::vector<std::deque<Bytes>> outbox_;
  bool failed_ = false;
  bool wedged_ = false;
};

}  // namespace squall::rdmc
