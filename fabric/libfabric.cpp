#include "fabric/libfabric.hpp"

#include <fmt/format.h>

#include "fabric/libfabric_impl.hpp"

namespace squall::fabric {
namespace {

Status check_range(std::string_view field, std::uint64_t value, std::uint64_t low,
                   std::uint64_t high) {
  if (value < low || value > high) {
    return invalid_argument(
        fmt::format("fabric.{} = {} is outside {}..{}", field, value, low, high));
  }
  return Status::ok();
}

}  // namespace

Status LibfabricOptions::validate() const {
  if (provider == "sockets") {
    return invalid_argument(
        "fabric.provider 'sockets' is refused: libfabric deprecated it and its RMA emulation "
        "breaks under load; use 'tcp' (any Ethernet) or 'verbs' (InfiniBand/RoCE)");
  }
  if (provider != "tcp" && provider != "verbs") {
    return invalid_argument(
        fmt::format("fabric.provider '{}' is unknown (allowed: tcp, verbs)", provider));
  }
  if (domain.empty()) return invalid_argument("fabric.domain is empty (e.g. lo, eth0, mlx5_0)");
  if (listener == nullptr && bootstrap_host.empty()) {
    return invalid_argument("fabric.bootstrap_host is empty");
  }
  SQUALL_TRY(check_range("tx_depth", tx_depth, 2, 16384));
  SQUALL_TRY(check_range("rx_depth", rx_depth, 2, 16384));
  SQUALL_TRY(check_range("max_message_bytes", max_message_bytes, 1, kMaxMessageBytesMax));
  SQUALL_TRY(check_range("max_peers", max_peers, 1, 1024));
  SQUALL_TRY(check_range("max_regions", max_regions, 1, kHelloRegionsMax));
  SQUALL_TRY(check_range("connect_timeout_ms", connect_timeout_ms, 100, 600'000));
  SQUALL_TRY(check_range("hello_timeout_ms", hello_timeout_ms, 100, 600'000));
  return Status::ok();
}

Result<std::unique_ptr<LibfabricTransport>> LibfabricTransport::create(
    const LibfabricOptions& options) {
  SQUALL_TRY(options.validate());
  auto impl = std::make_unique<Impl>(options);
  SQUALL_TRY(impl->open());
  BootstrapOptions bootstrap;
  bootstrap.self = options.node_id;
  bootstrap.provider = options.provider;
  bootstrap.channel = options.channel;
  bootstrap.listener = options.listener;
  bootstrap.host = options.bootstrap_host;
  bootstrap.port = options.bootstrap_port;
  bootstrap.connect_timeout_ms = options.connect_timeout_ms;
  bootstrap.hello_timeout_ms = options.hello_timeout_ms;
  bootstrap.max_pending_inbound = 2 * options.max_peers;
  bootstrap.secret = options.secret;
  auto started = Bootstrap::start(bootstrap);
  if (!started) return started.status();
  impl->bootstrap = std::move(started).value();
  return std::unique_ptr<LibfabricTransport>(new LibfabricTransport(std::move(impl)));
}

LibfabricTransport::LibfabricTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LibfabricTransport::~LibfabricTransport() = default;

NodeId LibfabricTransport::self() const { return impl_->options.node_id; }

Status LibfabricTransport::register_region(RegionId id, std::span<std::byte> memory) {
  return impl_->register_region(id, memory);
}

Status LibfabricTransport::add_peer(NodeId peer, const PeerAddress& address) {
  return impl_->add_peer(peer, address);
}

void LibfabricTransport::remove_peer(NodeId peer) { impl_->remove_peer(peer); }

Status LibfabricTransport::write(const WriteRequest& request) { return impl_->write(request); }

Status LibfabricTransport::send(NodeId peer, std::span<const std::byte> message) {
  return impl_->send(peer, message);
}

std::size_t LibfabricTransport::poll(std::vector<Event>& out, std::size_t max_events) {
  return impl_->poll(out, max_events);
}

std::size_t LibfabricTransport::max_message_bytes() const {
  return impl_->options.max_message_bytes;
}

std::uint16_t LibfabricTransport::bootstrap_port() const { return impl_->bootstrap->port(); }

LibfabricStats LibfabricTransport::stats() const {
  LibfabricStats stats = impl_->stats;
  stats.bootstrap_refused = impl_->bootstrap->refused();
  return stats;
}

}  // namespace squall::fabric
