// The HTTP layer under limits and hostile input: 431, 413, malformed requests, slow senders,
// idle connections, keep-alive and pipelining, concurrent clients, the connection limit,
// graceful stop, and handlers that lose or throw instead of answering. After each abuse the
// server must still answer a normal request.
#include <atomic>
#include <random>
#include <thread>

#include <catch2/catch.hpp>

#include "server/rest_response.hpp"
#include "test/server/server_fixture.hpp"

namespace squall::server::testing {
namespace http = boost::beast::http;

namespace {

void require_still_serving(ServerFixture& fixture) {
  TestClient client = fixture.client();
  REQUIRE(client.get("/healthz").result_int() == 200);
}

// Sends `bytes`, expects an answer with `status` and the connection closed after it.
void require_refused(ServerFixture& fixture, const std::string& bytes, unsigned status) {
  TestClient client = fixture.client();
  REQUIRE(client.send_raw(bytes));
  Response response;
  REQUIRE(client.read_response(response));
  CAPTURE(response.body());
  REQUIRE(response.result_int() == status);
  REQUIRE_FALSE(response.keep_alive());
  REQUIRE(client.wait_closed());
}

void wait_until(const std::function<bool()>& condition) {
  for (int i = 0; i < 2000 && !condition(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  REQUIRE(condition());
}

}  // namespace

TEST_CASE("headers over the limit are 431, before and after the request line") {
  ServerFixture fixture;
  const std::string big(20000, 'a');
  require_refused(fixture, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n",
                  431);
  require_refused(fixture, "GET /v1/kv/" + big + " HTTP/1.1\r\nHost: x\r\n\r\n", 431);
  std::string many = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 2000; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  require_refused(fixture, many + "\r\n", 431);
  TestClient client = fixture.client();
  const Response error = client.get("/v1/kv/" + big);
  REQUIRE(error.result_int() == 431);
  REQUIRE(json_of(error)["error"] == "headers_too_large");
  require_still_serving(fixture);
}

TEST_CASE("bodies over the value limit are 413: from Content-Length, and chunked") {
  ServerFixture fixture;  // max body 256 KiB
  // Refused from the header alone: the body is never sent.
  require_refused(fixture,
                  "PUT /v1/kv/big HTTP/1.1\r\nHost: x\r\nContent-Length: 262145\r\n\r\n", 413);
  {
    TestClient client = fixture.client();
    std::string chunked =
        "PUT /v1/kv/big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string chunk(64 * 1024, 'c');
    for (int i = 0; i < 5; ++i) chunked += "10000\r\n" + chunk + "\r\n";
    chunked += "0\r\n\r\n";
    client.send_raw(chunked);  // the server may close before taking all of it
    Response response;
    REQUIRE(client.read_response(response));
    REQUIRE(response.result_int() == 413);
    REQUIRE(json_of(response)["error"] == "payload_too_large");
  }
  TestClient client = fixture.client();
  REQUIRE(client.get("/v1/kv/big").result_int() == 404);  // nothing was written
  const std::string at_limit(256 * 1024, 'v');
  REQUIRE(client.put("/v1/kv/big", at_limit).result_int() == 201);
  REQUIRE(client.get("/v1/kv/big").body() == at_limit);
  const Response refused = client.put("/v1/kv/big2", at_limit + "v");
  REQUIRE(refused.result_int() == 413);
}

TEST_CASE("Expect: 100-continue gets 100 before the body, or 413 instead of it") {
  ServerFixture fixture;
  TestClient client = fixture.client();
  REQUIRE(client.send_raw("PUT /v1/kv/e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                          "Expect: 100-continue\r\n\r\n"));
  Response response;
  REQUIRE(client.read_response(response));
  REQUIRE(response.result_int() == 100);
  REQUIRE(client.send_raw("hello"));
  REQUIRE(client.read_response(response));
  REQUIRE(response.result_int() == 201);
  require_refused(fixture,
                  "PUT /v1/kv/e HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n"
                  "Expect: 100-continue\r\n\r\n",
                  413);
}

TEST_CASE("malformed requests are 400 and never wedge the server") {
  ServerFixture fixture;
  for (const std::string& bytes : {
           std::string("\x01\x02garbage\r\n\r\n"),
           std::string("GET\r\n\r\n"),
           std::string("G@T /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
           std::string("GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"),
           std::string("GET /healthz HTTP/1.1\r\nNo colon here\r\n\r\n"),
           std::string("PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
           std::string("PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                       "Content-Length: 2\r\n\r\nab"),
           std::string("PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "zz\r\nab\r\n0\r\n\r\n"),
       }) {
    CAPTURE(bytes);
    require_refused(fixture, bytes, 400);
  }
  {
    // A relative target is not a path of the API.
    TestClient client = fixture.client();
    REQUIRE(client.send_raw("GET healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    Response response;
    REQUIRE(client.read_response(response));
    REQUIRE(response.result_int() == 400);
  }
  {
    // A peer that closes mid-request is just closed.
    TestClient client = fixture.client();
    REQUIRE(client.send_raw("PUT /v1/kv/a HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"));
  }
  TestClient client = fixture.client();
  REQUIRE(client.get("/v1/kv/a").result_int() == 404);  // nothing was written
  require_still_serving(fixture);
}

TEST_CASE("mutated and truncated requests never crash or wedge the server") {
  ServerFixture fixture;
  const std::vector<std::string> templates = {
      "GET /v1/kv/fuzz/a?version=1&consistency=stable HTTP/1.1\r\nHost: x\r\n\r\n",
      "PUT /v1/kv/fuzz/b HTTP/1.1\r\nHost: x\r\nIf-Match: \"5\"\r\n"
      "Content-Length: 3\r\n\r\nabc",
      "PUT /v1/kv/fuzz/c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      "GET /v1/kv?prefix=fuzz%2F&limit=10&values=true HTTP/1.1\r\n\r\n",
      "DELETE /v1/history/fuzz/a?before=3 HTTP/1.1\r\nConnection: keep-alive\r\n\r\n",
  };
  using namespace std::string_literals;
  const std::string alphabet = "%\r\n :/?&=\"*\x00\x7F\xFF\xC2"s + "aZ09-";
  std::mt19937 random(12345);  // fixed seed: the same inputs every run
  for (int round = 0; round < 300; ++round) {
    std::string bytes = templates[random() % templates.size()];
    const int mutations = static_cast<int>(random() % 4);
    for (int m = 0; m < mutations; ++m) {
      const std::size_t at = random() % bytes.size();
      switch (random() % 3) {
        case 0: bytes[at] = alphabet[random() % alphabet.size()]; break;
        case 1: bytes.insert(at, 1, alphabet[random() % alphabet.size()]); break;
        default: bytes.erase(at, 1); break;
      }
    }
    if (random() % 4 == 0) bytes.resize(random() % bytes.size());
    CAPTURE(round, bytes);
    TestClient client = fixture.client();
    client.send_raw(bytes);
    client.shutdown_send();
    REQUIRE(client.wait_closed());  // answered or not, the server lets go of the connection
  }
  require_still_serving(fixture);
  wait_until([&] { return fixture.server->open_connections() == 0; });
}

TEST_CASE("slow or idle connections are cut off by the read and idle timeouts") {
  HttpServerOptions options = test_options();
  options.read_timeout_ms = 300;
  options.idle_timeout_ms = 300;
  ServerFixture fixture(options);
  {
    TestClient slow_header = fixture.client();
    REQUIRE(slow_header.send_raw("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
    TestClient slow_body = fixture.client();
    REQUIRE(slow_body.send_raw("PUT /v1/kv/s HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
                               "abcde"));
    TestClient idle = fixture.client();
    TestClient idle_after_request = fixture.client();
    REQUIRE(idle_after_request.get("/healthz").result_int() == 200);
    std::string received;
    REQUIRE(slow_header.wait_closed(&received));
    REQUIRE(received.empty());
    REQUIRE(slow_body.wait_closed());
    REQUIRE(idle.wait_closed());
    REQUIRE(idle_after_request.wait_closed());
  }
  TestClient client = fixture.client();
  REQUIRE(client.get("/v1/kv/s").result_int() == 404);
  wait_until([&] { return fixture.server->open_connections() == 1; });
}

TEST_CASE("keep-alive serves many requests on one connection, pipelined ones in order") {
  ServerFixture fixture;
  TestClient client = fixture.client();
  for (int i = 0; i < 50; ++i) {
    const std::string key = "/v1/kv/k" + std::to_string(i);
    REQUIRE(client.put(key, std::to_string(i)).result_int() == 201);
    REQUIRE(client.get(key).body() == std::to_string(i));
  }
  REQUIRE(fixture.server->open_connections() == 1);
  REQUIRE(client.send_raw("GET /v1/kv/k1 HTTP/1.1\r\nHost: x\r\n\r\n"
                          "GET /v1/kv/k2 HTTP/1.1\r\nHost: x\r\n\r\n"
                          "GET /v1/kv/k3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  for (const char* expected : {"1", "2", "3"}) {
    Response response;
    REQUIRE(client.read_response(response));
    REQUIRE(response.body() == expected);
  }
  REQUIRE(client.wait_closed());
}

TEST_CASE("HTTP/1.0 without keep-alive is answered and closed") {
  ServerFixture fixture;
  TestClient client = fixture.client();
  REQUIRE(client.send_raw("GET /healthz HTTP/1.0\r\n\r\n"));
  std::string received;
  REQUIRE(client.wait_closed(&received));
  REQUIRE(received.starts_with("HTTP/1.1 200"));
}

TEST_CASE("concurrent clients each see their own writes") {
  ServerFixture fixture;
  constexpr int kClients = 8;
  constexpr int kRequests = 40;
  std::atomic<int> failures{0};
  // Clients connect here; the threads use no test assertions (they are not thread-safe).
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.push_back(std::make_unique<TestClient>(fixture.server->port()));
  }
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      TestClient& client = *clients[static_cast<std::size_t>(c)];
      for (int i = 0; i < kRequests; ++i) {
        const std::string key = "/v1/kv/c" + std::to_string(c) + "/" + std::to_string(i);
        const auto put = client.try_request(http::verb::put, key, key);
        if (!put || put->result_int() != 201) ++failures;
        const auto get = client.try_request(http::verb::get, key);
        if (!get || get->body() != key) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  REQUIRE(failures == 0);
  TestClient client = fixture.client();
  const auto page = json_of(client.get("/v1/kv?prefix=c&limit=1000"));
  REQUIRE(page["items"].size() == kClients * kRequests);
}

TEST_CASE("connections beyond max_connections get 503 and are closed") {
  HttpServerOptions options = test_options();
  options.max_connections = 3;
  ServerFixture fixture(options);
  std::vector<std::unique_ptr<TestClient>> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(std::make_unique<TestClient>(fixture.server->port()));
    REQUIRE(open.back()->get("/healthz").result_int() == 200);
  }
  {
    TestClient refused = fixture.client();
    std::string received;
    REQUIRE(refused.wait_closed(&received));
    REQUIRE(received.starts_with("HTTP/1.1 503"));
    REQUIRE(received.find("Retry-After: 1\r\n") != std::string::npos);
  }
  open.pop_back();
  wait_until([&] { return fixture.server->open_connections() == 2; });
  require_still_serving(fixture);
  REQUIRE(open.front()->get("/healthz").result_int() == 200);
}

TEST_CASE("graceful stop answers the request in flight and closes idle connections") {
  ServerFixture fixture;
  TestClient idle = fixture.client();
  REQUIRE(idle.get("/healthz").result_int() == 200);
  TestClient busy = fixture.client();
  fixture.backend.hold();
  REQUIRE(busy.send_raw("PUT /v1/kv/inflight HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n"
                        "x"));
  wait_until([&] { return fixture.backend.calls() == 1; });
  std::thread stopper([&] { fixture.server->stop(); });
  REQUIRE(idle.wait_closed());  // the idle connection goes at once
  fixture.backend.release();
  Response response;
  REQUIRE(busy.read_response(response));
  REQUIRE(response.result_int() == 201);
  REQUIRE_FALSE(response.keep_alive());
  REQUIRE(busy.wait_closed());
  stopper.join();
  REQUIRE(fixture.server->open_connections() == 0);
}

TEST_CASE("a handler that throws or drops its responder still gets the client a 500") {
  MetricsRegistry metrics;
  auto started = HttpServer::start(
      test_options(),
      [](HttpRequest request, HttpResponder respond) {
        if (request.target() == "/throw") throw std::runtime_error("boom");
        if (request.target() == "/drop") return;  // the responder dies unanswered
        respond(error_response(HttpStatus::ok, "fine", "fine"));
      },
      &metrics);
  REQUIRE(started.is_ok());
  auto server = std::move(started.value());
  TestClient client(server->port());
  REQUIRE(client.get("/throw").result_int() == 500);
  REQUIRE(client.get("/drop").result_int() == 500);
  REQUIRE(client.get("/ok").result_int() == 200);
  server->stop();
}

}  // namespace squall::server::testing
