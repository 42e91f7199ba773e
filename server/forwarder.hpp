// Forwarder: an HTTP client (Boost.Beast) that passes a request to another node's REST
// service — used when this node does not serve the shard of a request (docs/consistency.md,
// "Forwarding").
//
// One thread runs the client's I/O. Each attempt opens a connection, sends the request and
// reads the answer; a failed connection or a 503 answer moves on to the next target; after the
// last one the request fails with unavailable. The whole request is bounded by `timeout_ms`
// (timed_out), each attempt by an equal share of the time left. At most
// `max_in_flight` requests at once (beyond: would_block). Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "config/config.hpp"
#include "server/http_types.hpp"
#include "server/tls.hpp"

namespace squall::server {

struct ForwarderOptions {
  std::uint32_t timeout_ms = 5000;      // per forwarded request, all attempts together
  std::size_t max_in_flight = 1024;
  std::uint64_t max_body_bytes = 17ULL << 20;  // largest answer accepted
  // The Authorization header of every forwarded request and stream (the node token,
  // node_authorization()); empty: none. A client's own Authorization is never passed on.
  std::string authorization;
  // Set: every connection is TLS with this client context (make_client_context()), the
  // peer verified against the target's host. Unset: plain HTTP.
  std::shared_ptr<SslContext> tls;
};

// The options squalld forwards with: timeout_ms from timeouts.request_timeout_ms, answers up
// to a value plus a key plus 1 MiB, the node token when auth is on (cluster.secret_file), and
// a client context when rest.tls is set. Fails when the secret or a TLS file cannot be read.
Result<ForwarderOptions> forwarder_options(const config::Config& config);

class Forwarder {
 public:
  using Done = std::function<void(Result<HttpResponse>)>;

  static Result<std::unique_ptr<Forwarder>> start(ForwarderOptions options);
  ~Forwarder();  // stop()
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // Sends `request` to `targets` ("host:port") in order until one answers other than 503.
  // `done` is called exactly once, on the client thread (or here, when refused at once).
  void send(std::vector<std::string> targets, HttpRequest request, Done done);

  // A streaming answer (a watch stream at another node). Handler calls come on the client
  // thread, in this order: `opened` once — the answer's header, or for an answer other than
  // 200 the whole answer (body included), or an error when no target answered; after a 200,
  // `data` with each piece of the body as it arrives, then `ended` once (the stream finished,
  // failed, went silent for `idle_ms`, or was closed).
  struct StreamHandler {
    std::function<void(Result<HttpResponse>)> opened;
    std::function<void(std::string_view)> data;
    std::function<void(Status)> ended;
  };
  // Closes a stream opened by open_stream(); any thread, idempotent. Handlers may still run
  // once more on the client thread while the close is under way.
  class StreamHandle {
   public:
    virtual ~StreamHandle() = default;
    virtual void close() = 0;
  };
  // Tries `targets` in order like send() (the header within timeout_ms); then reads the body
  // with no deadline but `idle_ms` between pieces. None when refused at once (stopped,
  // too many in flight): `opened` was then called here with the error.
  std::shared_ptr<StreamHandle> open_stream(std::vector<std::string> targets,
                                            HttpRequest request, std::uint32_t idle_ms,
                                            StreamHandler handler);

  // Cancels every request in flight (each fails with unavailable) and joins the thread.
  // Idempotent. Streams end with unavailable.
  void stop();

  struct Impl;

 private:
  explicit Forwarder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace squall::server
