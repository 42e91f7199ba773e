// Bootstrap: the TCP side channel of LibfabricTransport (Boost.Asio, one background thread).
//
// For every pair of nodes exactly one TCP connection exists: the node with the lower id dials
// the bootstrap port of the higher one; the higher one waits for it. Over it the dialer sends
// its hello (fabric/bootstrap_wire.hpp) and the acceptor answers with its own once its owner
// has called open() for that peer. The socket then stays open as a liveness channel: EOF, an
// error or any further byte means the peer is gone.
//
// Results are queued as events and collected by the owner with drain(): nothing happens to the
// owner's state from the background thread. Every public method is thread-safe and returns at
// once; the work is done on the background thread.
//
// Inbound connections come from a BootstrapListener (fabric/bootstrap_listener.hpp), which
// reads the hello and hands over those of this bootstrap's channel: a shared one (several
// transports behind one port), or a private one bound to host:port that serves this channel
// only and refuses every other at once.
//
// Bounds: at most max_pending_inbound unidentified inbound connections and as many parked
// hellos; an inbound connection must deliver a valid hello within hello_timeout_ms (private
// listener; a shared one has its own options); a session that has not been marked
// established() within connect_timeout_ms of open() fails with timed_out.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/ids.hpp"
#include "common/status.hpp"
#include "fabric/bootstrap_listener.hpp"
#include "fabric/bootstrap_wire.hpp"
#include "fabric/transport.hpp"

namespace squall::fabric {

struct BootstrapOptions {
  NodeId self;
  std::string provider;                 // peers announcing another provider are refused
  std::uint32_t channel = 0;            // hellos of other channels are refused
  std::shared_ptr<BootstrapListener> listener;  // shared listener; unset: a private one
  std::string host = "127.0.0.1";       // private listener: address to listen on
  std::uint16_t port = 0;               // private listener: port, 0 = any free port
  std::uint32_t connect_timeout_ms = 10'000;
  std::uint32_t hello_timeout_ms = 5'000;
  std::uint32_t max_pending_inbound = 64;
  std::string secret;  // the cluster secret (hello MAC); a shared listener has its own copy
};

struct BootstrapEvent {
  enum class Kind : std::uint8_t {
    hello_exchanged,  // both hellos are through; `hello` is the peer's
    failed,           // the session is over; `status` says why
  };
  Kind kind = Kind::failed;
  NodeId peer;
  std::uint64_t session = 0;  // the id given to open()
  Hello hello;
  Status status;
};

class Bootstrap {
 public:
  // Starts the background thread and registers options.channel with the listener (binding a
  // private one first when none is given). already_exists: the shared listener has a live
  // bootstrap on that channel.
  static Result<std::unique_ptr<Bootstrap>> start(const BootstrapOptions& options);
  // Stops the thread and closes every socket; no event follows.
  ~Bootstrap();
  Bootstrap(const Bootstrap&) = delete;
  Bootstrap& operator=(const Bootstrap&) = delete;

  std::uint16_t port() const;

  // Starts session `session` with `peer`, replacing any earlier session with it. `local` is
  // the hello this node sends (its `from`, `to` and `nonce` already filled in). Exactly one
  // hello_exchanged or failed event follows, then possibly one failed event (liveness loss).
  void open(NodeId peer, const PeerAddress& address, std::uint64_t session, Hello local);
  // The fabric connection of `session` is up: its connect deadline no longer applies.
  void established(NodeId peer, std::uint64_t session);
  // Ends `session` and closes its socket; no further event for it.
  void close(NodeId peer, std::uint64_t session);

  // Appends the events produced since the last call.
  void drain(std::vector<BootstrapEvent>& out);
  // Inbound connections refused so far (wrong peer, duplicate, too many; with a private
  // listener also its refusals: malformed, silent, other channel).
  std::uint64_t refused() const;

  class Service;

 private:
  explicit Bootstrap(std::unique_ptr<Service> service);
  std::unique_ptr<Service> service_;
};

}  // namespace squall::fabric
