// RestApi: the routes of the REST contract (docs/api.md) over a KvBackend.
//
//   PUT/GET/DELETE /v1/kv/{key}     GET /v1/kv (list)     GET /v1/history/{key}
//   GET /v1/cluster                 GET /healthz          GET /readyz      GET /metrics
//   GET /v1/watch (SSE streams, served by WatchRoute in watch_stream.hpp)
//
// handle() parses and validates a request, answers malformed ones itself (400/405/404/414),
// checks its bearer token when auth is on (401 without a valid one, 403 outside the token's
// roles or prefixes: see server/auth.hpp), and passes valid ones to the backend, whose
// callback answers. It never blocks. Every answered request is counted in the metrics by
// route, method and status, with its latency.
// Thread-safe: handle() runs on any server thread; the backend and the registry must outlive
// the RestApi and every request in flight.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "config/config.hpp"
#include "server/auth.hpp"
#include "server/http_types.hpp"
#include "server/kv_backend.hpp"
#include "server/metrics.hpp"
#include "server/rest_parse.hpp"
#include "server/watch_stream.hpp"

namespace squall::server {

struct RestLimits {
  std::size_t max_key_bytes = 4096;
  std::size_t max_list_limit = 10000;
  std::size_t default_list_limit = 100;  // list and history pages without `limit`
};

RestLimits rest_limits(const config::LimitsConfig& limits);

class RestApi {
 public:
  // `watch` (may be null: /v1/watch answers 503) must outlive the RestApi and its streams.
  // `auth` null or not enabled(): every request is allowed. The source's tokens may be
  // reloaded (AuthSource::reload); whether auth is on, and the metrics and health modes, are
  // taken once, here.
  RestApi(KvBackend& backend, MetricsRegistry& metrics, RestLimits limits,
          WatchBackend* watch, WatchLimits watch_limits, std::shared_ptr<AuthSource> auth);
  RestApi(KvBackend& backend, MetricsRegistry& metrics, RestLimits limits,
          WatchBackend* watch = nullptr, WatchLimits watch_limits = {},
          std::shared_ptr<const Authorizer> auth = nullptr);

  void handle(HttpRequest request, HttpResponder respond);
  // handle() as an HttpHandler for HttpServer.
  HttpHandler handler();

  // The routes, in the metric label "route".
  enum class Route : std::uint8_t { kv, kv_list, history, cluster, healthz, readyz, metrics,
                                    watch, unknown };
  static std::string_view route_name(Route route);

 private:
  using Clock = std::chrono::steady_clock;

  void dispatch(Route route, std::string_view rest, const Target& target, HttpRequest& request,
                const TokenGrant* grant, const HttpResponder& respond);
  // Auth: whether `route` needs a token at all, and the answer to a request without a valid
  // one (401). authorized() answers 403 and returns false when `grant` (null: auth off) does
  // not allow `access` to `scope`.
  bool needs_token(Route route) const;
  void unauthenticated(bool had_credentials, const HttpResponder& respond);
  bool authorized(const TokenGrant* grant, Access access, KeyScope scope,
                  const HttpResponder& respond);
  HttpResponder counted(Route route, std::string_view method, const HttpResponder& respond);
  void count(Route route, const std::string& method, Clock::time_point start,
             unsigned status_code);

  // rest_kv.cpp
  void get_key(std::string key, const Query& query, const HttpResponder& respond);
  void put_key(std::string key, HttpRequest& request, const HttpResponder& respond);
  void delete_key(std::string key, const HttpRequest& request, const HttpResponder& respond);
  void list_keys(const Query& query, const HttpResponder& respond);
  void history(std::string key, const Query& query, const HttpResponder& respond);
  // The decoded, validated key of a path's remainder, or the answer to send instead.
  Result<std::string> decode_key(std::string_view encoded, const HttpResponder& respond) const;

  // rest_ops.cpp
  void cluster(const HttpResponder& respond);
  void healthz(const HttpResponder& respond);
  void readyz(const HttpResponder& respond);
  void metrics(const HttpResponder& respond);

  KvBackend& backend_;
  MetricsRegistry& registry_;
  const RestLimits limits_;
  WatchRoute watch_;
  const std::shared_ptr<AuthSource> auth_;  // null: off
  config::EndpointAccess metrics_access_ = config::EndpointAccess::open;
  config::EndpointAccess health_access_ = config::EndpointAccess::open;
};

}  // namespace squall::server
