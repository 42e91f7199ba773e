// The workloads of sst_node: SMC multicast, the point-to-point baseline, idle, and a
// single-link RMA write stream.
#include <fmt/format.h>

#include "sst_node.hpp"
#include "sst_node_io.hpp"

namespace squall::integration {
namespace {

// Per-sender delivery bookkeeping shared by the smc and p2p workloads: every message must be
// the next index of its sender, with exactly the derived size and bytes.
class DeliveryCheck {
 public:
  explicit DeliveryCheck(const Member& member)
      : member_(member), delivered_(member.size(), 0), checksums_(member.size()) {}

  void deliver(std::size_t rank, std::uint64_t index, std::span<const std::byte> payload) {
    const NodeOptions& o = member_.options();
    std::uint32_t sender = member_.id_of(rank);
    if (!o.is_sender(sender)) fail(o.id, fmt::format("message from non-sender {}", sender));
    if (index != delivered_[rank]) {
      fail(o.id, fmt::format("from {}: got message {}, expected {}", sender, index,
                             delivered_[rank]));
    }
    if (index >= o.messages) fail(o.id, fmt::format("from {}: extra message {}", sender, index));
    std::size_t size = message_size(o.seed, sender, index, o.size_min_bytes, o.size_max_bytes);
    if (!message_matches(o.seed, sender, index, size, payload)) {
      fail(o.id, fmt::format("from {}: message {} ({} bytes, expected {}) is corrupt", sender,
                             index, payload.size(), size));
    }
    checksums_[rank].add(index, payload);
    ++delivered_[rank];
    bytes_ += payload.size();
  }

  std::uint64_t delivered(std::size_t rank) const { return delivered_[rank]; }

  // Every sender that is not suspected delivered all its messages.
  bool complete() const {
    for (std::size_t rank = 0; rank < member_.size(); ++rank) {
      bool expected = member_.options().is_sender(member_.id_of(rank)) && !member_.suspected(rank);
      if (expected && delivered_[rank] < member_.options().messages) return false;
    }
    return true;
  }

  nlohmann::json result() const {
    nlohmann::json delivered = nlohmann::json::object();
    nlohmann::json checksums = nlohmann::json::object();
    for (std::size_t rank = 0; rank < member_.size(); ++rank) {
      std::string id = std::to_string(member_.id_of(rank));
      delivered[id] = delivered_[rank];
      checksums[id] = checksums_[rank].value();
    }
    return {{"delivered", delivered}, {"checksums", checksums}, {"bytes_delivered", bytes_}};
  }

  std::uint64_t total() const {
    std::uint64_t sum = 0;
    for (std::uint64_t count : delivered_) sum += count;
    return sum;
  }

 private:
  const Member& member_;
  std::vector<std::uint64_t> delivered_;
  std::vector<StreamChecksum> checksums_;
  std::uint64_t bytes_ = 0;
};

class SmcWorkload final : public Workload {
 public:
  explicit SmcWorkload(Member& member)
      : member_(member), check_(member), sender_(member.options().is_sender(member.self())),
        buffer_(member.options().size_max_bytes) {
    member_.set_deliver([this](std::size_t rank, std::uint64_t index,
                               std::span<const std::byte> payload) {
      check_.deliver(rank, index, payload);
    });
  }

  void on_event(const fabric::Event& event) override {
    fail(member_.self(), fmt::format("unexpected transport event {} from {}",
                                     static_cast<int>(event.kind), event.peer));
  }

  bool step() override {
    const NodeOptions& o = member_.options();
    bool sent = false;
    while (sender_ && next_ < o.messages && member_.smc().can_send()) {
      std::size_t size = message_size(o.seed, o.id, next_, o.size_min_bytes, o.size_max_bytes);
      std::span<std::byte> message(buffer_.data(), size);
      fill_message(o.seed, o.id, next_, message);
      Status status = member_.smc().send(message);
      if (!status.is_ok()) fail(o.id, "SMC send: " + status.to_string());
      ++next_;
      sent = true;
    }
    member_.smc().flush();
    return sent;
  }

  bool done() const override {
    if (!check_.complete()) return false;
    if (!sender_) return true;
    if (next_ < member_.options().messages) return false;
    // Every live peer has received all our messages (its counter for us in its row).
    sst::Table& table = member_.table();
    for (std::size_t rank = 0; rank < member_.size(); ++rank) {
      if (rank == member_.rank() || member_.suspected(rank)) continue;
      if (table.read(rank, member_.smc().fields().received, member_.rank()) < next_) {
        return false;
      }
    }
    return true;
  }

  nlohmann::json result() const override {
    nlohmann::json line = check_.result();
    line["sent"] = next_;
    return line;
  }
  nlohmann::json progress() const override {
    return {{"sent", next_}, {"delivered_total", check_.total()}};
  }

 private:
  Member& member_;
  DeliveryCheck check_;
  bool sender_;
  Bytes buffer_;
  std::uint64_t next_ = 0;
};

// The baseline: message k goes to each receiver in turn by Transport::send. The sender
// counts message k as delivered to itself once every live receiver has it posted.
class P2pWorkload final : public Workload {
 public:
  P2pWorkload(Member& member, fabric::Transport& transport)
      : member_(member), transport_(transport), check_(member),
        sender_(member.options().is_sender(member.self())),
        buffer_(member.options().size_max_bytes) {}

  void on_event(const fabric::Event& event) override {
    if (event.kind != fabric::EventKind::message) {
      fail(member_.self(), fmt::format("unexpected transport event {} from {}",
                                       static_cast<int>(event.kind), event.peer));
    }
    auto rank = member_.table().rank_of(event.peer);
    if (!rank) fail(member_.self(), fmt::format("message from stranger {}", event.peer));
    check_.deliver(*rank, check_.delivered(*rank), event.payload);
  }

  bool step() override {
    const NodeOptions& o = member_.options();
    bool progress = false;
    for (int burst = 0; burst < 256 && sender_ && next_ < o.messages; ++burst) {
      if (!prepared_) prepare();
      if (peer_ == member_.size()) {
        check_.deliver(member_.rank(), next_, message());
        ++next_;
        prepared_ = false;
        continue;
      }
      if (peer_ == member_.rank() || member_.suspected(peer_)) {
        ++peer_;
        continue;
      }
      Status status = transport_.send(NodeId(member_.id_of(peer_)), message());
      if (status.code() == Code::would_block) break;
      if (!status.is_ok() && status.code() != Code::unavailable) {
        fail(o.id, "send: " + status.to_string());
      }
      ++peer_;
      progress = true;
    }
    return progress;
  }

  bool done() const override {
    return check_.complete() && (!sender_ || next_ == member_.options().messages);
  }
  nlohmann::json result() const override {
    nlohmann::json line = check_.result();
    line["sent"] = next_;
    return line;
  }
  nlohmann::json progress() const override {
    return {{"sent", next_}, {"delivered_total", check_.total()}};
  }

 private:
  void prepare() {
    const NodeOptions& o = member_.options();
    size_ = message_size(o.seed, o.id, next_, o.size_min_bytes, o.size_max_bytes);
    fill_message(o.seed, o.id, next_, {buffer_.data(), size_});
    peer_ = 0;
    prepared_ = true;
  }
  std::span<const std::byte> message() const { return {buffer_.data(), size_}; }

  Member& member_;
  fabric::Transport& transport_;
  DeliveryCheck check_;
  bool sender_;
  Bytes buffer_;
  std::uint64_t next_ = 0;
  std::size_t size_ = 0;
  std::size_t peer_ = 0;  // next rank to send message next_ to; size(): all done
  bool prepared_ = false;
};

class IdleWorkload final : public Workload {
 public:
  explicit IdleWorkload(Member& member) : member_(member) {}
  void on_event(const fabric::Event& event) override {
    fail(member_.self(), fmt::format("unexpected transport event {} from {}",
                                     static_cast<int>(event.kind), event.peer));
  }
  bool step() override { return false; }
  bool done() const override { return true; }
  nlohmann::json result() const override { return nlohmann::json::object(); }
  nlohmann::json progress() const override { return nlohmann::json::object(); }

 private:
  Member& member_;
};

// Rank 0 writes link_bytes to rank 1 in write_bytes writes, write_depth in flight, from
// write_depth source buffers into as many target buffers. A completion means the bytes are at
// the peer, so the rate is the link's delivered bandwidth.
class LinkWorkload final : public Workload {
 public:
  LinkWorkload(Member& member, fabric::Transport& transport)
      : member_(member), transport_(transport) {
    const NodeOptions& o = member.options();
    writes_ = (o.link_bytes + o.write_bytes - 1) / o.write_bytes;
    writer_ = member.rank() == 0 && member.size() >= 2;
  }

  void on_event(const fabric::Event& event) override {
    if (event.kind != fabric::EventKind::write_completed || !event.status.is_ok()) {
      fail(member_.self(), fmt::format("link: event {} from {}: {}",
                                       static_cast<int>(event.kind), event.peer,
                                       event.status.to_string()));
    }
    ++completed_;
  }

  bool step() override {
    const NodeOptions& o = member_.options();
    bool progress = false;
    while (writer_ && posted_ < writes_ && posted_ - completed_ < o.write_depth) {
      std::uint64_t slot = posted_ % o.write_depth;
      std::uint64_t offset = slot * o.write_bytes;
      std::uint64_t length = std::min(o.write_bytes, o.link_bytes - posted_ * o.write_bytes);
      Status status = transport_.write({NodeId(member_.id_of(1)), kLinkRegion, offset,
                                        kLinkRegion, offset, length, posted_ + 1,
                                        std::nullopt});
      if (status.code() == Code::would_block) break;
      if (!status.is_ok()) fail(o.id, "link write: " + status.to_string());
      ++posted_;
      progress = true;
    }
    return progress;
  }

  bool done() const override { return !writer_ || completed_ == writes_; }
  nlohmann::json result() const override {
    if (!writer_) return {{"role", "target"}};
    return {{"role", "writer"}, {"bytes", member_.options().link_bytes}, {"writes", writes_},
            {"write_bytes", member_.options().write_bytes}};
  }
  nlohmann::json progress() const override { return {{"completed", completed_}}; }

 private:
  Member& member_;
  fabric::Transport& transport_;
  std::uint64_t writes_ = 0;
  bool writer_ = false;
  std::uint64_t posted_ = 0;
  std::uint64_t completed_ = 0;
};

}  // namespace

void register_workload_regions(const NodeOptions& options, fabric::Transport& transport,
                               AlignedBuffer& link_memory) {
  if (options.mode != "link") return;
  std::size_t bytes = options.write_bytes * options.write_depth;
  link_memory = allocate_aligned(bytes);
  for (std::size_t at = 0; at < bytes; ++at) {
    link_memory[at] = static_cast<std::byte>(mix64(at) & 0xFF);
  }
  Status status = transport.register_region(kLinkRegion, {link_memory.get(), bytes});
  if (!status.is_ok()) fail(options.id, "register link region: " + status.to_string());
}

std::unique_ptr<Workload> make_workload(Member& member, fabric::Transport& transport,
                                        std::byte* link_memory) {
  const std::string& mode = member.options().mode;
  if (mode == "smc") return std::make_unique<SmcWorkload>(member);
  if (mode == "p2p") return std::make_unique<P2pWorkload>(member, transport);
  if (mode == "idle") return std::make_unique<IdleWorkload>(member);
  if (mode == "link") {
    SQUALL_ASSERT(link_memory != nullptr, "link mode without its region");
    return std::make_unique<LinkWorkload>(member, transport);
  }
  fail(member.self(), "unknown --mode " + mode);
}

}  // namespace squall::integration
