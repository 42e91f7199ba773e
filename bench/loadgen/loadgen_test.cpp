// squall-loadgen's own tests: the histogram, the two dialects (requests byte for byte,
// responses classified), the watch stream parsers, and a smoke run of every mode against the
// real REST server over the single-node test backend (test/server), in-process on port 0.
// Counts only: no timing is asserted.
#include <catch2/catch.hpp>

#include "bench/loadgen/dialect.hpp"
#include "bench/loadgen/histogram.hpp"
#include "bench/loadgen/report.hpp"
#include "bench/loadgen/runner.hpp"
#include "bench/loadgen/watch.hpp"
#include "server/http_server.hpp"
#include "server/rest_api.hpp"
#include "test/server/server_fixture.hpp"

namespace squall::loadgen {
namespace {

namespace http = boost::beast::http;

TEST_CASE("loadgen histogram: buckets within 1/64 and quantiles by rank") {
  for (std::uint64_t value : std::initializer_list<std::uint64_t>{
           0, 1, 127, 128, 129, 1000, 123456789, LatencyHistogram::kMaxValueNs}) {
    const std::size_t index = LatencyHistogram::index_of(value);
    const std::uint64_t upper = LatencyHistogram::upper_bound_ns(index);
    CHECK(upper >= value);
    CHECK(static_cast<double>(upper - value) <= static_cast<double>(value) / 64.0 + 1e-9);
  }
  LatencyHistogram histogram;
  for (std::uint64_t v = 1; v <= 1000; ++v) histogram.record(v * 1000);
  CHECK(histogram.count() == 1000);
  CHECK(histogram.min_ns() == 1000);
  CHECK(histogram.max_ns() == 1000000);
  const auto p50 = static_cast<double>(histogram.quantile_ns(0.5));
  CHECK(p50 >= 500000);
  CHECK(p50 <= 500000 * (1 + 1.0 / 64));
  CHECK(histogram.quantile_ns(1.0) == 1000000);
  LatencyHistogram other;
  other.record(LatencyHistogram::kMaxValueNs + 5);
  CHECK(other.clamped() == 1);
  histogram.merge(other);
  CHECK(histogram.count() == 1001);
  CHECK(histogram.max_ns() == LatencyHistogram::kMaxValueNs);
}

TEST_CASE("loadgen base64, key encoding and prefix ends") {
  for (const std::string text : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    const auto decoded = base64_decode(base64_encode(text));
    REQUIRE(decoded.is_ok());
    CHECK(decoded.value() == text);
  }
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK_FALSE(base64_decode("Zm8").is_ok());
  CHECK_FALSE(base64_decode("Zm=8").is_ok());
  CHECK(percent_encode_key("a b/c%") == "a%20b/c%25");
  CHECK(prefix_end("lg/") == "lg0");
  CHECK(prefix_end(std::string("a\xff", 2)) == "b");
}

TEST_CASE("loadgen squall dialect: requests and answers") {
  const PreparedValue value = prepare_value(Target::squall, "hello");
  const HttpRequest put = build_request(Target::squall, OpKind::put, "h:1", "k/1", value, 0);
  CHECK(put.method() == http::verb::put);
  CHECK(put.target() == "/v1/kv/k/1");
  CHECK(put.body() == "hello");
  const HttpRequest stable =
      build_request(Target::squall, OpKind::stable_get, "h:1", "k", value, 0);
  CHECK(stable.target() == "/v1/kv/k?consistency=stable");
  const HttpRequest cas = build_request(Target::squall, OpKind::cas, "h:1", "k", value, 42);
  CHECK(cas[http::field::if_match] == "\"42\"");
  const HttpRequest create = build_request(Target::squall, OpKind::cas, "h:1", "k", value, 0);
  CHECK(create[http::field::if_none_match] == "*");

  HttpResponse ok(http::status::created, 11);
  ok.set(http::field::etag, "\"77\"");
  const Reply put_reply = interpret_response(Target::squall, OpKind::put, ok, std::nullopt);
  CHECK(put_reply.outcome == Outcome::ok);
  CHECK(put_reply.version == 77u);
  HttpResponse conflict(http::status::precondition_failed, 11);
  conflict.body() = R"({"error":"precondition_failed","current_version":null})";
  const Reply lost = interpret_response(Target::squall, OpKind::cas, conflict, std::nullopt);
  CHECK(lost.outcome == Outcome::cas_conflict);
  CHECK(lost.version == 0u);
  HttpResponse got(http::status::ok, 11);
  got.body() = "abc";
  CHECK(interpret_response(Target::squall, OpKind::get, got, 4).error == "short_value");
  HttpResponse busy(http::status::service_unavailable, 11);
  CHECK(interpret_response(Target::squall, OpKind::get, busy, 3).error == "http_503");
}

TEST_CASE("loadgen etcd dialect: gateway requests and answers") {
  const PreparedValue value = prepare_value(Target::etcd, "hi");
  const HttpRequest put = build_request(Target::etcd, OpKind::put, "h:1", "k", value, 0);
  CHECK(put.target() == "/v3/kv/put");
  CHECK(put.body() == R"({"key":"aw==","value":"aGk="})");
  const HttpRequest read = build_request(Target::etcd, OpKind::stable_get, "h:1", "k", value, 0);
  CHECK(read.body() == R"({"key":"aw==","serializable":true})");
  const HttpRequest cas = build_request(Target::etcd, OpKind::cas, "h:1", "k", value, 9);
  CHECK(cas.target() == "/v3/kv/txn");
  CHECK(nlohmann::json::parse(cas.body())["compare"][0]["mod_revision"] == "9");

  HttpResponse response(http::status::ok, 11);
  response.body() = R"({"header":{"revision":"12"}})";
  CHECK(interpret_response(Target::etcd, OpKind::put, response, std::nullopt).version == 12u);
  CHECK(interpret_response(Target::etcd, OpKind::get, response, std::nullopt).outcome ==
        Outcome::not_found);
  response.body() = R"({"header":{"revision":"12"},"kvs":[{"mod_revision":"5","value":"aGk="}]})";
  const Reply got = interpret_response(Target::etcd, OpKind::get, response, 2);
  CHECK(got.outcome == Outcome::ok);
  CHECK(got.version == 5u);
  response.body() = R"({"header":{"revision":"13"},"responses":[{"response_range":)"
                    R"({"header":{},"kvs":[{"mod_revision":"8"}]}}]})";
  const Reply lost = interpret_response(Target::etcd, OpKind::cas, response, std::nullopt);
  CHECK(lost.outcome == Outcome::cas_conflict);
  CHECK(lost.version == 8u);
  response.body() = R"({"header":{"revision":"14"},"succeeded":true})";
  CHECK(interpret_response(Target::etcd, OpKind::cas, response, std::nullopt).version == 14u);
  response.body() = "not json";
  CHECK(interpret_response(Target::etcd, OpKind::put, response, std::nullopt).error ==
        "bad_response");
}

TEST_CASE("loadgen watch stream parsers: records split across reads") {
  std::vector<std::string> values;
  auto collect = [&](const std::string& value) { values.push_back(value); };
  WatchStreamParser sse(Target::squall);
  const std::string stream =
      ": keepalive\n\nid: 1\nevent: put\ndata: {\"key\":\"a\",\"value_base64\":\"aGk=\"}\n\n"
      "id: 2\nevent: put\ndata: {\"key\":\"b\",\"value_base64\":\"Zm9v\"}\n\n";
  for (char c : stream) REQUIRE(sse.feed(std::string_view(&c, 1), collect).is_ok());
  CHECK(values == std::vector<std::string>{"hi", "foo"});
  CHECK(sse.control_messages() == 1);

  values.clear();
  WatchStreamParser etcd(Target::etcd);
  REQUIRE(etcd.feed(R"({"result":{"header":{},"created":true}})" "\n{\"result\":{\"events\":"
                    R"([{"kv":{"key":"aw==","value":"aGk="}},{"kv":{"key":"aw==",)",
                    collect).is_ok());
  CHECK(values.empty());
  REQUIRE(etcd.feed(R"("value":"Zm9v"}}]}})" "\n", collect).is_ok());
  CHECK(values == std::vector<std::string>{"hi", "foo"});
  CHECK(etcd.control_messages() == 1);
  CHECK_FALSE(etcd.feed("{\"error\":{\"grpc_code\":14}}\n", collect).is_ok());
}

// The REST server over the test backend, with watch streams.
struct Server {
  Server()
      : api(backend, metrics, server::testing::test_limits(), &backend.watch_backend(),
            server::WatchLimits{}) {
    auto started = server::HttpServer::start(server::testing::test_options(), api.handler(),
                                             &metrics);
    REQUIRE(started.is_ok());
    http_server = std::move(started.value());
  }
  ~Server() { http_server->stop(); }

  LoadOptions options() const {
    LoadOptions load;
    load.endpoints = {Endpoint{"127.0.0.1", http_server->port()}};
    load.connections = 4;
    load.threads = 2;
    load.keyspace = 40;
    load.value_bytes = 64;
    load.warmup_s = 0;
    load.progress = false;
    return load;
  }

  server::testing::SingleNodeTestBackend backend;
  server::MetricsRegistry metrics;
  server::RestApi api;
  std::unique_ptr<server::HttpServer> http_server;
};

TEST_CASE("loadgen smoke: preload, then a closed-loop mix by request count") {
  Server server;
  LoadOptions preload = server.options();
  preload.sequential_keys = true;
  const auto loaded = run_load(preload);
  REQUIRE(loaded.is_ok());
  CHECK(loaded.value().ok_total == 40);
  CHECK(loaded.value().errors.empty());

  LoadOptions load = server.options();
  load.mix = {1, 1, 1, 1};
  load.requests = 200;
  load.check_get_values = true;
  const auto result = run_load(load);
  REQUIRE(result.is_ok());
  INFO(load_table(load, result.value()));
  CHECK(result.value().errors.empty());
  CHECK(result.value().answered() == 200);
  for (const OpStats& op : result.value().ops) {
    CHECK(op.latency.count() > 0);
    CHECK(op.not_found == 0);
  }
  const nlohmann::json json = load_json(load, result.value());
  CHECK(json["ops"]["cas"]["count"].get<std::uint64_t>() > 0);
  CHECK(comparison_row("smoke", json, json).is_ok());
}

TEST_CASE("loadgen smoke: conditional puts on each connection's own keys never conflict") {
  Server server;
  LoadOptions load = server.options();
  load.mix = {0, 0, 0, 1};
  load.requests = 120;
  const auto result = run_load(load);
  REQUIRE(result.is_ok());
  INFO(load_table(load, result.value()));
  CHECK(result.value().errors.empty());
  const OpStats& cas = result.value().ops[static_cast<std::size_t>(OpKind::cas)];
  CHECK(cas.ok == 120);
  CHECK(cas.cas_conflict == 0);
}

TEST_CASE("loadgen smoke: open loop at a fixed rate") {
  Server server;
  LoadOptions load = server.options();
  load.rate_per_s = 200;
  load.duration_s = 0.3;
  load.warmup_s = 0.1;
  load.mix = {1, 0, 1, 0};
  const auto result = run_load(load);
  REQUIRE(result.is_ok());
  INFO(load_table(load, result.value()));
  CHECK(result.value().errors.empty());
  // 200/s for 0.4 s: 80 intended sends, 20 of them in the warmup.
  CHECK(result.value().answered() + result.value().warmup_requests == 80);
}

TEST_CASE("loadgen smoke: watch mode delivers every put to every watcher") {
  Server server;
  WatchOptions watch;
  watch.writer = server.options();
  watch.writer.key_prefix = "w/";
  watch.writer.rate_per_s = 100;
  watch.writer.duration_s = 0.3;
  watch.watchers = 3;
  watch.watcher_threads = 2;
  watch.drain_s = 20;
  const auto result = run_watch(watch);
  REQUIRE(result.is_ok());
  INFO(watch_table(watch, result.value()));
  CHECK(result.value().errors.empty());
  CHECK(result.value().writes.errors.empty());
  CHECK(result.value().writes.ok_total == 30);
  CHECK(result.value().events == 90);
  CHECK(result.value().latency.count() == 90);
}

}  // namespace
}  // namespace squall::loadgen
