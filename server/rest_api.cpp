#include "server/rest_api.hpp"

#include <string>

#include "common/log.hpp"
#include "server/rest_response.hpp"

namespace squall::server {
namespace http = boost::beast::http;

namespace {

constexpr std::string_view kKvPrefix = "/v1/kv/";
constexpr std::string_view kHistoryPrefix = "/v1/history/";

struct Match {
  RestApi::Route route = RestApi::Route::unknown;
  std::string_view rest;  // the still-encoded key of /v1/kv/{key} and /v1/history/{key}
};

Match match(std::string_view path) {
  using Route = RestApi::Route;
  if (path.starts_with(kKvPrefix)) return {Route::kv, path.substr(kKvPrefix.size())};
  if (path.starts_with(kHistoryPrefix)) {
    return {Route::history, path.substr(kHistoryPrefix.size())};
  }
  if (path == "/v1/kv") return {Route::kv_list, {}};
  if (path == "/v1/cluster") return {Route::cluster, {}};
  if (path == "/healthz") return {Route::healthz, {}};
  if (path == "/readyz") return {Route::readyz, {}};
  if (path == "/metrics") return {Route::metrics, {}};
  if (path == "/v1/watch") return {Route::watch, {}};
  return {};
}

std::string_view allowed_methods(RestApi::Route route) {
  return route == RestApi::Route::kv ? "GET, PUT, DELETE" : "GET";
}

bool method_allowed(RestApi::Route route, http::verb method) {
  if (route == RestApi::Route::kv) {
    return method == http::verb::get || method == http::verb::put ||
           method == http::verb::delete_;
  }
  return method == http::verb::get;
}

}  // namespace

RestLimits rest_limits(const config::LimitsConfig& limits) {
  RestLimits result;
  result.max_key_bytes = limits.max_key_bytes;
  result.max_list_limit = limits.max_list_limit;
  return result;
}

namespace {

std::shared_ptr<AuthSource> enabled_source(std::shared_ptr<AuthSource> source) {
  if (source == nullptr || !source->current()->enabled()) return nullptr;
  return source;
}

}  // namespace

RestApi::RestApi(KvBackend& backend, MetricsRegistry& metrics, RestLimits limits,
                 WatchBackend* watch, WatchLimits watch_limits,
                 std::shared_ptr<const Authorizer> auth)
    : RestApi(backend, metrics, limits, watch, watch_limits,
              AuthSource::fixed(std::move(auth))) {}

RestApi::RestApi(KvBackend& backend, MetricsRegistry& metrics, RestLimits limits,
                 WatchBackend* watch, WatchLimits watch_limits,
                 std::shared_ptr<AuthSource> auth)
    : backend_(backend), registry_(metrics), limits_(limits),
      watch_(watch, metrics, watch_limits), auth_(enabled_source(std::move(auth))) {
  if (auth_ != nullptr) {
    metrics_access_ = auth_->current()->metrics_access();
    health_access_ = auth_->current()->health_access();
  }
  SQUALL_ASSERT(limits_.max_key_bytes >= 1, "max_key_bytes must be positive");
  SQUALL_ASSERT(limits_.default_list_limit >= 1 &&
                    limits_.default_list_limit <= limits_.max_list_limit,
                "default list limit {} outside 1..{}", limits_.default_list_limit,
                limits_.max_list_limit);
}

HttpHandler RestApi::handler() {
  return [this](HttpRequest request, HttpResponder respond) {
    handle(std::move(request), std::move(respond));
  };
}

std::string_view RestApi::route_name(Route route) {
  switch (route) {
    case Route::kv: return "kv";
    case Route::kv_list: return "kv_list";
    case Route::history: return "history";
    case Route::cluster: return "cluster";
    case Route::healthz: return "healthz";
    case Route::readyz: return "readyz";
    case Route::metrics: return "metrics";
    case Route::watch: return "watch";
    case Route::unknown: return "unknown";
  }
  return "unknown";
}

// Wraps `respond` so the answer (or a stream's header) is counted. Labels come from bounded
// sets (routes, Beast's verbs).
HttpResponder RestApi::counted(Route route, std::string_view method,
                               const HttpResponder& respond) {
  const auto start = Clock::now();
  return HttpResponder(
      [this, route, method = std::string(method), start, respond](HttpResponse response) {
        count(route, method, start, response.result_int());
        respond(std::move(response));
      },
      [this, route, method = std::string(method), start, respond](
          HttpResponse header, std::unique_ptr<HttpStreamSource> source) {
        count(route, method, start, header.result_int());
        respond.stream(std::move(header), std::move(source));
      });
}

// Requests by route, method and status, and latency by route, method and status.
void RestApi::count(Route route, const std::string& method, Clock::time_point start,
                    unsigned status_code) {
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const std::string status = std::to_string(status_code);
  const std::string name(route_name(route));
  registry_
      .counter("squall_http_requests_total", "HTTP requests answered, by route and status.",
               {{"route", name}, {"method", method}, {"status", status}})
      .add();
  registry_
      .histogram("squall_http_request_duration_seconds",
                 "Time from a request's arrival to its answer, by route and status.",
                 latency_buckets_seconds(),
                 {{"route", name}, {"method", method}, {"status", status}})
      .observe(seconds);
}

void RestApi::handle(HttpRequest request, HttpResponder respond) {
  const Target target = split_target(to_std(request.target()));
  const Match found = match(target.path);
  const std::string_view method =
      request.method() == http::verb::unknown ? "other" : to_std(request.method_string());
  const HttpResponder answer = counted(found.route, method, respond);
  if (!target.path.starts_with('/')) {
    return answer(error_response(HttpStatus::bad_request, "bad_request",
                                 "the request target must be an absolute path"));
  }
  if (found.route == Route::unknown) {
    return answer(error_response(HttpStatus::not_found, "not_found", "no such path"));
  }
  if (!method_allowed(found.route, request.method())) {
    return answer(method_not_allowed_response(allowed_methods(found.route)));
  }
  // Authentication first: nothing about keys is answered to a request without a token.
  // `tokens` keeps the grant alive through dispatch (a reload may swap the tokens meanwhile).
  std::shared_ptr<const Authorizer> tokens;
  const TokenGrant* grant = nullptr;
  if (needs_token(found.route)) {
    tokens = auth_->current();
    const auto authorization = request.find(http::field::authorization);
    const bool has = authorization != request.end();
    grant = has ? tokens->authenticate(to_std(authorization->value())) : nullptr;
    if (grant == nullptr) return unauthenticated(has, answer);
  }
  dispatch(found.route, found.rest, target, request, grant, answer);
}

void RestApi::dispatch(Route route, std::string_view rest, const Target& target,
                       HttpRequest& request, const TokenGrant* grant,
                       const HttpResponder& respond) {
  auto parameters = parse_query(target.query);
  if (!parameters.is_ok()) {
    return respond(status_response(parameters.status(), backend_.retry_after_s()));
  }
  const Query query(std::move(parameters.value()));
  using Kind = KeyScope::Kind;
  switch (route) {
    case Route::kv: {
      auto key = decode_key(rest, respond);
      if (!key.is_ok()) return;
      const bool get = request.method() == http::verb::get;
      if (!authorized(grant, get ? Access::read : Access::write, {Kind::key, key.value()},
                      respond)) {
        return;
      }
      if (get) return get_key(key.value(), query, respond);
      if (request.method() == http::verb::put) return put_key(key.value(), request, respond);
      return delete_key(key.value(), request, respond);
    }
    case Route::history: {
      auto key = decode_key(rest, respond);
      if (!key.is_ok()) return;
      if (!authorized(grant, Access::read, {Kind::key, key.value()}, respond)) return;
      return history(key.value(), query, respond);
    }
    case Route::kv_list: {
      // A malformed prefix counts as the widest (the route answers 400 when allowed).
      const auto prefix = query.text("prefix");
      const std::string wanted = prefix.is_ok() ? prefix.value().value_or("") : "";
      if (!authorized(grant, Access::read, {Kind::prefix, wanted}, respond)) return;
      return list_keys(query, respond);
    }
    case Route::cluster:
      if (!authorized(grant, Access::admin, {}, respond)) return;
      return cluster(respond);
    case Route::healthz:
    case Route::readyz:
    case Route::metrics:
      // Open, or admin-only (needs_token()).
      if (grant != nullptr && !authorized(grant, Access::admin, {}, respond)) return;
      if (route == Route::metrics) return metrics(respond);
      return route == Route::healthz ? healthz(respond) : readyz(respond);
    case Route::watch: {
      const auto key = query.text("key");
      const auto prefix = query.text("prefix");
      KeyScope scope{Kind::prefix, ""};
      std::string wanted;
      if (key.is_ok() && key.value() && !(prefix.is_ok() && prefix.value())) {
        wanted = *key.value();
        scope.kind = Kind::key;
      } else if (prefix.is_ok() && prefix.value() && !(key.is_ok() && key.value())) {
        wanted = *prefix.value();
      }
      scope.value = wanted;
      if (!authorized(grant, Access::read, scope, respond)) return;
      return watch_.handle(query, request, backend_.retry_after_s(), respond);
    }
    case Route::unknown: break;
  }
  SQUALL_UNREACHABLE("route {} not dispatched", route_name(route));
}

bool RestApi::needs_token(Route route) const {
  if (auth_ == nullptr) return false;
  switch (route) {
    case Route::metrics: return metrics_access_ == config::EndpointAccess::admin;
    case Route::healthz:
    case Route::readyz: return health_access_ == config::EndpointAccess::admin;
    default: return true;
  }
}

void RestApi::unauthenticated(bool had_credentials, const HttpResponder& respond) {
  registry_
      .counter("squall_http_auth_refusals_total", "Requests refused by token checks.",
               {{"reason", had_credentials ? "invalid_token" : "no_token"}})
      .add();
  HttpResponse response = error_response(
      HttpStatus::unauthorized, "unauthorized",
      had_credentials ? "the bearer token is not valid" : "a bearer token is required");
  // RFC 6750: the scheme, and why when a token was sent.
  response.set(http::field::www_authenticate,
               had_credentials ? "Bearer realm=\"squall\", error=\"invalid_token\""
                               : "Bearer realm=\"squall\"");
  respond(std::move(response));
}

bool RestApi::authorized(const TokenGrant* grant, Access access, KeyScope scope,
                         const HttpResponder& respond) {
  if (grant == nullptr) {
    SQUALL_ASSERT(auth_ == nullptr, "a request past authentication without a grant");
    return true;
  }
  if (Authorizer::permits(*grant, access, scope)) return true;
  registry_
      .counter("squall_http_auth_refusals_total", "Requests refused by token checks.",
               {{"reason", "forbidden"}})
      .add();
  logger("server")->debug("token '{}' refused: outside its roles or prefixes", grant->name);
  respond(error_response(HttpStatus::forbidden, "forbidden",
                         scope.kind == KeyScope::Kind::none
                             ? "the token's roles do not allow this"
                             : "the token's roles or key prefixes do not allow this"));
  return false;
}

}  // namespace squall::server
