// BootstrapListener: one TCP port for the bootstrap of several LibfabricTransports (channels).
//
// A node has one configured fabric port, but runs one transport per view, and views overlap.
// The listener owns the TCP acceptor on that port, reads each inbound hello
// (fabric/bootstrap_wire.hpp) and hands the connection, with its decoded hello, to the
// transport registered for the hello's `channel`. The daemon binds it once and passes it to
// every transport it creates (LibfabricOptions::listener, ::channel).
//
// Channels (docs/fabric.md, "Channels"):
//   - registered: the hello goes to that channel's transport at once;
//   - retired (was registered, its transport is gone): refused at once;
//   - unknown (not registered yet; the peer got to that view first): the connection is HELD
//     for at most hold_timeout_ms, and handed over as soon as the channel registers; then
//     refused. At most max_held connections are held at a time; a newer connection from the
//     same node for the same channel replaces the held one.
// A dialer whose connection is refused retries until its own connect timeout, so the two ends
// of a channel may be created in either order, up to about hold_timeout_ms apart.
//
// Threading: one background thread (Boost.Asio) owns the acceptor and every connection until
// it is handed over. Every public method is thread-safe. The listener lives as long as its
// last owner: each transport created with it keeps a reference.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.hpp"
#include "fabric/bootstrap_wire.hpp"

namespace squall::fabric {

struct BootstrapListenerOptions {
  std::uint32_t hello_timeout_ms = 5'000;    // an inbound connection must say hello this fast
  std::uint32_t hold_timeout_ms = 10'000;    // a hello for an unknown channel waits this long;
                                             // 0: refused at once. Set to connect_timeout_ms.
  std::uint32_t max_pending_inbound = 128;   // connections whose hello is still being read
  std::uint32_t max_held = 64;               // connections held for an unknown channel
  std::uint32_t max_retired_channels = 4096; // retired channels remembered (oldest forgotten)
  std::string secret;  // the cluster secret: hellos must carry its MAC (bootstrap_wire.hpp)

  // invalid_argument naming the field and the allowed range, or ok.
  Status validate() const;
};

// Counters; monotonically increasing.
struct BootstrapListenerStats {
  std::uint64_t accepted = 0;            // TCP connections accepted
  std::uint64_t handed_over = 0;         // hellos given to a registered channel
  std::uint64_t held = 0;                // hellos that had to wait for their channel
  std::uint64_t bootstrap_refused = 0;   // every refusal here (malformed, silent, the below)
  std::uint64_t refused_retired = 0;     // hellos for a retired channel
  std::uint64_t refused_unclaimed = 0;   // held until hold_timeout_ms, or no room to hold
};

// An inbound bootstrap connection whose hello has been read and decoded.
struct InboundConnection {
  int socket_fd = -1;   // a connected TCP socket; owned by whoever receives this
  bool ipv6 = false;    // address family of socket_fd
  Hello hello;
  std::string remote;   // "ip:port" of the peer, for logs
};

// What a channel's owner (the transport's bootstrap) implements to receive connections.
class InboundHandler {
 public:
  virtual ~InboundHandler() = default;
  // Takes ownership of `connection.socket_fd`. Called on the listener's thread with the
  // listener's registry lock held: must not block and must not call back into the listener.
  virtual void take(InboundConnection connection) = 0;
};

class BootstrapListener {
 public:
  // Binds host:port (port 0: any free port) and starts the background thread.
  // Errors: invalid_argument (options, unresolvable host), unavailable (cannot listen).
  static Result<std::shared_ptr<BootstrapListener>> start(
      const std::string& host, std::uint16_t port, const BootstrapListenerOptions& options = {});
  // Stops the thread and closes every connection not yet handed over.
  ~BootstrapListener();
  BootstrapListener(const BootstrapListener&) = delete;
  BootstrapListener& operator=(const BootstrapListener&) = delete;

  std::uint16_t port() const;
  BootstrapListenerStats stats() const;

  // For the transports' bootstraps (fabric/bootstrap.cpp), not for their users.
  // Routes `channel` to `handler` from now on (held connections included) until
  // unregister_channel(). already_exists when another handler has the channel.
  Status register_channel(std::uint32_t channel, InboundHandler* handler);
  // After this returns, `handler` is never called again; the channel is retired.
  void unregister_channel(std::uint32_t channel, InboundHandler* handler);

  class Impl;

 private:
  explicit BootstrapListener(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace squall::fabric
