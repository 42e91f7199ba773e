#include "server/rest_service.hpp"

namespace squall::server {

RestService::RestService(KvBackend& backend, MetricsRegistry& metrics, RestLimits limits,
                         WatchBackend* watch, WatchLimits watch_limits,
                         std::shared_ptr<AuthSource> auth)
    : api_(backend, metrics, limits, watch, watch_limits, std::move(auth)) {}

RestService::~RestService() {
  if (server_ != nullptr) server_->stop();
}

Result<std::unique_ptr<RestService>> RestService::start(const config::Config& config,
                                                        KvBackend& backend,
                                                        MetricsRegistry& metrics,
                                                        std::uint32_t threads,
                                                        WatchBackend* watch) {
  RestLimits limits = rest_limits(config.limits);
  if (limits.max_list_limit < limits.default_list_limit) {
    limits.default_list_limit = limits.max_list_limit;
  }
  if (limits.max_key_bytes < 1 || limits.max_list_limit < 1) {
    return invalid_argument("limits.max_key_bytes and limits.max_list_limit must be positive");
  }
  const WatchLimits watch_limits = server::watch_limits(config.watch, config.limits);
  SQUALL_TRY(watch_limits.validate());
  auto auth = AuthSource::create(config);
  if (!auth.is_ok()) return auth.status();
  HttpServerOptions options = http_server_options(config.rest, config.limits, threads);
  if (config.rest.tls) {
    auto tls = TlsServerContext::create(*config.rest.tls);
    if (!tls.is_ok()) return tls.status();
    options.tls = std::move(tls.value());
  }
  std::unique_ptr<RestService> service(new RestService(backend, metrics, limits, watch,
                                                       watch_limits, std::move(auth.value())));
  auto server = HttpServer::start(std::move(options), service->api_.handler(), &metrics);
  if (!server.is_ok()) return server.status();
  service->server_ = std::move(server.value());
  return service;
}

}  // namespace squall::server
