// RestService: the REST side started from a node configuration, with its limits.
#include <catch2/catch.hpp>

#include "server/rest_service.hpp"
#include "test/server/server_fixture.hpp"

namespace squall::server::testing {

TEST_CASE("RestService serves with the configuration's limits") {
  config::Config config;
  config.rest.listen = config::HostPort{"127.0.0.1", 0};
  config.limits.max_key_bytes = 8;
  config.limits.max_value_bytes = 16;
  config.limits.max_list_limit = 5;
  SingleNodeTestBackend backend;
  MetricsRegistry metrics;
  auto started = RestService::start(config, backend, metrics, 1);
  REQUIRE(started.is_ok());
  auto service = std::move(started.value());
  TestClient client(service->port());
  REQUIRE(client.get("/healthz").result_int() == 200);
  REQUIRE(client.put("/v1/kv/12345678", std::string(16, 'v')).result_int() == 201);
  REQUIRE(client.put("/v1/kv/123456789", "v").result_int() == 414);
  REQUIRE(client.put("/v1/kv/a", std::string(17, 'v')).result_int() == 413);
  TestClient again(service->port());
  REQUIRE(again.get("/v1/kv?limit=6").result_int() == 400);
  REQUIRE(again.get("/v1/kv?limit=5").result_int() == 200);
  REQUIRE(again.get("/v1/kv").result_int() == 200);  // the default page is clamped to 5
  service->stop();
}

TEST_CASE("RestService reports a port it cannot listen on") {
  config::Config config;
  config.rest.listen = config::HostPort{"127.0.0.1", 0};
  SingleNodeTestBackend backend;
  MetricsRegistry metrics;
  auto first = RestService::start(config, backend, metrics, 1);
  REQUIRE(first.is_ok());
  config.rest.listen.port = first.value()->port();
  auto second = RestService::start(config, backend, metrics, 1);
  REQUIRE_FALSE(second.is_ok());
  REQUIRE(second.status().code() == Code::unavailable);
  config.rest.listen.host = "not-an-address";
  REQUIRE(RestService::start(config, backend, metrics, 1).status().code() ==
          Code::invalid_argument);
}

}  // namespace squall::server::testing
