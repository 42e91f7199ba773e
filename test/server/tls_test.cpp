// TLS on the REST port, end to end through the real HttpServer and RestApi: handshakes,
// client certificates (off, optional, require), the handshake timeout, certificate reload,
// the client context a node forwards with, curl, and RestService from a configuration.
#include <cstdlib>
#include <fstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "server/auth.hpp"
#include "server/rest_service.hpp"
#include "server/tls.hpp"
#include "test/server/server_fixture.hpp"
#include "test/server/tls_util.hpp"

using namespace squall;
using namespace squall::server;
using namespace squall::server::testing;
namespace http = boost::beast::http;

namespace {

config::TlsConfig tls_config(const CertDir& certs, const std::string& leaf,
                             config::ClientCerts client_certs = config::ClientCerts::off) {
  config::TlsConfig tls;
  tls.cert_file = certs.crt(leaf);
  tls.key_file = certs.key(leaf);
  tls.ca_file = certs.crt("ca");
  tls.client_certs = client_certs;
  tls.handshake_timeout_ms = 10000;
  return tls;
}

HttpServerOptions tls_options(std::shared_ptr<TlsServerContext> context) {
  HttpServerOptions options = test_options();
  options.tls = std::move(context);
  return options;
}

std::shared_ptr<TlsServerContext> context_of(const config::TlsConfig& tls) {
  auto context = TlsServerContext::create(tls);
  REQUIRE(context.is_ok());
  return context.value();
}

// A connection with `client` (a leaf name, or "" for none) is served: handshake and GET.
bool served(std::uint16_t port, const CertDir& certs, const std::string& client) {
  TlsClientOptions options{certs.crt("ca"), std::nullopt, std::nullopt};
  if (!client.empty()) {
    options.cert_file = certs.crt(client);
    options.key_file = certs.key(client);
  }
  TlsTestClient connection(port, options);
  if (!connection.handshake().empty()) return false;
  // With TLS 1.3 a refused client certificate shows on the first read, not the handshake.
  const auto response = connection.request(http::verb::get, "/healthz");
  return response.has_value() && response->result_int() == 200;
}

int run(const std::string& command) {
  return WEXITSTATUS(std::system((command + " >/dev/null 2>&1").c_str()));
}

}  // namespace

TEST_CASE("TLS: requests are served over TLS and verified against the CA") {
  CertDir certs;
  REQUIRE(certs.make_leaf("server-a"));
  ServerFixture fixture(tls_options(context_of(tls_config(certs, "server-a"))));
  CHECK(fixture.server->tls());
  TlsTestClient client(fixture.server->port(), {certs.crt("ca"), std::nullopt, std::nullopt});
  REQUIRE(client.handshake().empty());
  CHECK(client.server_common_name() == "server-a");
  auto put = client.request(http::verb::put, "/v1/kv/app/x", "hello");
  REQUIRE(put.has_value());
  CHECK(put->result_int() == 201);
  // Keep-alive: the same TLS connection carries the next request.
  auto get = client.request(http::verb::get, "/v1/kv/app/x");
  REQUIRE(get.has_value());
  CHECK(get->result_int() == 200);
  CHECK(get->body() == "hello");
  // A client that trusts another CA refuses the server.
  TlsTestClient distrustful(fixture.server->port(),
                            {certs.crt("rogue-ca"), std::nullopt, std::nullopt});
  CHECK(!distrustful.handshake().empty());
}

TEST_CASE("TLS: plain HTTP and garbage on a TLS port just close that connection") {
  CertDir certs;
  REQUIRE(certs.make_leaf("server-a"));
  ServerFixture fixture(tls_options(context_of(tls_config(certs, "server-a"))));
  TestClient plain(fixture.server->port());
  CHECK(!plain.try_request(http::verb::get, "/healthz").has_value());
  TestClient garbage(fixture.server->port());
  REQUIRE(garbage.send_raw(std::string(300, '\x16')));
  CHECK(garbage.wait_closed());
  // The server still serves TLS clients.
  CHECK(served(fixture.server->port(), certs, ""));
  CHECK(fixture.metrics.render().find(
            "squall_http_protocol_errors_total{kind=\"tls_handshake\"}") != std::string::npos);
}

TEST_CASE("TLS: a client that never completes the handshake is closed at the timeout") {
  CertDir certs;
  REQUIRE(certs.make_leaf("server-a"));
  config::TlsConfig tls = tls_config(certs, "server-a");
  tls.handshake_timeout_ms = 100;
  ServerFixture fixture(tls_options(context_of(tls)));
  TestClient silent(fixture.server->port());
  REQUIRE(silent.send_raw(""));
  CHECK(silent.wait_closed());
  CHECK(served(fixture.server->port(), certs, ""));
}

TEST_CASE("TLS: client certificates off, optional and required") {
  CertDir certs;
  REQUIRE(certs.make_leaf("server-a"));
  REQUIRE(certs.make_leaf("client"));
  REQUIRE(certs.make_leaf("intruder", "rogue-ca"));
  SECTION("require") {
    ServerFixture fixture(tls_options(
        context_of(tls_config(certs, "server-a", config::ClientCerts::require))));
    CHECK(served(fixture.server->port(), certs, "client"));
    CHECK(!served(fixture.server->port(), certs, ""));
    CHECK(!served(fixture.server->port(), certs, "intruder"));
    CHECK(served(fixture.server->port(), certs, "client"));
  }
  SECTION("optional") {
    ServerFixture fixture(tls_options(
        context_of(tls_config(certs, "server-a", config::ClientCerts::optional))));
    CHECK(served(fixture.server->port(), certs, "client"));
    CHECK(served(fixture.server->port(), certs, ""));
    CHECK(!served(fixture.server->port(), certs, "intruder"));
  }
  SECTION("off") {
    ServerFixture fixture(tls_options(context_of(tls_config(certs, "server-a"))));
    CHECK(served(fixture.server->port(), certs, ""));
    CHECK(served(fixture.server->port(), certs, "intruder"));  // not asked for
  }
}

TEST_CASE("TLS: reload serves new connections with the new certificate") {
  CertDir certs;
  REQUIRE(certs.make_leaf("server-a"));
  REQUIRE(certs.make_leaf("server-b"));
  REQUIRE(certs.make_leaf("live"));
  // The configured paths are "live"; reload reads whatever they hold then.
  std::filesystem::copy_file(certs.crt("server-a"), certs.crt("live"),
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(certs.key("server-a"), certs.key("live"),
                             std::filesystem::copy_options::overwrite_existing);
  auto context = context_of(tls_config(certs, "live"));
  ServerFixture fixture(tls_options(context));
  const TlsClientOptions trust{certs.crt("ca"), std::nullopt, std::nullopt};
  TlsTestClient before(fixture.server->port(), trust);
  REQUIRE(before.handshake().empty());
  CHECK(before.server_common_name() == "server-a");

  std::filesystem::copy_file(certs.crt("server-b"), certs.crt("live"),
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(certs.key("server-b"), certs.key("live"),
                             std::filesystem::copy_options::overwrite_existing);
  REQUIRE(fixture.server->reload_tls().is_ok());
  CHECK(context->reload_count() == 1);
  TlsTestClient after(fixture.server->port(), trust);
  REQUIRE(after.handshake().empty());
  CHECK(after.server_common_name() == "server-b");
  // The connection opened before the reload carries on.
  auto still = before.request(http::verb::get, "/healthz");
  REQUIRE(still.has_value());
  CHECK(still->result_int() == 200);

  // A broken file: the reload fails and the current certificate stays.
  { std::ofstream(certs.key("live"), std::ios::trunc) << "not a key\n"; }
  CHECK(!fixture.server->reload_tls().is_ok());
  // The process-wide reload (squalld's SIGHUP) reaches this context too, and fails the same.
  CHECK(!reload_tls_contexts().is_ok());
  CHECK(context->reload_count() == 1);
  TlsTestClient later(fixture.server->port(), trust);
  REQUIRE(later.handshake().empty());
  CHECK(later.server_common_name() == "server-b");
  // A key that does not match its certificate is refused.
  std::filesystem::copy_file(certs.key("server-a"), certs.key("live"),
                             std::filesystem::copy_options::overwrite_existing);
  auto mismatch = fixture.server->reload_tls();
  CHECK_THAT(mismatch.message(), Catch::Contains("mismatch"));
}

TEST_CASE("TLS: a node's client context passes a server that requires client certificates") {
  CertDir certs;
  REQUIRE(certs.make_leaf("node-1"));
  REQUIRE(certs.make_leaf("node-2"));
  ServerFixture fixture(tls_options(
      context_of(tls_config(certs, "node-1", config::ClientCerts::require))));
  // What a forwarding node does: its own rest.tls gives the client context.
  auto context = make_client_context(tls_config(certs, "node-2"));
  REQUIRE(context.is_ok());
  boost::asio::io_context io;
  boost::beast::ssl_stream<boost::beast::tcp_stream> stream(io, *context.value());
  REQUIRE(prepare_client_stream(stream, "127.0.0.1").is_ok());
  boost::beast::get_lowest_layer(stream).connect(boost::asio::ip::tcp::endpoint(
      boost::asio::ip::make_address("127.0.0.1"), fixture.server->port()));
  boost::beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(20));
  boost::beast::error_code error;
  stream.handshake(boost::asio::ssl::stream_base::client, error);
  REQUIRE(!error);
  http::request<http::string_body> request{http::verb::get, "/healthz", 11};
  request.set(http::field::host, "127.0.0.1");
  http::write(stream, request, error);
  REQUIRE(!error);
  boost::beast::flat_buffer buffer;
  Response response;
  http::read(stream, buffer, response, error);
  REQUIRE(!error);
  CHECK(response.result_int() == 200);
  // A peer name its certificate does not carry is refused.
  boost::beast::ssl_stream<boost::beast::tcp_stream> wrong(io, *context.value());
  REQUIRE(prepare_client_stream(wrong, "squall.invalid").is_ok());
  boost::beast::get_lowest_layer(wrong).connect(boost::asio::ip::tcp::endpoint(
      boost::asio::ip::make_address("127.0.0.1"), fixture.server->port()));
  boost::beast::get_lowest_layer(wrong).expires_after(std::chrono::seconds(20));
  wrong.handshake(boost::asio::ssl::stream_base::client, error);
  CHECK(error);
}

TEST_CASE("TLS: curl with and without the CA") {
  if (run("curl --version") != 0) {
    WARN("curl is not installed: skipped");
    return;
  }
  CertDir certs;
  REQUIRE(certs.make_leaf("server-a"));
  ServerFixture fixture(tls_options(context_of(tls_config(certs, "server-a"))));
  const std::string url = fmt::format("https://127.0.0.1:{}/healthz", fixture.server->port());
  CHECK(run(fmt::format("curl -sSf --max-time 20 --cacert {} {}", certs.crt("ca"), url)) == 0);
  // Without the CA the server's certificate is not trusted (curl: 60).
  CHECK(run(fmt::format("curl -sSf --max-time 20 --capath /nonexistent --cacert {} {}",
                        certs.crt("rogue-ca"), url)) == 60);
  CHECK(run(fmt::format("curl -sSf --max-time 20 http://127.0.0.1:{}/healthz",
                        fixture.server->port())) != 0);
}

TEST_CASE("TLS: RestService takes rest.tls from the configuration; bad files refuse to start") {
  CertDir certs;
  REQUIRE(certs.make_leaf("server-a"));
  auto config = config::load_config_string(
      fmt::format("node: {{id: 1, data_dir: /tmp/unused}}\n"
                  "rest: {{listen: \"127.0.0.1:0\", tls: {{cert_file: {}, key_file: {}}}}}\n",
                  certs.crt("server-a"), certs.key("server-a")),
      "test.yaml");
  // rest.listen port 0 is refused by validation; the service takes the port as given.
  if (!config.is_ok()) {
    config = config::load_config_string(
        fmt::format("node: {{id: 1, data_dir: /tmp/unused}}\n"
                    "rest: {{tls: {{cert_file: {}, key_file: {}}}}}\n",
                    certs.crt("server-a"), certs.key("server-a")),
        "test.yaml");
    REQUIRE(config.is_ok());
    config->rest.listen.port = 0;
  }
  SingleNodeTestBackend backend;
  MetricsRegistry metrics;
  auto service = RestService::start(config.value(), backend, metrics, 2);
  REQUIRE(service.is_ok());
  CHECK(service.value()->tls());
  CHECK(served(service.value()->port(), certs, ""));
  CHECK(service.value()->reload_tls().is_ok());
  service.value()->stop();

  config->rest.tls->key_file = certs.path("missing.key");
  auto refused = RestService::start(config.value(), backend, metrics, 2);
  REQUIRE(!refused.is_ok());
  CHECK_THAT(refused.status().message(), Catch::Contains("missing.key"));
}

TEST_CASE("TLS: a watch stream (SSE) runs over TLS within the token's scope") {
  CertDir certs;
  REQUIRE(certs.make_leaf("server-a"));
  TokenGrant reader;
  reader.name = "reader";
  reader.digest = sha256("reader-token-0123456789");
  reader.read = true;
  reader.prefixes = {"app/"};
  TokenGrant writer = reader;
  writer.name = "writer";
  writer.digest = sha256("writer-token-0123456789");
  writer.write = true;
  auto auth = std::make_shared<Authorizer>(std::vector<TokenGrant>{reader, writer},
                                           config::EndpointAccess::open,
                                           config::EndpointAccess::open);
  WatchLimits limits;
  limits.max_watchers = 4;
  limits.buffer_events = 64;
  limits.keepalive_ms = 0;
  SingleNodeTestBackend backend;
  MetricsRegistry metrics;
  RestApi api(backend, metrics, test_limits(), &backend.watch_backend(), limits, auth);
  auto started = HttpServer::start(tls_options(context_of(tls_config(certs, "server-a"))),
                                   api.handler(), &metrics);
  REQUIRE(started.is_ok());
  auto& server = *started.value();
  const TlsClientOptions trust{certs.crt("ca"), std::nullopt, std::nullopt};
  const Headers read_token{{"Authorization", "Bearer reader-token-0123456789"}};

  TlsTestClient watcher(server.port(), trust);
  REQUIRE(watcher.handshake().empty());
  auto head = watcher.read_until("/v1/watch?prefix=app/", read_token, "\r\n\r\n");
  REQUIRE(head.has_value());
  CHECK_THAT(*head, Catch::StartsWith("HTTP/1.1 200"));
  CHECK_THAT(*head, Catch::Contains("text/event-stream"));

  TlsTestClient writing(server.port(), trust);
  REQUIRE(writing.handshake().empty());
  auto put = writing.request(http::verb::put, "/v1/kv/app/streamed", "over-tls",
                             {{"Authorization", "Bearer writer-token-0123456789"}});
  REQUIRE(put.has_value());
  CHECK(put->result_int() == 201);
  auto event = watcher.read_more_until("app/streamed");
  REQUIRE(event.has_value());
  CHECK_THAT(*event, Catch::Contains("event: put"));

  // A watch wider than the token's prefixes is refused before it opens.
  TlsTestClient wide(server.port(), trust);
  REQUIRE(wide.handshake().empty());
  auto refused = wide.request(http::verb::get, "/v1/watch?prefix=", {}, read_token);
  REQUIRE(refused.has_value());
  CHECK(refused->result_int() == 403);
  server.stop();
}
