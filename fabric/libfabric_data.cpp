// LibfabricTransport: the data path. RMA writes, two-sided frames with credit flow control,
// emulated immediate data, completion processing and poll().
#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>

#include <fmt/format.h>

#include "fabric/libfabric_impl.hpp"

namespace squall::fabric {
namespace {

constexpr std::size_t kCqBatch = 32;
constexpr std::size_t kCqBatchesPerPoll = 4;
// poll() stops reading completions while this many events wait to be handed out.
constexpr std::size_t kReadyHighWater = 1024;

void* as_context(const wire::OpContext& context) {
  return reinterpret_cast<void*>(static_cast<std::uintptr_t>(wire::encode_context(context)));
}

std::string_view kind_name(wire::OpKind kind) {
  switch (kind) {
    case wire::OpKind::recv: return "receive";
    case wire::OpKind::write: return "write";
    case wire::OpKind::send: return "send";
    case wire::OpKind::notice: return "write notice";
    case wire::OpKind::credit: return "credit update";
  }
  return "operation";
}

bool in_range(std::uint64_t offset, std::uint64_t length, std::uint64_t size) {
  return offset <= size && length <= size - offset;
}

}  // namespace

// Frames the peer can still take: its rx_depth minus what is in flight or unreported. The
// peer's report is two words (value, value ^ kCreditCheck) so a torn update is ignored.
std::uint64_t LibfabricTransport::Impl::credits(Peer& peer) {
  auto* words = reinterpret_cast<std::uint64_t*>(peer.control.at(0));
  std::uint64_t value = std::atomic_ref<std::uint64_t>(words[0]).load(std::memory_order_acquire);
  std::uint64_t check = std::atomic_ref<std::uint64_t>(words[1]).load(std::memory_order_acquire);
  if ((value ^ kCreditCheck) == check && value >= peer.frames_acknowledged &&
      value <= peer.frames_sent) {
    peer.frames_acknowledged = value;
  }
  std::uint64_t in_flight = peer.frames_sent - peer.frames_acknowledged;
  SQUALL_ASSERT(in_flight <= peer.remote.rx_depth, "peer {} has {} frames in flight", peer.id,
                in_flight);
  return peer.remote.rx_depth - in_flight;
}

std::uint32_t LibfabricTransport::Impl::take_slot(Peer& peer, wire::OpKind kind,
                                                  std::uint64_t user_context) {
  SQUALL_ASSERT(!peer.free_slots.empty(), "no free tx slot for peer {}", peer.id);
  std::uint32_t slot = peer.free_slots.back();
  peer.free_slots.pop_back();
  TxSlot& entry = peer.slots[slot];
  SQUALL_ASSERT(!entry.in_use, "tx slot {} taken twice", slot);
  entry = TxSlot{true, kind, user_context, 0};
  return slot;
}

void LibfabricTransport::Impl::release_slot(Peer& peer, std::uint32_t slot) {
  SQUALL_ASSERT(peer.slots[slot].in_use, "tx slot {} released twice", slot);
  peer.slots[slot].in_use = false;
  peer.free_slots.push_back(slot);
}

long LibfabricTransport::Impl::post_frame(Peer& peer, std::uint32_t slot) {
  iovec iov{peer.tx.at(slot * frame_bytes()), peer.slots[slot].frame_bytes};
  void* desc = peer.tx.desc;
  fi_msg msg{};
  msg.msg_iov = &iov;
  msg.desc = &desc;
  msg.iov_count = 1;
  msg.context = as_context({peer.incarnation, peer.slots[slot].kind, slot});
  // Transmit completion is enough: the buffer is ours again; ordering does not depend on it.
  std::uint64_t flags = FI_COMPLETION | (options.provider == "tcp" ? FI_TRANSMIT_COMPLETE : 0);
  return fi_sendmsg(peer.ep.get(), &msg, flags);
}

Status LibfabricTransport::Impl::post_recv(Peer& peer, std::uint32_t index) {
  void* context = as_context({peer.incarnation, wire::OpKind::recv, index});
  ssize_t code = fi_recv(peer.ep.get(), peer.rx.at(index * frame_bytes()), frame_bytes(),
                         peer.rx.desc, 0, context);
  if (code != 0) return io_error(fi_error_text("fi_recv", code));
  return Status::ok();
}

Status LibfabricTransport::Impl::write(const WriteRequest& request) {
  auto local = regions.find(request.local_region);
  if (local == regions.end()) {
    return invalid_argument(fmt::format("no local region {}", request.local_region));
  }
  if (request.length == 0 || request.length > max_rma_bytes ||
      !in_range(request.local_offset, request.length, local->second.memory.size())) {
    return invalid_argument(fmt::format("write of {} bytes at {} outside local region {}",
                                        request.length, request.local_offset,
                                        request.local_region));
  }
  Peer* peer = connected_peer(request.peer);
  if (peer == nullptr) return unavailable(fmt::format("peer {} is not connected", request.peer));
  auto remote = peer->remote_regions.find(request.remote_region);
  if (remote == peer->remote_regions.end() ||
      !in_range(request.remote_offset, request.length, remote->second.length)) {
    return invalid_argument(fmt::format("write of {} bytes at {} outside region {} of peer {}",
                                        request.length, request.remote_offset,
                                        request.remote_region, request.peer));
  }
  bool notify = request.immediate.has_value();
  if (!peer->backlog.empty() || peer->free_slots.size() < (notify ? 2U : 1U) ||
      (notify && credits(*peer) == 0)) {
    return Status(Code::would_block, fmt::format("queue to peer {} is full", request.peer));
  }
  std::uint32_t slot = take_slot(*peer, wire::OpKind::write, request.context);
  iovec iov{local->second.memory.data() + request.local_offset, request.length};
  void* desc = local->second.desc;
  fi_rma_iov target{remote->second.address + request.remote_offset, request.length,
                    remote->second.key};
  fi_msg_rma msg{};
  msg.msg_iov = &iov;
  msg.desc = &desc;
  msg.iov_count = 1;
  msg.rma_iov = &target;
  msg.rma_iov_count = 1;
  msg.context = as_context({peer->incarnation, wire::OpKind::write, slot});
  ssize_t code = fi_writemsg(peer->ep.get(), &msg, write_flags);
  if (code == -FI_EAGAIN) {
    release_slot(*peer, slot);
    return Status(Code::would_block, fmt::format("provider queue to peer {} is full", peer->id));
  }
  if (code != 0) {
    release_slot(*peer, slot);
    fail_peer(*peer, io_error(fi_error_text("fi_writemsg", code)));
    return unavailable(fmt::format("peer {} failed", request.peer));
  }
  ++stats.writes_posted;
  if (!notify) return Status::ok();

  // Emulated immediate data: a notice frame right behind the write on the same endpoint.
  // FI_ORDER_SAW makes the peer see it only after the written bytes.
  std::uint32_t notice = take_slot(*peer, wire::OpKind::notice, 0);
  wire::put_notice_frame(std::span(peer->tx.at(notice * frame_bytes()), wire::kNoticeFrameBytes),
                         {request.remote_region, request.remote_offset, request.length,
                          *request.immediate});
  peer->slots[notice].frame_bytes = wire::kNoticeFrameBytes;
  ++peer->frames_sent;
  code = post_frame(*peer, notice);
  if (code == -FI_EAGAIN) {
    peer->backlog.push_back(notice);  // the write is posted: its notice must follow it
  } else if (code != 0) {
    fail_peer(*peer, io_error(fi_error_text("fi_sendmsg", code)));
  }
  return Status::ok();
}

Status LibfabricTransport::Impl::send(NodeId id, std::span<const std::byte> message) {
  if (message.size() > options.max_message_bytes) {
    return invalid_argument(fmt::format("message of {} bytes exceeds max_message_bytes {}",
                                        message.size(), options.max_message_bytes));
  }
  Peer* peer = connected_peer(id);
  if (peer == nullptr) return unavailable(fmt::format("peer {} is not connected", id));
  if (!peer->backlog.empty() || peer->free_slots.empty() || credits(*peer) == 0) {
    return Status(Code::would_block, fmt::format("queue to peer {} is full", id));
  }
  std::uint32_t slot = take_slot(*peer, wire::OpKind::send, 0);
  std::span<std::byte> frame(peer->tx.at(slot * frame_bytes()),
                             wire::kFrameHeaderBytes + message.size());
  wire::put_frame_header(frame, wire::FrameKind::message,
                         static_cast<std::uint32_t>(message.size()));
  if (!message.empty()) {
    std::memcpy(frame.data() + wire::kFrameHeaderBytes, message.data(), message.size());
  }
  peer->slots[slot].frame_bytes = frame.size();
  long code = post_frame(*peer, slot);
  if (code == -FI_EAGAIN) {
    release_slot(*peer, slot);
    return Status(Code::would_block, fmt::format("provider queue to peer {} is full", id));
  }
  if (code != 0) {
    release_slot(*peer, slot);
    fail_peer(*peer, io_error(fi_error_text("fi_sendmsg", code)));
    return unavailable(fmt::format("peer {} failed", id));
  }
  ++peer->frames_sent;
  ++stats.sends_posted;
  return Status::ok();
}

void LibfabricTransport::Impl::flush_backlog(Peer& peer) {
  while (!peer.backlog.empty()) {
    long code = post_frame(peer, peer.backlog.front());
    if (code == -FI_EAGAIN) return;
    if (code != 0) {
      fail_peer(peer, io_error(fi_error_text("fi_sendmsg", code)));
      return;
    }
    peer.backlog.pop_front();
  }
}

// Tells the peer how many of its frames were consumed (and re-posted), once a quarter of the
// receive buffers is unreported. One update in flight at a time: the staging words stay
// unchanged until the provider has read them.
void LibfabricTransport::Impl::report_credits(Peer& peer) {
  std::uint64_t threshold = std::max<std::uint64_t>(1, options.rx_depth / 4);
  if (peer.credit_write_in_flight || peer.free_slots.empty() ||
      peer.frames_consumed - peer.frames_reported < threshold) {
    return;
  }
  auto* stage = reinterpret_cast<std::uint64_t*>(peer.control.at(kCreditStageOffset));
  stage[0] = peer.frames_consumed;
  stage[1] = peer.frames_consumed ^ kCreditCheck;
  std::uint32_t slot = take_slot(peer, wire::OpKind::credit, 0);
  iovec iov{stage, 2 * sizeof(std::uint64_t)};
  void* desc = peer.control.desc;
  fi_rma_iov target{peer.remote.control.address, iov.iov_len, peer.remote.control.key};
  fi_msg_rma msg{};
  msg.msg_iov = &iov;
  msg.desc = &desc;
  msg.iov_count = 1;
  msg.rma_iov = &target;
  msg.rma_iov_count = 1;
  msg.context = as_context({peer.incarnation, wire::OpKind::credit, slot});
  std::uint64_t flags = FI_COMPLETION | (options.provider == "tcp" ? FI_TRANSMIT_COMPLETE : 0);
  ssize_t code = fi_writemsg(peer.ep.get(), &msg, flags);
  if (code == -FI_EAGAIN) {
    release_slot(peer, slot);
    return;
  }
  if (code != 0) {
    release_slot(peer, slot);
    fail_peer(peer, io_error(fi_error_text("credit fi_writemsg", code)));
    return;
  }
  peer.credit_write_in_flight = true;
  peer.frames_reported = peer.frames_consumed;
}

void LibfabricTransport::Impl::emit(Peer& peer, Event event) {
  if (peer.state == PeerState::connected) {
    ready.push_back(std::move(event));
  } else {
    peer.early.push_back(std::move(event));  // bounded by rx_depth: one per receive buffer
  }
}

void LibfabricTransport::Impl::on_receive(Peer& peer, std::uint32_t index, std::size_t length) {
  if (length > frame_bytes()) {
    fail_peer(peer, corruption(fmt::format("peer {} sent a {}-byte frame", peer.id, length)));
    return;
  }
  std::span<const std::byte> received(peer.rx.at(index * frame_bytes()), length);
  auto frame = wire::parse_frame(received);
  if (!frame) {
    fail_peer(peer, frame.status().with_context(fmt::format("from peer {}", peer.id)));
    return;
  }
  Event event;
  event.peer = peer.id;
  if (frame->kind == wire::FrameKind::message) {
    event.kind = EventKind::message;
    event.payload.assign(frame->payload.begin(), frame->payload.end());
    ++stats.messages_received;
  } else {
    auto notice = wire::parse_notice(frame->payload);
    auto region = notice ? regions.find(notice->region) : regions.end();
    if (!notice || region == regions.end() ||
        !in_range(notice->offset, notice->length, region->second.memory.size())) {
      fail_peer(peer, corruption(fmt::format("peer {} sent an invalid write notice", peer.id)));
      return;
    }
    event.kind = EventKind::remote_write;
    event.region = notice->region;
    event.offset = notice->offset;
    event.length = notice->length;
    event.immediate = notice->immediate;
  }
  emit(peer, std::move(event));
  Status reposted = post_recv(peer, index);
  if (!reposted) {
    fail_peer(peer, reposted);
    return;
  }
  ++peer.frames_consumed;
}

void LibfabricTransport::Impl::on_completion(const fi_cq_data_entry& entry) {
  auto context = wire::decode_context(reinterpret_cast<std::uintptr_t>(entry.op_context));
  if (!context) return;  // not ours (e.g. a provider-internal or remote-write entry)
  Peer* peer = peer_by_incarnation(context->incarnation);
  if (peer == nullptr) return;  // its connection is gone; nothing to do
  if (context->kind == wire::OpKind::recv) {
    SQUALL_ASSERT(context->slot < options.rx_depth, "receive slot {}", context->slot);
    on_receive(*peer, context->slot, entry.len);
    return;
  }
  SQUALL_ASSERT(context->slot < peer->slots.size() && peer->slots[context->slot].in_use,
                "completion for idle tx slot {} of peer {}", context->slot, peer->id);
  std::uint64_t user_context = peer->slots[context->slot].user_context;
  release_slot(*peer, context->slot);
  if (context->kind == wire::OpKind::credit) peer->credit_write_in_flight = false;
  if (context->kind == wire::OpKind::write && user_context != 0) {
    Event event;
    event.kind = EventKind::write_completed;
    event.peer = peer->id;
    event.context = user_context;
    ready.push_back(std::move(event));
  }
}

void LibfabricTransport::Impl::on_cq_error() {
  fi_cq_err_entry error{};
  if (fi_cq_readerr(cq.get(), &error, 0) < 0) return;
  auto context = wire::decode_context(reinterpret_cast<std::uintptr_t>(error.op_context));
  Peer* peer = context ? peer_by_incarnation(context->incarnation) : nullptr;
  if (peer == nullptr) return;  // typically a cancelled operation of a closed endpoint
  std::array<char, 256> text{};
  const char* detail =
      fi_cq_strerror(cq.get(), error.prov_errno, error.err_data, text.data(), text.size());
  Status status = unavailable(fmt::format("{} to peer {} failed: {} ({})",
                                          kind_name(context->kind), peer->id,
                                          fi_strerror(error.err), detail ? detail : ""));
  if (context->kind != wire::OpKind::recv && context->slot < peer->slots.size() &&
      peer->slots[context->slot].in_use) {
    std::uint64_t user_context = peer->slots[context->slot].user_context;
    release_slot(*peer, context->slot);
    if (context->kind == wire::OpKind::write && user_context != 0 &&
        peer->state == PeerState::connected) {
      Event event;
      event.kind = EventKind::write_completed;
      event.peer = peer->id;
      event.context = user_context;
      event.status = status;
      ready.push_back(std::move(event));
    }
  }
  fail_peer(*peer, std::move(status));
}

void LibfabricTransport::Impl::progress_cq() {
  std::array<fi_cq_data_entry, kCqBatch> entries{};
  for (std::size_t batch = 0; batch < kCqBatchesPerPoll; ++batch) {
    ssize_t count = fi_cq_read(cq.get(), entries.data(), entries.size());
    if (count == -FI_EAGAIN) return;
    if (count == -FI_EAVAIL) {
      on_cq_error();
      continue;
    }
    if (count < 0) {
      log->error("fabric: {}", fi_error_text("fi_cq_read", count));
      return;
    }
    for (ssize_t i = 0; i < count; ++i) on_completion(entries[static_cast<std::size_t>(i)]);
    if (static_cast<std::size_t>(count) < entries.size()) return;
  }
}

std::size_t LibfabricTransport::Impl::poll(std::vector<Event>& out, std::size_t max_events) {
  drain_bootstrap();
  progress_eq();
  if (ready.size() < kReadyHighWater) progress_cq();
  for (auto& [id, peer] : peers) {
    if (peer->state != PeerState::connected) continue;
    flush_backlog(*peer);
    if (peer->state == PeerState::connected) report_credits(*peer);
  }
  std::size_t delivered = 0;
  while (delivered < max_events && !ready.empty()) {
    out.push_back(std::move(ready.front()));
    ready.pop_front();
    ++delivered;
  }
  return delivered;
}

}  // namespace squall::fabric
