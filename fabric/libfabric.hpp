// LibfabricTransport: the Transport (fabric/transport.hpp) over libfabric FI_EP_MSG endpoints,
// provider `tcp` (any Ethernet, loopback included) or `verbs` (InfiniBand/RoCE).
//
// One endpoint per peer, one completion queue and one event queue per transport, a passive
// endpoint for incoming connections, and a TCP bootstrap (fabric/bootstrap.hpp) that exchanges
// endpoint names and region keys and then stays open as a liveness channel. The design, wire
// formats and failure semantics are written down in docs/fabric.md.
//
// No libfabric header is visible here: the implementation sits behind a pimpl.
// Threading: like every Transport, one thread owns the object and calls every method; the
// bootstrap runs its own background thread whose results surface only inside poll().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/ids.hpp"
#include "common/status.hpp"
#include "fabric/bootstrap_listener.hpp"
#include "fabric/transport.hpp"

namespace squall::fabric {

// Every field has a default that works on one machine over loopback with `tcp`. Validated once
// by LibfabricTransport::create(); the daemon fills it from its configuration.
struct LibfabricOptions {
  NodeId node_id;                       // this node; the same id the peers use for it
  std::string provider = "tcp";         // "tcp" or "verbs" ("sockets" is refused)
  std::string domain = "lo";            // fi_info domain name: "lo", "eth0", "mlx5_0", ...
  std::string bootstrap_host = "127.0.0.1";  // own listener: the address it binds
  std::uint16_t bootstrap_port = 0;     // own listener: 0 = any free port (bootstrap_port())
  // Several transports behind one bootstrap port (docs/fabric.md, "Channels"): with a shared
  // `listener` (bound once per node), this transport serves `channel` on it, and
  // bootstrap_host/bootstrap_port are ignored. Unset: it binds its own listener, which
  // serves `channel` only. Peers must use the same channel number for this transport.
  std::uint32_t channel = 0;
  std::shared_ptr<BootstrapListener> listener;
  std::uint32_t tx_depth = 128;         // per peer: posted writes + sends not yet completed
  std::uint32_t rx_depth = 128;         // per peer: receive buffers kept posted
  std::uint32_t max_message_bytes = 8192;   // largest send() payload
  std::uint32_t max_peers = 64;         // bounds the completion queue and memory
  std::uint32_t max_regions = 64;       // regions that may be registered
  std::uint32_t connect_timeout_ms = 10'000;  // add_peer() to peer_connected, else peer_failed
  std::uint32_t hello_timeout_ms = 5'000;     // an inbound bootstrap must say hello this fast
  // The cluster secret: hellos carry an HMAC under it (a shared listener needs the same one).
  std::string secret;

  // invalid_argument naming the field and the allowed range, or ok.
  Status validate() const;
};

// Counters for tests and metrics; monotonically increasing.
struct LibfabricStats {
  std::uint64_t bootstrap_refused = 0;  // inbound bootstrap connections refused (bad hello...)
  std::uint64_t writes_posted = 0;
  std::uint64_t sends_posted = 0;
  std::uint64_t messages_received = 0;
  std::uint64_t peers_failed = 0;
};

class LibfabricTransport final : public Transport {
 public:
  // Opens the fabric, domain, queues and passive endpoint and starts the bootstrap listener,
  // or registers options.channel with the shared one (unregistered again, and the channel
  // retired, by the destructor). Errors: invalid_argument (options), not_found (no such
  // provider/domain here), already_exists (a live transport has this channel on the shared
  // listener), io_error/unavailable (libfabric or socket failures), each with the reason.
  static Result<std::unique_ptr<LibfabricTransport>> create(const LibfabricOptions& options);

  // Closes every endpoint and queue without waiting for peers; never hangs.
  ~LibfabricTransport() override;

  NodeId self() const override;
  Status register_region(RegionId id, std::span<std::byte> memory) override;
  Status add_peer(NodeId peer, const PeerAddress& address) override;
  void remove_peer(NodeId peer) override;
  Status write(const WriteRequest& request) override;
  Status send(NodeId peer, std::span<const std::byte> message) override;
  std::size_t poll(std::vector<Event>& out, std::size_t max_events) override;
  std::size_t max_message_bytes() const override;

  // The bootstrap port peers dial: the shared listener's, or the bound one (the chosen one
  // when options.bootstrap_port was 0).
  std::uint16_t bootstrap_port() const;
  LibfabricStats stats() const;

  struct Impl;

 private:
  explicit LibfabricTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace squall::fabric
