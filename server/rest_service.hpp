// RestService: the REST side of squalld in one object: a RestApi over the node's KvBackend,
// served by an HttpServer with the limits of the node's configuration, over TLS when
// rest.tls is set, with bearer tokens when auth.tokens is not empty (docs/security.md). The
// daemon creates one after the backend is up and stops it before tearing the backend down.
#pragma once

#include <cstdint>
#include <memory>

#include "config/config.hpp"
#include "server/http_server.hpp"
#include "server/kv_backend.hpp"
#include "server/metrics.hpp"
#include "server/rest_api.hpp"
#include "server/watch_backend.hpp"
#include "server/watch_stream.hpp"

namespace squall::server {

class RestService {
 public:
  // Listens on config.rest.listen with `threads` server threads. `backend` and `metrics`
  // must outlive the service, and the backend must answer or drop every callback before the
  // service is destroyed (stop() waits for requests in flight, up to its timeout). `watch`
  // serves GET /v1/watch with config.watch's limits (null: 503); it and its hub must outlive
  // the service object (streams end at stop(); their watchers go with the service).
  // Fails when a certificate, key, CA or token file cannot be read or used.
  static Result<std::unique_ptr<RestService>> start(const config::Config& config,
                                                    KvBackend& backend,
                                                    MetricsRegistry& metrics,
                                                    std::uint32_t threads,
                                                    WatchBackend* watch = nullptr);
  ~RestService();
  RestService(const RestService&) = delete;
  RestService& operator=(const RestService&) = delete;

  std::uint16_t port() const { return server_->port(); }
  // Graceful stop (HttpServer::stop); idempotent.
  void stop() { server_->stop(); }
  bool tls() const { return server_->tls(); }
  // Reads the certificate files again for new connections (HttpServer::reload_tls). The
  // daemon reloads every TLS context and token source of the process on SIGHUP
  // (reload_tls_contexts(), reload_auth_sources()).
  Status reload_tls() { return server_->reload_tls(); }

 private:
  RestService(KvBackend& backend, MetricsRegistry& metrics, RestLimits limits,
              WatchBackend* watch, WatchLimits watch_limits,
              std::shared_ptr<AuthSource> auth);

  RestApi api_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace squall::server
