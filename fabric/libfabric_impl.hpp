// Internal to fabric/libfabric*.cpp: the state behind LibfabricTransport. The only header of
// Squall that includes libfabric; nothing outside fabric/libfabric*.cpp may include it.
//
// Resources per transport: fabric, domain, one event queue (connection events), one completion
// queue (every endpoint, both directions), one passive endpoint, the registered regions.
// Resources per peer connection (an "incarnation"): one FI_EP_MSG endpoint, rx_depth receive
// buffers, tx_depth send slots with a send buffer each, a 128-byte credit block. All of them are
// released when the peer fails; completions that name a retired incarnation are dropped.
#pragma once

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/log.hpp"
#include "fabric/bootstrap.hpp"
#include "fabric/libfabric.hpp"
#include "fabric/libfabric_wire.hpp"

namespace squall::fabric {

inline constexpr std::uint32_t kFiVersion = FI_VERSION(1, 17);

template <typename T>
struct FidCloser {
  void operator()(T* object) const {
    if (object != nullptr) fi_close(&object->fid);
  }
};
template <typename T>
using FidPtr = std::unique_ptr<T, FidCloser<T>>;

struct InfoDeleter {
  void operator()(fi_info* info) const { fi_freeinfo(info); }
};
using InfoPtr = std::unique_ptr<fi_info, InfoDeleter>;

// "what: fi_strerror (n)" for a negative libfabric return code.
std::string fi_error_text(std::string_view what, long code);

// Page-aligned, zeroed memory registered with the domain. Moves only.
struct RegisteredBuffer {
  struct Free {
    void operator()(std::byte* memory) const;
  };
  std::unique_ptr<std::byte[], Free> memory;
  std::size_t size_bytes = 0;
  FidPtr<fid_mr> mr;
  void* desc = nullptr;  // fi_mr_desc(): required for local buffers under FI_MR_LOCAL
  std::uint64_t key = 0;
  std::byte* at(std::size_t offset) const { return memory.get() + offset; }
};

struct LocalRegion {
  std::span<std::byte> memory;
  FidPtr<fid_mr> mr;
  void* desc = nullptr;
  std::uint64_t key = 0;
};

enum class PeerState : std::uint8_t {
  handshaking,  // bootstrap hello exchange under way
  connecting,   // hellos exchanged; fi_connect sent or FI_CONNREQ awaited/accepted
  connected,    // peer_connected reported
  failed,       // peer_failed reported; resources released
};

struct TxSlot {
  bool in_use = false;
  wire::OpKind kind = wire::OpKind::write;
  std::uint64_t user_context = 0;  // write: the caller's context (0 = no event)
  std::size_t frame_bytes = 0;     // send/notice: bytes prepared in this slot's buffer
};

// The credit block: word 0..1 are written by the peer (how many of our frames it consumed, as
// value and value ^ kCreditCheck so a torn update is detected); words 8..9 stage our report.
inline constexpr std::size_t kControlBytes = 128;
inline constexpr std::size_t kCreditStageOffset = 64;
inline constexpr std::uint64_t kCreditCheck = 0xA5A5'5A5A'C3C3'3C3CULL;

struct Peer {
  NodeId id;
  PeerAddress address;
  std::uint32_t incarnation = 0;
  PeerState state = PeerState::handshaking;
  bool dialer = false;               // this node has the lower id
  std::uint64_t local_nonce = 0;     // the nonce of the hello this node sent
  Hello remote;                      // valid from state connecting on
  std::map<RegionId, RegionDescriptor> remote_regions;
  FidPtr<fid_ep> ep;
  fid_t ep_fid = nullptr;            // key in Impl::endpoints while ep is open
  RegisteredBuffer rx;               // rx_depth frames
  RegisteredBuffer tx;               // tx_depth frames, one per slot
  RegisteredBuffer control;          // credit block
  std::vector<TxSlot> slots;
  std::vector<std::uint32_t> free_slots;
  std::deque<std::uint32_t> backlog;  // prepared frames the provider refused (EAGAIN), in order
  std::uint64_t frames_sent = 0;      // frames posted to the peer (each uses one peer rx buffer)
  std::uint64_t frames_acknowledged = 0;  // last verified value of the peer's credit words
  std::uint64_t frames_consumed = 0;  // peer frames this node consumed and re-posted
  std::uint64_t frames_reported = 0;  // frames_consumed last written to the peer
  bool credit_write_in_flight = false;
  std::vector<Event> early;           // events that arrived before FI_CONNECTED
};

struct LibfabricTransport::Impl {
  explicit Impl(const LibfabricOptions& opts);
  ~Impl();

  // setup (libfabric_setup.cpp)
  Status open();
  Result<InfoPtr> select_info();
  Status open_queues();
  Status open_listener();
  Status register_buffer(RegisteredBuffer& buffer, std::size_t size_bytes, std::uint64_t access);
  Status register_region(RegionId id, std::span<std::byte> memory);
  Hello hello_for(const Peer& peer) const;
  std::size_t frame_bytes() const { return wire::kFrameHeaderBytes + options.max_message_bytes; }

  // connections (libfabric_connect.cpp)
  Status add_peer(NodeId id, const PeerAddress& address);
  void remove_peer(NodeId id);
  Status allocate_peer_buffers(Peer& peer);
  void fail_peer(Peer& peer, Status status);
  void release_peer(Peer& peer);
  void drain_bootstrap();
  void on_hello(Peer& peer, Hello hello);
  Status start_connect(Peer& peer);
  Status open_endpoint(Peer& peer, fi_info* info);
  void progress_eq();
  void on_connreq(const fi_eq_cm_entry& entry, std::span<const std::byte> data);
  Status accept(Peer& peer, fi_info* info);
  void on_connected(fid_t fid);
  void on_eq_error();
  Peer* peer_by_fid(fid_t fid);
  Peer* peer_by_incarnation(std::uint32_t incarnation);
  Peer* connected_peer(NodeId id);

  // data path (libfabric_data.cpp)
  Status write(const WriteRequest& request);
  Status send(NodeId id, std::span<const std::byte> message);
  std::size_t poll(std::vector<Event>& out, std::size_t max_events);
  std::uint64_t credits(Peer& peer);
  std::uint32_t take_slot(Peer& peer, wire::OpKind kind, std::uint64_t user_context);
  void release_slot(Peer& peer, std::uint32_t slot);
  long post_frame(Peer& peer, std::uint32_t slot);
  Status post_recv(Peer& peer, std::uint32_t index);
  void flush_backlog(Peer& peer);
  void report_credits(Peer& peer);
  void progress_cq();
  void on_completion(const fi_cq_data_entry& entry);
  void on_cq_error();
  void on_receive(Peer& peer, std::uint32_t index, std::size_t length);
  void emit(Peer& peer, Event event);

  LibfabricOptions options;
  std::shared_ptr<spdlog::logger> log;
  InfoPtr info;
  FidPtr<fid_fabric> fabric;
  FidPtr<fid_domain> domain;
  FidPtr<fid_eq> eq;
  FidPtr<fid_cq> cq;
  FidPtr<fid_pep> pep;
  Bytes endpoint_name;
  bool virtual_addressing = false;  // FI_MR_VIRT_ADDR: remote addresses are virtual
  bool provider_keys = false;       // FI_MR_PROV_KEY: the provider picks MR keys
  bool local_mr = false;            // FI_MR_LOCAL: local buffers need descriptors
  std::uint64_t write_flags = 0;    // per-write completion semantics
  std::uint64_t max_rma_bytes = 0;
  std::uint64_t next_key = 1;
  std::map<RegionId, LocalRegion> regions;
  bool regions_frozen = false;      // set by the first add_peer()
  std::map<NodeId, std::unique_ptr<Peer>> peers;
  std::unordered_map<std::uint32_t, Peer*> incarnations;  // live (not failed) peers
  std::unordered_map<fid_t, std::uint32_t> endpoints;     // open endpoint -> incarnation
  std::uint32_t next_incarnation = 1;
  std::mt19937_64 nonce_source;
  std::unique_ptr<Bootstrap> bootstrap;
  std::deque<Event> ready;          // produced, not yet handed out by poll()
  LibfabricStats stats;
};

}  // namespace squall::fabric
