// MembershipService: the TCP side of membership (ports.membership) — one request frame in, one
// reply frame out, then the connection closes (core/membership_wire.hpp has the frames).
//
// The server runs one background thread (Boost.Asio). Each accepted connection must deliver
// one complete, valid request within the request timeout, else it is closed (and counted);
// the handler then gets the request and a Reply that may be called later, from any thread,
// at most once (a Reply dropped unanswered closes the connection). Connections are bounded
// (max_connections); beyond, new ones are closed at once.
//
// membership_call() is the client: connect, send, wait for the reply, all within a deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.hpp"
#include "core/membership_wire.hpp"

namespace squall::core {

struct MembershipServiceOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port (see port())
  std::uint32_t request_timeout_ms = 5000;
  // Connections a reply may be kept pending on (joiners wait for the next view).
  std::uint32_t max_connections = 256;
  // How long a pending reply may take before the connection is closed unanswered.
  std::uint32_t reply_timeout_ms = 30000;
  // The cluster secret: requests must be authenticated with it, replies are (wire header).
  std::string secret;
};

class MembershipService {
 public:
  using Reply = std::function<void(const MembershipMessage& reply)>;
  using Handler = std::function<void(MembershipMessage request, Reply reply)>;

  // Binds and listens, then starts the background thread. The handler runs on that thread.
  static Result<std::unique_ptr<MembershipService>> start(const MembershipServiceOptions& options,
                                                          Handler handler);
  // Stops the thread and closes every connection; pending Replies become no-ops.
  ~MembershipService();
  MembershipService(const MembershipService&) = delete;
  MembershipService& operator=(const MembershipService&) = delete;

  std::uint16_t port() const;
  // Connections closed because their request was malformed, late, or over the bound.
  std::uint64_t refused() const;

  class Impl;

 private:
  explicit MembershipService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Sends `request` to host:port and returns the reply. unavailable (cannot connect),
// timed_out, corruption (a malformed reply) — each with the reason.
Result<MembershipMessage> membership_call(const std::string& host, std::uint16_t port,
                                          const MembershipMessage& request,
                                          std::chrono::milliseconds timeout,
                                          std::string_view secret = {});

}  // namespace squall::core
