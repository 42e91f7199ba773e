// squallctl watch against a scripted SSE server (the daemon's watch route is a separate
// component): event output, resume from the last id across disconnects, errors.
#include <mutex>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "server/http_server.hpp"
#include "test/server/server_fixture.hpp"
#include "test/tools/ctl_test_util.hpp"
#include "tools/squallctl/format.hpp"

namespace squall::ctl::testing {
namespace {
using nlohmann::json;
namespace http = boost::beast::http;

// Serves GET /v1/watch from a fixed list of events 1..kEvents (cursor = the event's number):
// each answer carries at most kPerConnection events after the requested start and then
// ends, so a client must resume to see more. Cursor "gone" is answered 410.
class ScriptedWatchServer {
 public:
  static constexpr int kEvents = 9;
  static constexpr int kPerConnection = 2;

  ScriptedWatchServer() {
    auto started = server::HttpServer::start(
        server::testing::test_options(),
        [this](server::HttpRequest request, server::HttpResponder respond) {
          respond(answer(std::string(request.target())));
        },
        nullptr);
    REQUIRE(started.is_ok());
    server_ = std::move(started.value());
  }
  ~ScriptedWatchServer() { server_->stop(); }

  std::uint16_t port() const { return server_->port(); }
  // The next `count` requests are answered 503.
  void refuse(int count) {
    std::lock_guard lock(mutex_);
    refusals_ = count;
  }
  std::vector<std::string> targets() const {
    std::lock_guard lock(mutex_);
    return targets_;
  }

 private:
  static std::string event(int number) {
    json data{{"key", fmt::format("k{}", number)}, {"version", number},
              {"timestamp_us", 1767225600000000ULL + static_cast<std::uint64_t>(number)},
              {"shard", 0}};
    std::string type = "put";
    if (number == 4) data["value_base64"] = base64_encode(std::string("\x00\x01", 2));
    if (number == 5) type = "delete";
    if (number != 4 && number != 5) {
      data["value_base64"] = base64_encode(fmt::format("value-{}", number));
    }
    // Keepalive comments (one carrying the previous id, as the server's do) and CRLF line
    // ends must not disturb the parser.
    return fmt::format(": keepalive\r\n\r\n: keepalive\nid: {}\n\nid: {}\r\nevent: {}\n"
                       "data: {}\n\n",
                       number - 1, number, type, data.dump());
  }

  server::HttpResponse answer(const std::string& target) {
    {
      std::lock_guard lock(mutex_);
      targets_.push_back(target);
      if (refusals_ > 0) {
        --refusals_;
        server::HttpResponse busy{http::status::service_unavailable, 11};
        busy.set(http::field::content_type, "application/json");
        busy.set(http::field::retry_after, "1");
        busy.body() = R"({"error":"unavailable","message":"not serving watches yet"})";
        return busy;
      }
    }
    int start = 0;
    const std::size_t cursor = target.find("cursor=");
    if (cursor != std::string::npos) {
      const std::string value = target.substr(cursor + 7, target.find('&', cursor) - cursor - 7);
      if (value == "gone") {
        server::HttpResponse gone{http::status::gone, 11};
        gone.set(http::field::content_type, "application/json");
        gone.body() = R"({"error":"gone","message":"cursor older than retained history"})";
        return gone;
      }
      start = std::stoi(value);
    }
    server::HttpResponse response{http::status::ok, 11};
    response.set(http::field::content_type, "text/event-stream");
    for (int number = start + 1; number <= std::min(start + kPerConnection, kEvents); ++number) {
      response.body() += event(number);
    }
    return response;
  }

  mutable std::mutex mutex_;
  std::vector<std::string> targets_;  // GUARDED_BY(mutex_)
  int refusals_ = 0;                  // GUARDED_BY(mutex_)
  std::unique_ptr<server::HttpServer> server_;
};

}  // namespace

TEST_CASE("squallctl watch resumes from the last event id: no gap, no duplicate (--json)") {
  ScriptedWatchServer server;
  const CtlRun watch = ctl({"--json", "--endpoints", endpoint(server.port()), "watch",
                            "--prefix", "k", "--start", "oldest", "--count", "7"});
  CAPTURE(watch.err);
  REQUIRE(watch.code == kExitOk);
  const auto events = json_lines(watch.out);
  REQUIRE(events.size() == 7);
  for (int i = 0; i < 7; ++i) {
    REQUIRE(events[i]["id"] == std::to_string(i + 1));
    REQUIRE(events[i]["key"] == fmt::format("k{}", i + 1));
  }
  REQUIRE(events[4]["event"] == "delete");
  REQUIRE(events[0]["event"] == "put");

  const auto targets = server.targets();
  REQUIRE(targets.size() == 4);
  REQUIRE(targets[0] == "/v1/watch?prefix=k&start=oldest");
  REQUIRE(targets[1] == "/v1/watch?prefix=k&cursor=2");
  REQUIRE(targets[2] == "/v1/watch?prefix=k&cursor=4");
  REQUIRE(targets[3] == "/v1/watch?prefix=k&cursor=6");
}

TEST_CASE("squallctl watch prints events for people and fails over (with --cursor and --no-values)") {
  ScriptedWatchServer server;
  const std::string endpoints = endpoint(dead_port()) + "," + endpoint(server.port());
  const CtlRun watch = ctl({"--endpoints", endpoints, "watch", "k", "--cursor", "2",
                            "--count", "3", "--no-values"});
  CAPTURE(watch.err);
  REQUIRE(watch.code == kExitOk);
  REQUIRE(watch.out == "put k3 version 3 at 2026-01-01T00:00:00.000003Z: value-3\n"
                       "put k4 version 4 at 2026-01-01T00:00:00.000004Z: (2 bytes)\n"
                       "delete k5 version 5 at 2026-01-01T00:00:00.000005Z\n");
  REQUIRE(server.targets().front() == "/v1/watch?key=k&cursor=2&values=false");
}

TEST_CASE("squallctl watch: a cursor older than history is exit 1 and a dead server exit 4") {
  ScriptedWatchServer server;
  const CtlRun gone = ctl({"--endpoints", endpoint(server.port()), "watch", "k", "--cursor",
                           "gone"});
  REQUIRE(gone.code == kExitNotFound);
  REQUIRE(gone.err.find("gone") != std::string::npos);

  const CtlRun dead = ctl({"--endpoints", endpoint(dead_port()), "watch", "k",
                           "--retry-timeout-s", "1"});
  REQUIRE(dead.code == kExitUnavailable);
  REQUIRE(dead.err.find("giving up") != std::string::npos);
  REQUIRE(ctl({"watch", "--prefix", "p", "k"}).code == kExitUsage);
  REQUIRE(ctl({"watch", "k", "--start", "later"}).code == kExitUsage);
  REQUIRE(ctl({"watch", "k", "--start", "now", "--cursor", "3"}).code == kExitUsage);
}

}  // namespace squall::ctl::testing

namespace squall::ctl::testing {

TEST_CASE("squallctl watch retries a 503 and reports it once") {
  ScriptedWatchServer server;
  server.refuse(3);
  const CtlRun watch = ctl({"--endpoints", endpoint(server.port()), "watch", "k", "--start",
                            "oldest", "--count", "1"});
  CAPTURE(watch.err);
  REQUIRE(watch.code == kExitOk);
  REQUIRE(watch.out.rfind("put k1 version 1", 0) == 0);
  const std::string reason = "503 unavailable: not serving watches yet; retrying";
  const std::size_t first = watch.err.find(reason);
  REQUIRE(first != std::string::npos);
  REQUIRE(watch.err.find(reason, first + 1) == std::string::npos);
  REQUIRE(server.targets().size() == 4);
}

}  // namespace squall::ctl::testing
