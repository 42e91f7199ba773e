// Routing (404/405), health, readiness, cluster and metrics through the real HTTP server.
#include <catch2/catch.hpp>

#include "test/server/server_fixture.hpp"

namespace squall::server::testing {
namespace http = boost::beast::http;

TEST_CASE("unknown paths are 404, wrong methods on known paths are 405 with Allow") {
  ServerFixture fixture;
  TestClient client = fixture.client();
  for (const char* path : {"/", "/v1", "/v1/kvx", "/v2/kv/a", "/v1/watchx", "/healthz/x"}) {
    CAPTURE(path);
    const Response response = client.get(path);
    REQUIRE(response.result_int() == 404);
    REQUIRE(json_of(response)["error"] == "not_found");
  }
  struct Case {
    http::verb method;
    const char* path;
    const char* allow;
  };
  for (const Case& c : {Case{http::verb::post, "/v1/kv/a", "GET, PUT, DELETE"},
                        Case{http::verb::patch, "/v1/kv/a", "GET, PUT, DELETE"},
                        Case{http::verb::head, "/v1/kv/a", "GET, PUT, DELETE"},
                        Case{http::verb::put, "/v1/kv", "GET"},
                        Case{http::verb::delete_, "/v1/history/a", "GET"},
                        Case{http::verb::post, "/v1/cluster", "GET"},
                        Case{http::verb::put, "/healthz", "GET"},
                        Case{http::verb::post, "/readyz", "GET"},
                        Case{http::verb::delete_, "/metrics", "GET"}}) {
    CAPTURE(c.path, http::to_string(c.method));
    if (c.method == http::verb::head) {
      // A HEAD answer has no body; read it raw on a fresh connection.
      TestClient raw = fixture.client();
      REQUIRE(raw.send_raw("HEAD /v1/kv/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
      std::string received;
      REQUIRE(raw.wait_closed(&received));
      REQUIRE(received.starts_with("HTTP/1.1 405"));
      REQUIRE(received.find("Allow: GET, PUT, DELETE\r\n") != std::string::npos);
      REQUIRE(received.ends_with("\r\n\r\n"));  // no body after the header
      continue;
    }
    const Response response = client.request(c.method, c.path);
    REQUIRE(response.result_int() == 405);
    REQUIRE(header_of(response, "Allow") == c.allow);
    REQUIRE(json_of(response)["error"] == "method_not_allowed");
  }
}

TEST_CASE("an unknown method token on a known path is 405") {
  ServerFixture fixture;
  TestClient client = fixture.client();
  REQUIRE(client.send_raw("BREW /v1/kv/a HTTP/1.1\r\nHost: x\r\n\r\n"));
  Response response;
  REQUIRE(client.read_response(response));
  REQUIRE(response.result_int() == 405);
  REQUIRE(client.get("/healthz").result_int() == 200);  // still the same connection
}

TEST_CASE("healthz is 200 and readyz follows the backend's readiness") {
  ServerFixture fixture;
  TestClient client = fixture.client();
  REQUIRE(client.get("/healthz").result_int() == 200);
  REQUIRE(client.get("/readyz").result_int() == 200);
  fixture.backend.set_ready(false);
  const Response not_ready = client.get("/readyz");
  REQUIRE(not_ready.result_int() == 503);
  REQUIRE(json_of(not_ready)["error"] == "unavailable");
  REQUIRE(header_of(not_ready, "Retry-After") == "7");
  REQUIRE(client.get("/healthz").result_int() == 200);
  fixture.backend.set_ready(true);
  REQUIRE(client.get("/readyz").result_int() == 200);
}

TEST_CASE("cluster has the contract's shape") {
  ServerFixture fixture;
  TestClient client = fixture.client();
  client.put("/v1/kv/a", "x");
  const Response response = client.get("/v1/cluster");
  REQUIRE(response.result_int() == 200);
  const auto body = json_of(response);
  REQUIRE(body["cluster"] == "test");
  REQUIRE(body["self"] == 1);
  REQUIRE(body["view"]["id"] == 1);
  REQUIRE(body["view"]["leader"] == 1);
  const auto& member = body["view"]["members"][0];
  REQUIRE(member["id"] == 1);
  REQUIRE(member["address"].is_string());
  REQUIRE(member["rest"].is_string());
  REQUIRE(member["state"] == "active");
  const auto& shard = body["shards"][0];
  REQUIRE(shard["id"] == 0);
  REQUIRE(shard["members"] == nlohmann::json::array({1}));
  REQUIRE(shard["delivered_version"].get<std::uint64_t>() > 0);
  REQUIRE(shard["persisted_version"] == shard["delivered_version"]);
}

TEST_CASE("metrics count requests by route, method and status, with latency histograms") {
  ServerFixture fixture;
  TestClient client = fixture.client();
  client.put("/v1/kv/m", "x");
  client.get("/v1/kv/m");
  client.get("/v1/kv/m");
  client.get("/v1/kv/none");
  client.get("/nowhere");
  const Response response = client.get("/metrics");
  REQUIRE(response.result_int() == 200);
  REQUIRE(header_of(response, "Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = response.body();
  CAPTURE(text);
  const auto has = [&](const std::string& line) {
    return text.find(line + "\n") != std::string::npos;
  };
  REQUIRE(has("# TYPE squall_http_requests_total counter"));
  REQUIRE(has("squall_http_requests_total{route=\"kv\",method=\"PUT\",status=\"201\"} 1"));
  REQUIRE(has("squall_http_requests_total{route=\"kv\",method=\"GET\",status=\"200\"} 2"));
  REQUIRE(has("squall_http_requests_total{route=\"kv\",method=\"GET\",status=\"404\"} 1"));
  REQUIRE(has("squall_http_requests_total{route=\"unknown\",method=\"GET\",status=\"404\"} 1"));
  REQUIRE(has("# TYPE squall_http_request_duration_seconds histogram"));
  REQUIRE(has("squall_http_request_duration_seconds_bucket{route=\"kv\",method=\"GET\","
              "status=\"200\",le=\"+Inf\"} 2"));
  REQUIRE(has("squall_http_request_duration_seconds_count{route=\"kv\",method=\"GET\","
              "status=\"200\"} 2"));
  REQUIRE(has("squall_http_request_duration_seconds_count{route=\"kv\",method=\"GET\","
              "status=\"404\"} 1"));
  REQUIRE(has("# TYPE squall_http_connections_open gauge"));
  REQUIRE(has("squall_http_connections_open 1"));
}

}  // namespace squall::server::testing
