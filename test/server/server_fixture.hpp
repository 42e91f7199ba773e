// A running REST server for tests: the real HttpServer and RestApi on 127.0.0.1, port 0,
// over a SingleNodeTestBackend.
#pragma once

#include <memory>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "server/http_server.hpp"
#include "server/rest_api.hpp"
#include "test/server/single_node_test_backend.hpp"
#include "test/server/test_client.hpp"

namespace squall::server::testing {

// Small limits keep the limit tests fast; the key limit is the contract's default.
inline HttpServerOptions test_options() {
  HttpServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.threads = 2;
  options.max_connections = 64;
  options.max_header_bytes = 16 * 1024;
  options.max_body_bytes = 256 * 1024;
  options.read_timeout_ms = 10000;
  options.idle_timeout_ms = 10000;
  options.stop_timeout_ms = 10000;
  return options;
}

inline RestLimits test_limits() {
  RestLimits limits;
  limits.max_key_bytes = 4096;
  limits.max_list_limit = 1000;
  return limits;
}

struct ServerFixture {
  explicit ServerFixture(HttpServerOptions options = test_options(),
                         kvstore::RetentionPolicy retention = {})
      : backend(retention), api(backend, metrics, test_limits()) {
    auto started = HttpServer::start(options, api.handler(), &metrics);
    REQUIRE(started.is_ok());
    server = std::move(started.value());
  }
  ~ServerFixture() { server->stop(); }

  TestClient client() { return TestClient(server->port()); }

  SingleNodeTestBackend backend;
  MetricsRegistry metrics;
  RestApi api;
  std::unique_ptr<HttpServer> server;
};

inline nlohmann::json json_of(const Response& response) {
  return nlohmann::json::parse(response.body());
}

inline std::string header_of(const Response& response, std::string_view name) {
  const auto found = response.find(boost::beast::string_view(name.data(), name.size()));
  if (found == response.end()) return "<absent>";
  return std::string(found->value());
}

}  // namespace squall::server::testing
