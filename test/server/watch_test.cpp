// GET /v1/watch: Server-Sent Events over a real WatchHub fed by the test backend's writes.
// Byte-exact stream format, key and prefix topics, start=now/oldest, resume by cursor= and
// Last-Event-ID (no gap, no duplicate), 410 for a cursor older than the journal, keepalives,
// a stalled reader dropped with a resumable cursor while writers go on, the stream limit,
// disconnects freeing watchers, and server stop ending streams.
#include <functional>
#include <memory>
#include <optional>
#include <thread>

#include <catch2/catch.hpp>

#include "kvstore/watch_cursor.hpp"
#include "server/rest_response.hpp"
#include "server/rest_service.hpp"
#include "test/server/server_fixture.hpp"
#include "test/server/sse_client.hpp"

namespace squall::server::testing {
namespace {

constexpr ShardId kShard{0};

WatchLimits watch_test_limits() {
  WatchLimits limits;
  limits.max_watchers = 8;
  limits.buffer_events = 64;
  limits.keepalive_ms = 0;  // none unless a test asks
  return limits;
}

struct WatchFixture {
  explicit WatchFixture(WatchLimits limits = watch_test_limits(),
                        kvstore::WatchHubOptions hub = {},
                        kvstore::RetentionPolicy retention = {},
                        HttpServerOptions options = test_options())
      : backend(retention, hub),
        api(backend, metrics, test_limits(), &backend.watch_backend(), limits) {
    auto started = HttpServer::start(options, api.handler(), &metrics);
    REQUIRE(started.is_ok());
    server = std::move(started.value());
  }
  ~WatchFixture() { server->stop(); }

  std::unique_ptr<SseClient> watcher(int receive_buffer_bytes = 0) {
    return std::make_unique<SseClient>(server->port(), receive_buffer_bytes);
  }
  // Opens a stream, requiring a 200 event stream.
  std::unique_ptr<SseClient> open(const std::string& target, const Headers& headers = {}) {
    auto client = watcher();
    auto response = client->open(target, headers);
    REQUIRE(response.has_value());
    CAPTURE(response->body());
    REQUIRE(response->result_int() == 200);
    return client;
  }
  // PUT (value) or DELETE (none); returns the write's JSON answer.
  nlohmann::json write(const std::string& key, std::optional<std::string> value) {
    TestClient client = this->client();
    Response response =
        value ? client.put("/v1/kv/" + key, *value) : client.del("/v1/kv/" + key);
    REQUIRE(response.result_int() / 100 == 2);
    return json_of(response);
  }
  Version put(const std::string& key, const std::string& value) {
    return write(key, value)["version"].get<Version>();
  }
  TestClient client() { return TestClient(server->port()); }

  SingleNodeTestBackend backend;
  MetricsRegistry metrics;
  RestApi api;
  std::unique_ptr<HttpServer> server;
};

std::string cursor_at(Version version) {
  kvstore::WatchCursor cursor;
  cursor.set(kShard, version);
  return cursor.encode();
}

std::vector<std::string> keys_of(const std::vector<SseBlock>& events) {
  std::vector<std::string> keys;
  for (const SseBlock& event : events) {
    keys.push_back(nlohmann::json::parse(event.data)["key"].get<std::string>());
  }
  return keys;
}

std::vector<Version> versions_of(const std::vector<SseBlock>& events) {
  std::vector<Version> versions;
  for (const SseBlock& event : events) {
    versions.push_back(nlohmann::json::parse(event.data)["version"].get<Version>());
  }
  return versions;
}

void wait_until(const std::function<bool()>& condition) {
  for (int i = 0; i < 4000 && !condition(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  REQUIRE(condition());
}

void require_error(const std::optional<Response>& response, unsigned status,
                   const std::string& code) {
  REQUIRE(response.has_value());
  CAPTURE(response->body());
  REQUIRE(response->result_int() == status);
  REQUIRE(header_of(*response, "Content-Type") == "application/json");
  REQUIRE(json_of(*response)["error"] == code);
}

}  // namespace

TEST_CASE("watch stream format is byte-exact") {
  WatchFixture fixture;
  auto stream = fixture.watcher();
  auto header = stream->open("/v1/watch?key=users/42");
  REQUIRE(header.has_value());
  REQUIRE(header->result_int() == 200);
  REQUIRE(header_of(*header, "Content-Type") == "text/event-stream");
  REQUIRE(header_of(*header, "Cache-Control") == "no-cache");
  REQUIRE(header_of(*header, "Transfer-Encoding") == "chunked");
  REQUIRE_FALSE(header->keep_alive());
  const nlohmann::json put = fixture.write("users/42", "hello");
  const nlohmann::json del = fixture.write("users/42", std::nullopt);
  REQUIRE(stream->read_events(2));
  const std::string expected =
      "id: " + cursor_at(put["version"].get<Version>()) +
      "\nevent: put\ndata: {\"key\":\"users/42\",\"version\":" + put["version"].dump() +
      ",\"timestamp_us\":" + put["timestamp_us"].dump() +
      ",\"shard\":0,\"value_base64\":\"aGVsbG8=\"}\n\n" +
      "id: " + cursor_at(del["version"].get<Version>()) +
      "\nevent: delete\ndata: {\"key\":\"users/42\",\"version\":" + del["version"].dump() +
      ",\"timestamp_us\":" + del["timestamp_us"].dump() + ",\"shard\":0}\n\n";
  REQUIRE(stream->body() == expected);
  // The chunk framing (decoded by the client): the first chunk holds the first event or both.
  const std::size_t first_bytes = stream->blocks()[0].raw.size() + 2;
  REQUIRE((stream->raw().starts_with(fmt::format("{:x}\r\n", first_bytes)) ||
           stream->raw().starts_with(fmt::format("{:x}\r\n", expected.size()))));

  // values=false: the same events without value_base64.
  auto bare = fixture.open("/v1/watch?key=users/42&values=false&start=oldest");
  REQUIRE(bare->read_events(2));
  REQUIRE(bare->events()[0].data ==
          "{\"key\":\"users/42\",\"version\":" + put["version"].dump() +
              ",\"timestamp_us\":" + put["timestamp_us"].dump() + ",\"shard\":0}");
}

TEST_CASE("watch topics: a key, a prefix, the empty prefix") {
  WatchFixture fixture;
  auto key = fixture.open("/v1/watch?key=users/1");
  auto prefix = fixture.open("/v1/watch?prefix=users/");
  auto everything = fixture.open("/v1/watch?prefix=");
  for (const char* name : {"users/1", "other/1", "users/2", "users", "users/1"}) {
    fixture.put(name, "v");
  }
  REQUIRE(everything->read_events(5));
  REQUIRE(keys_of(everything->events()) ==
          std::vector<std::string>{"users/1", "other/1", "users/2", "users", "users/1"});
  REQUIRE(prefix->read_events(3));
  REQUIRE(keys_of(prefix->events()) ==
          std::vector<std::string>{"users/1", "users/2", "users/1"});
  REQUIRE(key->read_events(2));
  REQUIRE(keys_of(key->events()) == std::vector<std::string>{"users/1", "users/1"});
  // Nothing else arrived on the narrower streams (the last write is in all of them).
  REQUIRE(prefix->events().size() == 3);
  REQUIRE(key->events().size() == 2);
}

TEST_CASE("watch start=oldest replays retained events, start=now only new ones") {
  WatchFixture fixture;
  const Version first = fixture.put("a/1", "x");
  fixture.put("b/1", "y");
  const Version third = fixture.put("a/2", "z");
  auto oldest = fixture.open("/v1/watch?prefix=a/&start=oldest");
  auto oldest_key = fixture.open("/v1/watch?key=a/1&start=oldest");
  auto now = fixture.open("/v1/watch?prefix=a/&start=now");
  auto by_default = fixture.open("/v1/watch?prefix=a/");
  const Version fourth = fixture.put("a/3", "w");
  REQUIRE(oldest->read_events(3));
  REQUIRE(versions_of(oldest->events()) == std::vector<Version>{first, third, fourth});
  REQUIRE(oldest_key->read_events(1));
  REQUIRE(versions_of(oldest_key->events()) == std::vector<Version>{first});
  REQUIRE(now->read_events(1));
  REQUIRE(versions_of(now->events()) == std::vector<Version>{fourth});
  REQUIRE(by_default->read_events(1));
  REQUIRE(versions_of(by_default->events()) == std::vector<Version>{fourth});
}

TEST_CASE("watch resumes by cursor and by Last-Event-ID with no gap and no duplicate") {
  WatchFixture fixture;
  auto first = fixture.open("/v1/watch?prefix=k/");
  std::vector<Version> written;
  for (int i = 0; i < 5; ++i) written.push_back(fixture.put("k/" + std::to_string(i), "v"));
  fixture.put("other", "v");
  REQUIRE(first->read_events(5));
  const std::vector<SseBlock> seen = first->events();
  first->close();
  for (int i = 5; i < 8; ++i) written.push_back(fixture.put("k/" + std::to_string(i), "v"));

  SECTION("cursor= from the third event") {
    auto resumed = fixture.open("/v1/watch?prefix=k/&cursor=" + seen[2].id);
    REQUIRE(resumed->read_events(5));
    REQUIRE(versions_of(resumed->events()) ==
            std::vector<Version>(written.begin() + 3, written.end()));
  }
  SECTION("Last-Event-ID from the fifth event, winning over cursor= and start=") {
    auto resumed = fixture.open("/v1/watch?prefix=k/&start=oldest&cursor=" + seen[0].id,
                                {{"Last-Event-ID", seen[4].id}});
    REQUIRE(resumed->read_events(3));
    REQUIRE(versions_of(resumed->events()) ==
            std::vector<Version>(written.begin() + 5, written.end()));
    // And live events follow the replay.
    const Version live = fixture.put("k/live", "v");
    REQUIRE(resumed->read_events(4));
    REQUIRE(versions_of(resumed->events()).back() == live);
    REQUIRE(resumed->events().size() == 4);
  }
}

TEST_CASE("watch answers 410 for a cursor older than retained history, 400 for bad input") {
  kvstore::WatchHubOptions hub;
  hub.journal_events = 4;
  WatchFixture fixture(watch_test_limits(), hub, kvstore::RetentionPolicy{2, 0});
  const Version first = fixture.put("p/k", "v");
  for (int i = 1; i < 10; ++i) fixture.put("p/k", "v" + std::to_string(i));
  fixture.backend.apply_retention();
  // Neither the journal (4 events) nor the store (2 versions of the key) holds what follows
  // the first write any more.
  for (const std::string topic : {"key=p/k", "prefix=p/"}) {
    CAPTURE(topic);
    require_error(fixture.watcher()->open("/v1/watch?" + topic + "&cursor=" + cursor_at(first)),
                  410, "gone");
    auto oldest = fixture.open("/v1/watch?" + topic + "&start=oldest");
    REQUIRE(oldest->read_events(2));
  }

  const std::vector<std::string> bad = {
      "/v1/watch",                                 // no topic
      "/v1/watch?key=a&prefix=a",                  // two topics
      "/v1/watch?key=",                            // empty key
      "/v1/watch?key=%01",                         // control character
      "/v1/watch?key=" + std::string(5000, 'k'),  // over max_key_bytes
      "/v1/watch?key=a&start=later",
      "/v1/watch?key=a&values=maybe",
      "/v1/watch?key=a&cursor=not-a-cursor",
      "/v1/watch?key=a&cursor=",
      "/v1/watch?key=a&key=b",
  };
  for (const std::string& target : bad) {
    CAPTURE(target);
    require_error(fixture.watcher()->open(target), 400, "bad_request");
  }
  require_error(fixture.watcher()->open("/v1/watch?key=a", {{"Last-Event-ID", "AAAA"}}), 400,
                "bad_request");
  // A well-formed cursor naming a shard this node does not serve.
  kvstore::WatchCursor foreign;
  foreign.set(ShardId{9}, 1);
  require_error(fixture.watcher()->open("/v1/watch?key=a&cursor=" + foreign.encode()), 400,
                "bad_request");
  TestClient plain = fixture.client();
  REQUIRE(plain.request(boost::beast::http::verb::post, "/v1/watch?key=a").result_int() == 405);
  // Refused requests leave no subscription behind.
  wait_until([&] { return fixture.backend.watch_hub().stats().watchers == 0; });
}

TEST_CASE("watch sends keepalive comments when idle, carrying a recent cursor") {
  WatchLimits limits = watch_test_limits();
  limits.keepalive_ms = 20;
  WatchFixture fixture(limits);
  auto stream = fixture.open("/v1/watch?key=quiet");
  REQUIRE(stream->read_blocks(2));
  // The first keepalive carries the cursor of the (empty) shard; the next adds nothing new.
  REQUIRE(stream->blocks()[0].raw == ": keepalive\nid: " + cursor_at(0));
  REQUIRE(stream->blocks()[1].raw == ": keepalive");
  // Writes to other keys move the frontier: the quiet key's cursor follows it.
  const Version other = fixture.put("busy", "v");
  const std::size_t seen = stream->blocks().size();
  wait_until([&] {
    stream->read_blocks(stream->blocks().size() + 1);
    return stream->last_id() == cursor_at(other);
  });
  REQUIRE(stream->events().empty());
  REQUIRE(stream->blocks().size() > seen);
  // An event, then keepalives without an id (the cursor has not moved since).
  const Version mine = fixture.put("quiet", "v");
  REQUIRE(stream->read_events(1));
  REQUIRE(stream->events()[0].id == cursor_at(mine));
  const std::size_t after = stream->blocks().size();
  REQUIRE(stream->read_blocks(after + 2));
  REQUIRE(stream->blocks()[after].raw == ": keepalive");
  REQUIRE(stream->blocks()[after + 1].raw == ": keepalive");
}

TEST_CASE("a stalled watcher is dropped with a resumable cursor while writers go on") {
  WatchLimits limits = watch_test_limits();
  limits.buffer_events = 4;
  WatchFixture fixture(limits);
  // A small receive window: the server's writes stall after a few hundred KiB.
  auto slow = fixture.watcher(4096);
  REQUIRE(slow->open("/v1/watch?prefix=big/")->result_int() == 200);
  const std::string value(200 * 1024, 'v');
  std::vector<Version> written;
  // Writers are never held up by the stalled stream: every write is answered.
  for (int i = 0; i < 2000 && fixture.backend.watch_hub().stats().dropped_slow == 0; ++i) {
    written.push_back(fixture.put("big/" + std::to_string(i), value));
  }
  REQUIRE(fixture.backend.watch_hub().stats().dropped_slow == 1);
  for (int i = 0; i < 3; ++i) {
    written.push_back(fixture.put("big/after" + std::to_string(i), value));
  }
  // The client catches up: the stream ends cleanly after the last event the server sent.
  REQUIRE(slow->read_to_end());
  const std::vector<SseBlock> first = slow->events();
  REQUIRE(first.size() < written.size());
  REQUIRE(slow->last_id() == first.back().id);
  // Resuming from its last id yields exactly the rest.
  auto resumed = fixture.open("/v1/watch?prefix=big/&cursor=" + slow->last_id());
  REQUIRE(resumed->read_events(written.size() - first.size()));
  std::vector<Version> all = versions_of(first);
  for (Version version : versions_of(resumed->events())) all.push_back(version);
  REQUIRE(all == written);
  REQUIRE(fixture.metrics.render().find(
              "squall_watch_streams_ended_total{reason=\"too_slow\"} 1") != std::string::npos);
}

TEST_CASE("a watcher that reads nothing at all is cut off, its memory bounded") {
  WatchLimits limits = watch_test_limits();
  limits.buffer_events = 4;
  HttpServerOptions options = test_options();
  options.read_timeout_ms = 200;  // the deadline of each stream write
  WatchFixture fixture(limits, {}, {}, options);
  auto stalled = fixture.watcher(4096);
  REQUIRE(stalled->open("/v1/watch?prefix=")->result_int() == 200);
  const std::string value(200 * 1024, 'v');
  for (int i = 0; i < 2000 && fixture.backend.watch_hub().stats().dropped_slow == 0; ++i) {
    fixture.put("k" + std::to_string(i), value);
  }
  REQUIRE(fixture.backend.watch_hub().stats().dropped_slow == 1);
  REQUIRE(fixture.backend.watch_hub().stats().watchers == 0);
  // The stalled write times out and the connection goes (every writer's connection too).
  wait_until([&] { return fixture.server->open_connections() == 0; });
  REQUIRE(fixture.metrics.render().find("squall_watch_streams_open 0\n") != std::string::npos);
}

TEST_CASE("watch streams over the limit get 503, and a disconnect frees the watcher") {
  WatchLimits limits = watch_test_limits();
  limits.max_watchers = 2;
  WatchFixture fixture(limits);
  auto one = fixture.open("/v1/watch?key=a");
  auto two = fixture.open("/v1/watch?prefix=b");
  auto refused = fixture.watcher()->open("/v1/watch?key=c");
  require_error(refused, 503, "unavailable");
  REQUIRE(header_of(*refused, "Retry-After") == "7");
  REQUIRE(fixture.backend.watch_hub().stats().watchers == 2);
  one->close();
  wait_until([&] { return fixture.backend.watch_hub().stats().watchers == 1; });
  wait_until([&] {
    return fixture.metrics.render().find("squall_watch_streams_open 1\n") != std::string::npos;
  });
  auto three = fixture.open("/v1/watch?key=c");
  fixture.put("c", "v");
  REQUIRE(three->read_events(1));
  REQUIRE(fixture.backend.watch_hub().stats().watchers == 2);
}

TEST_CASE("server stop ends watch streams promptly and releases their watchers") {
  WatchFixture fixture;
  auto one = fixture.open("/v1/watch?key=a");
  auto two = fixture.open("/v1/watch?prefix=");
  fixture.put("a", "v");
  REQUIRE(one->read_events(1));
  REQUIRE(fixture.backend.watch_hub().stats().watchers == 2);
  fixture.server->stop();
  REQUIRE(fixture.backend.watch_hub().stats().watchers == 0);
  REQUIRE(one->read_to_end());
  REQUIRE(two->read_to_end());
  REQUIRE(two->events().size() == 1);
  REQUIRE(one->raw().ends_with("0\r\n\r\n"));
}

TEST_CASE("watch without a watch backend answers 503") {
  SingleNodeTestBackend backend;
  MetricsRegistry metrics;
  RestApi api(backend, metrics, test_limits());
  auto started = HttpServer::start(test_options(), api.handler(), &metrics);
  REQUIRE(started.is_ok());
  SseClient client(started.value()->port());
  require_error(client.open("/v1/watch?key=a"), 503, "unavailable");
  started.value()->stop();
}

TEST_CASE("RestService serves watch streams with the configuration's limits") {
  config::Config config;
  config.rest.listen = config::HostPort{"127.0.0.1", 0};
  config.watch.max_watchers = 1;
  SingleNodeTestBackend backend;
  MetricsRegistry metrics;
  auto started = RestService::start(config, backend, metrics, 1, &backend.watch_backend());
  REQUIRE(started.is_ok());
  auto service = std::move(started.value());
  SseClient stream(service->port());
  REQUIRE(stream.open("/v1/watch?key=k")->result_int() == 200);
  SseClient second(service->port());
  require_error(second.open("/v1/watch?key=k"), 503, "unavailable");
  TestClient writer(service->port());
  REQUIRE(writer.put("/v1/kv/k", "v").result_int() == 201);
  REQUIRE(stream.read_events(1));
  service->stop();
  REQUIRE(stream.read_to_end());
}

}  // namespace squall::server::testing
