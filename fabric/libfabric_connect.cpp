// LibfabricTransport: peer life cycle. add_peer -> bootstrap hello -> fi_connect (lower id) or
// FI_CONNREQ + fi_accept (higher id) -> FI_CONNECTED -> ... -> exactly one peer_failed.
#include <array>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "fabric/libfabric_impl.hpp"

namespace squall::fabric {
namespace {

constexpr std::size_t kEqReadsPerPoll = 16;
constexpr std::size_t kCmDataMaxBytes = 256;

Status aborted(std::string message) { return {Code::aborted, std::move(message)}; }

}  // namespace

Peer* LibfabricTransport::Impl::peer_by_incarnation(std::uint32_t incarnation) {
  auto it = incarnations.find(incarnation);
  return it == incarnations.end() ? nullptr : it->second;
}

Peer* LibfabricTransport::Impl::peer_by_fid(fid_t fid) {
  auto it = endpoints.find(fid);
  return it == endpoints.end() ? nullptr : peer_by_incarnation(it->second);
}

Peer* LibfabricTransport::Impl::connected_peer(NodeId id) {
  auto it = peers.find(id);
  if (it == peers.end() || it->second->state != PeerState::connected) return nullptr;
  return it->second.get();
}

Status LibfabricTransport::Impl::allocate_peer_buffers(Peer& peer) {
  SQUALL_TRY(register_buffer(peer.rx, frame_bytes() * options.rx_depth, FI_RECV));
  SQUALL_TRY(register_buffer(peer.tx, frame_bytes() * options.tx_depth, FI_SEND));
  SQUALL_TRY(register_buffer(peer.control, kControlBytes, FI_WRITE | FI_REMOTE_WRITE));
  peer.slots.assign(options.tx_depth, TxSlot{});
  peer.free_slots.clear();
  for (std::uint32_t slot = options.tx_depth; slot > 0; --slot) {
    peer.free_slots.push_back(slot - 1);
  }
  return Status::ok();
}

Status LibfabricTransport::Impl::add_peer(NodeId id, const PeerAddress& address) {
  if (id == options.node_id) return invalid_argument("a node cannot be its own peer");
  if (address.host.empty() || address.port == 0) {
    return invalid_argument(fmt::format("peer {}: address needs a host and a port", id));
  }
  if (auto it = peers.find(id); it != peers.end()) {
    if (it->second->state != PeerState::failed) {
      return Status(Code::already_exists, fmt::format("peer {} was added already", id));
    }
    peers.erase(it);  // a failed peer may be added again: a new incarnation
  }
  if (peers.size() >= options.max_peers) {
    return Status(Code::no_space, fmt::format("at most {} peers", options.max_peers));
  }
  auto peer = std::make_unique<Peer>();
  peer->id = id;
  peer->address = address;
  peer->dialer = options.node_id < id;
  peer->incarnation = next_incarnation++;
  peer->local_nonce = nonce_source();
  SQUALL_TRY(allocate_peer_buffers(*peer));
  regions_frozen = true;
  bootstrap->open(id, address, peer->incarnation, hello_for(*peer));
  incarnations[peer->incarnation] = peer.get();
  log->debug("fabric: adding peer {} at {}:{} (incarnation {}, {})", id, address.host,
             address.port, peer->incarnation, peer->dialer ? "dialing" : "accepting");
  peers[id] = std::move(peer);
  return Status::ok();
}

void LibfabricTransport::Impl::remove_peer(NodeId id) {
  auto it = peers.find(id);
  if (it == peers.end()) return;
  fail_peer(*it->second, aborted(fmt::format("peer {} removed", id)));
  peers.erase(it);
}

// The one place a peer dies. Reports outstanding signalled writes, then peer_failed, then
// releases everything; later completions of this incarnation are dropped on arrival.
void LibfabricTransport::Impl::fail_peer(Peer& peer, Status status) {
  if (peer.state == PeerState::failed) return;
  SQUALL_ASSERT(!status.is_ok(), "peer {} failed with an ok status", peer.id);
  log->warn("fabric: peer {} failed: {}", peer.id, status.to_string());
  if (peer.state == PeerState::connected) {
    for (const TxSlot& slot : peer.slots) {
      if (!slot.in_use || slot.kind != wire::OpKind::write || slot.user_context == 0) continue;
      Event event;
      event.kind = EventKind::write_completed;
      event.peer = peer.id;
      event.context = slot.user_context;
      event.status = unavailable(fmt::format("peer {} failed before the write completed",
                                             peer.id));
      ready.push_back(std::move(event));
    }
  }
  Event event;
  event.kind = EventKind::peer_failed;
  event.peer = peer.id;
  event.status = std::move(status);
  ready.push_back(std::move(event));
  ++stats.peers_failed;
  bootstrap->close(peer.id, peer.incarnation);
  release_peer(peer);
  peer.state = PeerState::failed;
}

void LibfabricTransport::Impl::release_peer(Peer& peer) {
  incarnations.erase(peer.incarnation);
  if (peer.ep_fid != nullptr) endpoints.erase(peer.ep_fid);
  peer.ep_fid = nullptr;
  peer.ep.reset();  // after fi_close the provider no longer touches the buffers below
  peer.rx = RegisteredBuffer{};
  peer.tx = RegisteredBuffer{};
  peer.control = RegisteredBuffer{};
  peer.slots.clear();
  peer.free_slots.clear();
  peer.backlog.clear();
  peer.early.clear();
}

void LibfabricTransport::Impl::drain_bootstrap() {
  std::vector<BootstrapEvent> events;
  bootstrap->drain(events);
  for (BootstrapEvent& event : events) {
    Peer* peer = peer_by_incarnation(static_cast<std::uint32_t>(event.session));
    if (peer == nullptr || peer->id != event.peer) continue;  // an old incarnation
    if (event.kind == BootstrapEvent::Kind::failed) {
      fail_peer(*peer, std::move(event.status));
    } else if (peer->state == PeerState::handshaking) {
      on_hello(*peer, std::move(event.hello));
    }
  }
}

void LibfabricTransport::Impl::on_hello(Peer& peer, Hello hello) {
  if (hello.max_message_bytes < options.max_message_bytes) {
    fail_peer(peer, invalid_argument(fmt::format(
                        "peer {} accepts messages of {} bytes, this node sends up to {}",
                        peer.id, hello.max_message_bytes, options.max_message_bytes)));
    return;
  }
  if (hello.control.length < kControlBytes) {
    fail_peer(peer, invalid_argument(fmt::format("peer {} credit block too small", peer.id)));
    return;
  }
  peer.remote_regions.clear();
  for (const RegionDescriptor& region : hello.regions) peer.remote_regions[region.id] = region;
  peer.remote = std::move(hello);
  peer.state = PeerState::connecting;
  if (!peer.dialer) return;  // the peer connects to us: wait for FI_CONNREQ
  Status status = start_connect(peer);
  if (!status) fail_peer(peer, status);
}

// Creates, binds and enables an endpoint and posts every receive buffer before the connection
// can carry data, so no early frame finds the queue empty.
Status LibfabricTransport::Impl::open_endpoint(Peer& peer, fi_info* endpoint_info) {
  endpoint_info->tx_attr->size = options.tx_depth;
  endpoint_info->rx_attr->size = options.rx_depth;
  fid_ep* ep = nullptr;
  int code = fi_endpoint(domain.get(), endpoint_info, &ep, nullptr);
  if (code != 0) return io_error(fi_error_text("fi_endpoint", code));
  peer.ep.reset(ep);
  peer.ep_fid = &ep->fid;
  endpoints[peer.ep_fid] = peer.incarnation;
  code = fi_ep_bind(ep, &eq->fid, 0);
  if (code != 0) return io_error(fi_error_text("fi_ep_bind eq", code));
  code = fi_ep_bind(ep, &cq->fid, FI_TRANSMIT | FI_RECV);
  if (code != 0) return io_error(fi_error_text("fi_ep_bind cq", code));
  code = fi_enable(ep);
  if (code != 0) return io_error(fi_error_text("fi_enable", code));
  for (std::uint32_t index = 0; index < options.rx_depth; ++index) {
    SQUALL_TRY(post_recv(peer, index));
  }
  return Status::ok();
}

Status LibfabricTransport::Impl::start_connect(Peer& peer) {
  // An fi_info aimed at the peer's passive endpoint (the portable way to reach it with every
  // provider, verbs' address resolution included).
  InfoPtr hints(fi_dupinfo(info.get()));
  if (hints == nullptr) return io_error("fi_dupinfo failed");
  std::free(hints->dest_addr);
  hints->dest_addr = std::malloc(peer.remote.endpoint_name.size());
  SQUALL_ASSERT(hints->dest_addr != nullptr, "out of memory");
  std::memcpy(hints->dest_addr, peer.remote.endpoint_name.data(),
              peer.remote.endpoint_name.size());
  hints->dest_addrlen = peer.remote.endpoint_name.size();
  fi_info* found = nullptr;
  int code = fi_getinfo(kFiVersion, nullptr, nullptr, 0, hints.get(), &found);
  InfoPtr target(found);
  if (code != 0 || target == nullptr) {
    return unavailable(fi_error_text(fmt::format("fi_getinfo for peer {}", peer.id), code));
  }
  SQUALL_TRY(open_endpoint(peer, target.get()));
  std::array<std::byte, wire::kConnreqBytes> param{};
  wire::put_connect_request(param, {options.node_id, peer.id, peer.remote.nonce});
  code = fi_connect(peer.ep.get(), target->dest_addr, param.data(), param.size());
  if (code != 0) return unavailable(fi_error_text("fi_connect", code));
  return Status::ok();
}

Status LibfabricTransport::Impl::accept(Peer& peer, fi_info* request_info) {
  SQUALL_TRY(open_endpoint(peer, request_info));
  int code = fi_accept(peer.ep.get(), nullptr, 0);
  if (code != 0) return unavailable(fi_error_text("fi_accept", code));
  return Status::ok();
}

void LibfabricTransport::Impl::on_connreq(const fi_eq_cm_entry& entry,
                                          std::span<const std::byte> data) {
  InfoPtr request_info(entry.info);
  auto reject = [&](const std::string& why) {
    log->warn("fabric: connection request refused: {}", why);
    fi_reject(pep.get(), request_info->handle, nullptr, 0);
  };
  auto request = wire::parse_connect_request(data);
  if (!request) return reject(request.status().message());
  auto find = [&]() -> Peer* {
    auto it = peers.find(request->from);
    return it == peers.end() ? nullptr : it->second.get();
  };
  Peer* peer = find();
  if (peer != nullptr && peer->state == PeerState::handshaking) {
    // The bootstrap queues the hello before it answers, so a second look always finds it.
    drain_bootstrap();
    peer = find();
  }
  if (request->to != options.node_id || peer == nullptr || peer->dialer ||
      peer->state != PeerState::connecting || peer->ep != nullptr ||
      request->nonce != peer->local_nonce) {
    return reject(fmt::format("unexpected request from node {} to node {}", request->from,
                              request->to));
  }
  Status status = accept(*peer, request_info.get());
  if (!status) {
    // Without an endpoint the request is still ours to answer; with one, closing it does.
    if (peer->ep == nullptr) fi_reject(pep.get(), request_info->handle, nullptr, 0);
    fail_peer(*peer, status);
  }
}

void LibfabricTransport::Impl::on_connected(fid_t fid) {
  Peer* peer = peer_by_fid(fid);
  if (peer == nullptr || peer->state != PeerState::connecting) return;
  peer->state = PeerState::connected;
  bootstrap->established(peer->id, peer->incarnation);
  log->info("fabric: connected to peer {}", peer->id);
  Event event;
  event.kind = EventKind::peer_connected;
  event.peer = peer->id;
  ready.push_back(std::move(event));
  for (Event& early : peer->early) ready.push_back(std::move(early));
  peer->early.clear();
}

void LibfabricTransport::Impl::on_eq_error() {
  fi_eq_err_entry error{};
  ssize_t code = fi_eq_readerr(eq.get(), &error, 0);
  if (code < 0) return;
  std::array<char, 256> text{};
  const char* detail =
      fi_eq_strerror(eq.get(), error.prov_errno, error.err_data, text.data(), text.size());
  Peer* peer = peer_by_fid(error.fid);
  if (peer == nullptr) {
    log->debug("fabric: event queue error for no live endpoint: {}", fi_strerror(error.err));
    return;
  }
  fail_peer(*peer, unavailable(fmt::format("connection with peer {}: {} ({})", peer->id,
                                           fi_strerror(error.err), detail ? detail : "")));
}

void LibfabricTransport::Impl::progress_eq() {
  // fi_eq_cm_entry ends in a flexible array: read into raw, suitably aligned storage.
  alignas(fi_eq_cm_entry) std::array<std::byte, sizeof(fi_eq_cm_entry) + kCmDataMaxBytes> raw{};
  for (std::size_t reads = 0; reads < kEqReadsPerPoll; ++reads) {
    std::uint32_t kind = 0;
    ssize_t bytes = fi_eq_read(eq.get(), &kind, raw.data(), raw.size(), 0);
    if (bytes == -FI_EAGAIN) return;
    if (bytes == -FI_EAVAIL) {
      on_eq_error();
      continue;
    }
    if (bytes < 0) {
      log->error("fabric: {}", fi_error_text("fi_eq_read", bytes));
      return;
    }
    fi_eq_cm_entry entry{};
    std::memcpy(&entry, raw.data(), sizeof(entry));
    auto total_bytes = static_cast<std::size_t>(bytes);
    std::size_t data_bytes = total_bytes > sizeof(entry) ? total_bytes - sizeof(entry) : 0;
    if (kind == FI_CONNREQ) {
      on_connreq(entry, std::span(raw).subspan(sizeof(entry), data_bytes));
    } else if (kind == FI_CONNECTED) {
      on_connected(entry.fid);
    } else if (kind == FI_SHUTDOWN) {
      if (Peer* peer = peer_by_fid(entry.fid)) {
        fail_peer(*peer, unavailable(fmt::format("peer {} closed the connection", peer->id)));
      }
    } else {
      log->debug("fabric: ignoring event queue event {}", kind);
    }
  }
}

}  // namespace squall::fabric
