// rdmc_node workloads: an RDMC group, and the point-to-point baseline (each message written
// by the sender to each receiver in turn with RMA writes).
#include <algorithm>
#include <cstring>
#include <deque>
#include <set>

#include <fmt/format.h>

#include "rdmc_node.hpp"
#include "sst_node_io.hpp"

namespace squall::integration {
namespace {

std::size_t rank_of(const RdmcNodeOptions& options, std::uint32_t id) {
  auto found = std::find(options.members.begin(), options.members.end(), id);
  if (found == options.members.end()) fail(options.id, fmt::format("unknown node {}", id));
  return static_cast<std::size_t>(found - options.members.begin());
}

class RdmcWorkload final : public RdmcWork {
 public:
  RdmcWorkload(const RdmcNodeOptions& options, fabric::Transport& transport,
               std::span<std::byte> region, Payloads& payloads)
      : options_(options), payloads_(payloads), deliveries_(options, payloads),
        sender_(options.is_sender(options.id)) {
    auto algorithm = rdmc::parse_algorithm(options.algorithm);
    if (!algorithm.is_ok()) fail(options.id, algorithm.status().to_string());
    rdmc::GroupOptions group;
    group.group_id = 1;
    for (std::uint32_t id : options.members) group.members.push_back(NodeId(id));
    group.block_size_bytes = options.block_bytes;
    group.algorithm = *algorithm;
    group.max_payload_bytes = options.size_max_bytes;
    group.window = static_cast<std::uint32_t>(options.window);
    group.region = kRdmcRegion;
    group.region_memory = region;
    auto created = rdmc::Group::create(group, transport, callbacks());
    if (!created.is_ok()) fail(options.id, "rdmc group: " + created.status().to_string());
    group_ = std::move(created).value();
    if (sender_) buffer_.resize(options.size_max_bytes);
  }

  void on_event(const fabric::Event& event) override {
    if (group_->handle(event)) return;
    if (event.kind == fabric::EventKind::peer_failed ||
        event.kind == fabric::EventKind::peer_connected) {
      return;  // the group acted on it (or it does not matter)
    }
    fail(options_.id, fmt::format("event {} from {} is not RDMC's",
                                  static_cast<int>(event.kind), event.peer));
  }

  bool step() override {
    group_->flush();
    bool progress = false;
    while (sender_ && next_ < options_.messages && !group_->stopped()) {
      std::span<std::byte> message(buffer_.data(), payloads_.size(options_.id, next_));
      payloads_.build(options_.id, next_, message);
      auto seq = group_->send(message);
      if (!seq.is_ok() && seq.status().code() == Code::would_block) break;
      if (!seq.is_ok()) {
        if (group_->stopped()) break;
        fail(options_.id, "rdmc send: " + seq.status().to_string());
      }
      if (*seq != next_) fail(options_.id, fmt::format("send got seq {}", *seq));
      deliveries_.deliver(rank_of(options_, options_.id), next_, message);
      ++next_;
      progress = true;
    }
    return progress;
  }

  bool done() const override {
    if (group_->failed()) return true;
    for (std::size_t rank = 0; rank < options_.members.size(); ++rank) {
      if (options_.is_sender(options_.members[rank]) &&
          deliveries_.delivered(rank) < options_.messages) {
        return false;
      }
    }
    return !sender_ || sent_ == options_.messages;
  }

  nlohmann::json result() const override {
    nlohmann::json line = deliveries_.result();
    line["sent"] = sent_;
    line["group_failed"] = group_->failed();
    return line;
  }
  nlohmann::json progress() const override {
    return {{"sent", sent_}, {"bytes_delivered", deliveries_.bytes()}};
  }

 private:
  rdmc::GroupCallbacks callbacks() {
    rdmc::GroupCallbacks callbacks;
    callbacks.delivered = [this](NodeId sender, std::uint64_t seq,
                                 std::span<const std::byte> payload) {
      deliveries_.deliver(rank_of(options_, sender.value), seq, payload);
    };
    // Messages may leave out of order (a later one's writes can finish first); each must
    // leave exactly once.
    callbacks.sent = [this](std::uint64_t seq) {
      if (seq >= next_ || left_.contains(seq)) {
        fail(options_.id, fmt::format("sent({}) unexpected ({} handed over)", seq, next_));
      }
      left_.insert(seq);
      ++sent_;
    };
    callbacks.failed = [this](NodeId member, const Status& reason) {
      emit({{"event", "group_failed"},
            {"node", options_.id},
            {"member", member.value},
            {"at_us", now_us()},
            {"reason", reason.to_string()}});
    };
    return callbacks;
  }

  const RdmcNodeOptions& options_;
  Payloads& payloads_;
  RdmcDeliveries deliveries_;
  bool sender_;
  std::unique_ptr<rdmc::Group> group_;
  Bytes buffer_;
  std::uint64_t next_ = 0;
  std::uint64_t sent_ = 0;
  std::set<std::uint64_t> left_;  // seqs reported by the sent callback
};

// Message k of sender s lives in slot s * window + k % window of the p2p region on every
// member. The sender builds it in its own slot, then writes it, in chunks of block_bytes, to
// each receiver in rank order; the last chunk carries immediate data (sender rank, k). The
// receiver checks the slot and acknowledges with a two-sided message; slot k % window is
// reused for message k + window once every receiver acknowledged k.
class P2pWorkload final : public RdmcWork {
 public:
  P2pWorkload(const RdmcNodeOptions& options, fabric::Transport& transport,
              std::span<std::byte> region, Payloads& payloads)
      : options_(options), transport_(transport), region_(region), payloads_(payloads),
        deliveries_(options, payloads), sender_(options.is_sender(options.id)),
        self_rank_(rank_of(options, options.id)), acked_(options.members.size(), 0) {}

  void on_event(const fabric::Event& event) override {
    switch (event.kind) {
      case fabric::EventKind::write_completed:
        if (!event.status.is_ok()) fail(options_.id, "write: " + event.status.to_string());
        --in_flight_;
        return;
      case fabric::EventKind::remote_write:
        on_message_written(event);
        return;
      case fabric::EventKind::message:
        on_ack(event);
        return;
      case fabric::EventKind::peer_connected:
        return;
      case fabric::EventKind::peer_failed:
        // Peers leave when the driver ends the run; before the result it is a failure.
        if (done()) return;
        fail(options_.id, fmt::format("peer {} failed: {}", event.peer, event.status.to_string()));
    }
  }

  bool step() override {
    bool progress = flush_acks();
    while (sender_ && next_ < options_.messages && in_flight_ < options_.write_depth) {
      if (!cursor_built_ && !build_next()) break;
      if (!post_next_chunk()) break;
      progress = true;
    }
    return progress;
  }

  bool done() const override {
    for (std::size_t rank = 0; rank < options_.members.size(); ++rank) {
      if (options_.is_sender(options_.members[rank]) &&
          deliveries_.delivered(rank) < options_.messages) {
        return false;
      }
    }
    return !sender_ || min_acked() == options_.messages;
  }

  nlohmann::json result() const override {
    nlohmann::json line = deliveries_.result();
    line["sent"] = sender_ ? min_acked() : 0;
    return line;
  }
  nlohmann::json progress() const override {
    return {{"bytes_delivered", deliveries_.bytes()}};
  }

 private:
  std::uint64_t slot_offset(std::size_t rank, std::uint64_t index) const {
    return (rank * options_.window + index % options_.window) * options_.size_max_bytes;
  }

  std::uint64_t min_acked() const {
    std::uint64_t lowest = options_.messages;
    for (std::size_t rank = 0; rank < acked_.size(); ++rank) {
      if (rank != self_rank_) lowest = std::min(lowest, acked_[rank]);
    }
    return lowest;
  }

  // Builds message next_ in our slot once the slot's previous message is acknowledged.
  bool build_next() {
    if (next_ >= min_acked() + options_.window) return false;
    std::span<std::byte> slot = region_.subspan(slot_offset(self_rank_, next_),
                                                payloads_.size(options_.id, next_));
    payloads_.build(options_.id, next_, slot);
    deliveries_.deliver(self_rank_, next_, slot);
    cursor_built_ = true;
    cursor_rank_ = self_rank_ == 0 ? 1 : 0;
    cursor_offset_ = 0;
    return true;
  }

  bool post_next_chunk() {
    std::uint64_t size = payloads_.size(options_.id, next_);
    std::uint64_t length = std::min(options_.block_bytes, size - cursor_offset_);
    bool last = cursor_offset_ + length >= size;
    std::uint64_t at = slot_offset(self_rank_, next_) + cursor_offset_;
    std::optional<std::uint64_t> immediate;
    if (last) immediate = (std::uint64_t{self_rank_} << 48) | next_;
    Status status = transport_.write({NodeId(options_.members[cursor_rank_]), kP2pRegion, at,
                                      kP2pRegion, at, length, ++contexts_, immediate});
    if (status.code() == Code::would_block) return false;
    if (!status.is_ok()) fail(options_.id, "p2p write: " + status.to_string());
    ++in_flight_;
    cursor_offset_ += length;
    if (last) {
      cursor_offset_ = 0;
      cursor_rank_ += cursor_rank_ + 1 == self_rank_ ? 2 : 1;
      if (cursor_rank_ >= options_.members.size()) {
        ++next_;
        cursor_built_ = false;
      }
    }
    return true;
  }

  void on_message_written(const fabric::Event& event) {
    std::size_t rank = event.immediate >> 48;
    std::uint64_t index = event.immediate & ((std::uint64_t{1} << 48) - 1);
    if (rank >= options_.members.size() || options_.members[rank] != event.peer.value) {
      fail(options_.id, fmt::format("p2p immediate {:#x} from {}", event.immediate, event.peer));
    }
    std::uint32_t sender = options_.members[rank];
    deliveries_.deliver(rank, index,
                        region_.subspan(slot_offset(rank, index), payloads_.size(sender, index)));
    pending_acks_.push_back({event.peer, index});
  }

  void on_ack(const fabric::Event& event) {
    std::uint64_t index = 0;
    if (event.payload.size() != sizeof(index)) fail(options_.id, "malformed p2p ack");
    std::memcpy(&index, event.payload.data(), sizeof(index));
    std::size_t rank = rank_of(options_, event.peer.value);
    if (index != acked_[rank]) fail(options_.id, fmt::format("ack {} out of order", index));
    ++acked_[rank];
  }

  bool flush_acks() {
    bool sent = false;
    while (!pending_acks_.empty()) {
      auto [peer, index] = pending_acks_.front();
      Status status = transport_.send(peer, {reinterpret_cast<const std::byte*>(&index), 8});
      if (status.code() == Code::would_block) break;
      if (!status.is_ok()) fail(options_.id, "p2p ack: " + status.to_string());
      pending_acks_.pop_front();
      sent = true;
    }
    return sent;
  }

  const RdmcNodeOptions& options_;
  fabric::Transport& transport_;
  std::span<std::byte> region_;
  Payloads& payloads_;
  RdmcDeliveries deliveries_;
  bool sender_;
  std::size_t self_rank_;
  std::vector<std::uint64_t> acked_;  // per receiver rank: our messages it acknowledged
  std::deque<std::pair<NodeId, std::uint64_t>> pending_acks_;
  std::uint64_t next_ = 0;            // message being written out
  bool cursor_built_ = false;
  std::size_t cursor_rank_ = 0;       // receiver being written
  std::uint64_t cursor_offset_ = 0;   // next byte of the message to write to it
  std::uint64_t in_flight_ = 0;
  std::uint64_t contexts_ = 0;
};

}  // namespace

std::unique_ptr<RdmcWork> make_rdmc_work(const RdmcNodeOptions& options,
                                         fabric::Transport& transport,
                                         std::span<std::byte> region, Payloads& payloads) {
  if (options.mode == "rdmc") {
    return std::make_unique<RdmcWorkload>(options, transport, region, payloads);
  }
  if (options.mode == "p2p") {
    return std::make_unique<P2pWorkload>(options, transport, region, payloads);
  }
  fail(options.id, "unknown --mode " + options.mode);
}

}  // namespace squall::integration
