// squalld end to end: real daemons on loopback (libfabric tcp), driven through REST.
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "test/integration/daemon_cluster.hpp"
#include "test/server/sse_client.hpp"

namespace squall::test {
namespace {

namespace http = boost::beast::http;
using std::chrono::milliseconds;
using std::chrono::seconds;

nlohmann::json json_of(const std::optional<HttpAnswer>& answer) {
  REQUIRE(answer.has_value());
  return nlohmann::json::parse(answer->body(), nullptr, false);
}

struct Client {
  std::uint16_t port;
  std::optional<HttpAnswer> put(const std::string& key, const std::string& value,
                                const HttpHeaders& headers = {}) const {
    return http_call(port, http::verb::put, "/v1/kv/" + key, value, headers);
  }
  std::optional<HttpAnswer> get(const std::string& target) const {
    return http_call(port, http::verb::get, target);
  }
  std::optional<HttpAnswer> del(const std::string& key, const HttpHeaders& headers = {}) const {
    return http_call(port, http::verb::delete_, "/v1/kv/" + key, {}, headers);
  }
};

std::string if_match(std::uint64_t version) { return fmt::format("\"{}\"", version); }

void require_started(DaemonCluster& cluster) {
  const bool started = cluster.start_all(seconds(60));
  if (!started) {
    for (std::size_t i = 0; i < cluster.size(); ++i) UNSCOPED_INFO(cluster.log_tail(i));
  }
  REQUIRE(started);
}

// A unix datagram socket standing in for the service manager's $NOTIFY_SOCKET.
struct NotifySocket {
  explicit NotifySocket(const std::string& path_in) : path(path_in) {
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof(address.sun_path));
    path.copy(address.sun_path, path.size());
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  }
  ~NotifySocket() { close(fd); }
  std::string receive(milliseconds timeout) const {
    pollfd entry{fd, POLLIN, 0};
    if (::poll(&entry, 1, static_cast<int>(timeout.count())) != 1) return {};
    char buffer[256];
    const ssize_t got = recv(fd, buffer, sizeof(buffer), 0);
    return got > 0 ? std::string(buffer, static_cast<std::size_t>(got)) : std::string();
  }
  std::string path;
  int fd = -1;
};

}  // namespace

TEST_CASE("squalld --check-config prints ok or the positioned error") {
  DaemonCluster cluster({1, 1, 1, {}, {}});
  const std::string out = cluster.directory() + "/check.txt";
  const std::string good = fmt::format("{} --check-config {} > {} 2>/dev/null", squalld_path(),
                                       cluster.config_path(0), out);
  int code = std::system(good.c_str());
  CHECK(WEXITSTATUS(code) == 0);
  std::ifstream good_output(out);
  std::string first;
  std::getline(good_output, first);
  CHECK(first == "ok");

  const std::string bad_path = cluster.directory() + "/bad.yaml";
  std::ofstream(bad_path) << "node:\n  id: 1\n  data_dir: /tmp/x\ntimeouts:\n"
                             "  heartbeat_ms: 5000\n  failure_timeout_ms: 1000\n";
  const std::string bad = fmt::format("{} --check-config {} > {} 2>&1", squalld_path(),
                                      bad_path, out);
  code = std::system(bad.c_str());
  CHECK(WEXITSTATUS(code) == 2);
  std::ifstream bad_output(out);
  std::string error;
  std::getline(bad_output, error);
  CHECK(error.find("bad.yaml:") != std::string::npos);
  CHECK(error.find("failure_timeout_ms") != std::string::npos);
}

TEST_CASE("squalld: one node serves the REST contract and restarts with its data") {
  DaemonCluster cluster({1, 1, 1, {"limits:", "  max_value_bytes: 4096"},
                         {"pools:", "  - prefix: \"short/\"", "    retention:",
                          "      max_versions: 1"}});
  NotifySocket notify(cluster.directory() + "/notify.sock");
  cluster.start(0, {"NOTIFY_SOCKET=" + notify.path});
  REQUIRE(cluster.wait_ready(0, seconds(60)));
  CHECK(notify.receive(seconds(10)) == "READY=1");
  const Client node{cluster.rest_port(0)};

  auto first = node.put("users/42", "one");
  REQUIRE(status_of(first) == 201);
  const auto v1 = json_of(first)["version"].get<std::uint64_t>();
  const auto t1 = json_of(first)["timestamp_us"].get<std::uint64_t>();
  CHECK(std::string((*first)[http::field::etag]) == if_match(v1));
  auto second = node.put("users/42", "two");
  REQUIRE(status_of(second) == 200);
  const auto v2 = json_of(second)["version"].get<std::uint64_t>();
  CHECK(v2 > v1);

  auto latest = node.get("/v1/kv/users/42");
  REQUIRE(status_of(latest) == 200);
  CHECK(latest->body() == "two");
  CHECK(std::string((*latest)["Squall-Version"]) == std::to_string(v2));
  CHECK(node.get(fmt::format("/v1/kv/users/42?version={}", v1))->body() == "one");
  CHECK(node.get(fmt::format("/v1/kv/users/42?at={}", t1))->body() == "one");
  CHECK(node.get("/v1/kv/users/42?consistency=stable")->body() == "two");
  CHECK(status_of(node.get("/v1/kv/nobody")) == 404);

  SECTION("conditional writes and deletes") {
    auto stale = node.put("users/42", "x", {{"If-Match", if_match(v1)}});
    REQUIRE(status_of(stale) == 412);
    CHECK(json_of(stale)["current_version"].get<std::uint64_t>() == v2);
    CHECK(status_of(node.put("users/42", "x", {{"If-None-Match", "*"}})) == 412);
    CHECK(status_of(node.put("users/42", "three", {{"If-Match", if_match(v2)}})) == 200);
    CHECK(status_of(node.put("fresh", "x", {{"If-None-Match", "*"}})) == 201);
    CHECK(status_of(node.del("users/42")) == 200);
    CHECK(status_of(node.get("/v1/kv/users/42")) == 404);
    CHECK(status_of(node.del("users/42")) == 404);
    auto gone = node.put("users/42", "x", {{"If-Match", "*"}});
    REQUIRE(status_of(gone) == 412);
    CHECK(json_of(gone)["current_version"].is_null());
    auto history = json_of(node.get("/v1/history/users/42"));
    REQUIRE(history["versions"].size() == 4);
    CHECK(history["versions"][0]["op"] == "delete");
    CHECK(history["versions"][3]["version"].get<std::uint64_t>() == v1);
    CHECK(history["next"].is_null());
    auto page = json_of(node.get("/v1/history/users/42?limit=3"));
    CHECK(page["versions"].size() == 3);
    CHECK(page["next"] == page["versions"][2]["version"]);
  }

  SECTION("lists paginate in key order") {
    for (int i = 0; i < 5; ++i) REQUIRE(status_of(node.put(fmt::format("list/{}", i), "v")) == 201);
    std::vector<std::string> keys;
    std::string after;
    for (int round = 0; round < 10; ++round) {
      auto page = json_of(node.get("/v1/kv?prefix=list/&limit=2&start_after=" + after));
      for (const auto& item : page["items"]) keys.push_back(item["key"].get<std::string>());
      if (page["next"].is_null()) break;
      after = page["next"].get<std::string>();
    }
    CHECK(keys == std::vector<std::string>{"list/0", "list/1", "list/2", "list/3", "list/4"});
  }

  SECTION("malformed and oversized requests") {
    CHECK(status_of(node.get("/v1/kv/")) == 400);
    CHECK(status_of(http_call(cluster.rest_port(0), http::verb::post, "/v1/kv/a")) == 405);
    CHECK(status_of(node.get("/v1/kv?limit=20000")) == 400);
    CHECK(status_of(node.put("big", std::string(5000, 'x'))) == 413);
    CHECK(status_of(node.get("/v1/history/never")) == 404);
    auto kept = node.put("short/k", "a");
    REQUIRE(status_of(kept) == 201);
    // Only durable versions count toward the limit: once "b" is acknowledged (durable),
    // writing "c" discards "a".
    REQUIRE(status_of(node.put("short/k", "b")) == 200);
    REQUIRE(status_of(node.put("short/k", "c")) == 200);
    const auto old_version = json_of(kept)["version"].get<std::uint64_t>();
    CHECK(status_of(node.get(fmt::format("/v1/kv/short/k?version={}", old_version))) == 410);
    CHECK(status_of(node.get("/v1/kv/users/42?version=abc")) == 400);
    CHECK(status_of(node.get("/healthz")) == 200);
    auto cluster_info = json_of(node.get("/v1/cluster"));
    CHECK(cluster_info["view"]["members"].size() == 1);
    auto metrics = node.get("/metrics");
    REQUIRE(status_of(metrics) == 200);
    CHECK(metrics->body().find("squall_view_id") != std::string::npos);
  }

  CHECK(cluster.terminate(0) == 0);
  cluster.start(0);
  REQUIRE(cluster.wait_ready(0, seconds(60)));
  auto again = node.get(fmt::format("/v1/kv/users/42?version={}", v2));
  REQUIRE(status_of(again) == 200);
  CHECK(again->body() == "two");
  CHECK(cluster.assertion_failures().empty());
}

TEST_CASE("squalld: SIGHUP reopens the log file") {
  DaemonCluster cluster({1, 1, 1, {}, {}});
  const std::string log = cluster.directory() + "/squalld.log";
  std::ofstream(cluster.config_path(0), std::ios::app) << "  file: \"" << log << "\"\n";
  cluster.start(0);
  REQUIRE(cluster.wait_ready(0, seconds(60)));
  std::filesystem::rename(log, log + ".1");
  cluster.signal(0, SIGHUP);
  // The reopen is logged to the new file; a write after it keeps the daemon busy meanwhile.
  REQUIRE(status_of(Client{cluster.rest_port(0)}.put("k", "v")) == 201);
  CHECK(cluster.terminate(0) == 0);
  auto text = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  CHECK(text(log + ".1").find("started") != std::string::npos);
  const std::string reopened = text(log);
  CHECK(reopened.find("log reopened") != std::string::npos);
  CHECK(reopened.find("node stopped") != std::string::npos);
}

TEST_CASE("squalld: three replicas, linearizable reads on every node, one CAS winner") {
  DaemonCluster cluster({3, 1, 3, {}, {}});
  require_started(cluster);
  for (int round = 0; round < 5; ++round) {
    const Client writer{cluster.rest_port(round % 3)};
    const std::string value = fmt::format("value-{}", round);
    REQUIRE(status_of(writer.put("shared", value)) / 100 == 2);
    for (std::size_t i = 0; i < 3; ++i) {
      auto read = Client{cluster.rest_port(i)}.get("/v1/kv/shared");
      REQUIRE(status_of(read) == 200);
      CHECK(read->body() == value);
    }
  }
  auto current = Client{cluster.rest_port(0)}.get("/v1/kv/shared");
  const std::string expected = std::string((*current)["Squall-Version"]);
  std::atomic<int> won{0};
  std::atomic<int> refused{0};
  std::atomic<int> other{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 16; ++c) {
    clients.emplace_back([&, c] {
      const Client client{cluster.rest_port(static_cast<std::size_t>(c) % 3)};
      const int status =
          status_of(client.put("shared", fmt::format("cas-{}", c), {{"If-Match",
                                                                      "\"" + expected + "\""}}));
      if (status == 200 || status == 201) {
        ++won;
      } else if (status == 412) {
        ++refused;
      } else {
        ++other;
      }
    });
  }
  for (auto& client : clients) client.join();
  CHECK(won.load() == 1);
  CHECK(refused.load() == 15);
  CHECK(other.load() == 0);

  // A graceful stop leaves the group; the others go on without it.
  CHECK(cluster.terminate(2) == 0);
  REQUIRE(cluster.wait_view_size(0, 2, seconds(60)));
  REQUIRE(status_of(Client{cluster.rest_port(1)}.put("after-leave", "v")) == 201);
  CHECK(Client{cluster.rest_port(0)}.get("/v1/kv/after-leave")->body() == "v");
  CHECK(cluster.assertion_failures().empty());
}

TEST_CASE("squalld: a node that does not serve the shard forwards to one that does") {
  DaemonCluster cluster({3, 1, 2, {}, {}});
  require_started(cluster);
  auto info = json_of(Client{cluster.rest_port(0)}.get("/v1/cluster"));
  std::vector<std::uint32_t> members = info["shards"][0]["members"];
  REQUIRE(members.size() == 2);
  std::size_t spare = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    if (std::find(members.begin(), members.end(), i + 1) == members.end()) spare = i;
  }
  const Client outside{cluster.rest_port(spare)};
  auto created = outside.put("far/key", "value");
  REQUIRE(status_of(created) == 201);
  const auto version = json_of(created)["version"].get<std::uint64_t>();
  auto read = outside.get("/v1/kv/far/key");
  REQUIRE(status_of(read) == 200);
  CHECK(read->body() == "value");
  CHECK(std::string((*read)["Squall-Version"]) == std::to_string(version));
  CHECK(outside.get(fmt::format("/v1/kv/far/key?version={}", version))->body() == "value");
  auto stale = outside.put("far/key", "x", {{"If-Match", if_match(version + 1)}});
  REQUIRE(status_of(stale) == 412);
  CHECK(json_of(stale)["current_version"].get<std::uint64_t>() == version);
  auto list = json_of(outside.get("/v1/kv?prefix=far/&values=true"));
  REQUIRE(list["items"].size() == 1);
  CHECK(list["items"][0]["value_base64"] == "dmFsdWU=");
  auto history = json_of(outside.get("/v1/history/far/key"));
  CHECK(history["versions"].size() == 1);
  CHECK(status_of(outside.del("far/key")) == 200);
  CHECK(status_of(outside.get("/v1/kv/far/key")) == 404);
  CHECK(status_of(outside.del("far/key")) == 404);
  auto metrics = outside.get("/metrics");
  CHECK(metrics->body().find("squall_forwarded_requests_total 0") == std::string::npos);
  CHECK(cluster.assertion_failures().empty());
}

TEST_CASE("squalld: three shards on three nodes route and forward every key") {
  DaemonCluster cluster({3, 3, 2,
                         {"limits:", "  max_value_bytes: 1048576", "multicast:",
                          "  max_payload_bytes: 2097152"},
                         {}});
  require_started(cluster);
  auto info = json_of(Client{cluster.rest_port(0)}.get("/v1/cluster"));
  REQUIRE(info["shards"].size() == 3);
  std::set<std::uint32_t> shards_seen;
  for (int k = 0; k < 24; ++k) {
    const Client writer{cluster.rest_port(static_cast<std::size_t>(k) % 3)};
    const std::string key = fmt::format("spread/{}", k);
    auto written = writer.put(key, std::to_string(k));
    REQUIRE(status_of(written) == 201);
    shards_seen.insert(json_of(written)["shard"].get<std::uint32_t>());
    for (std::size_t i = 0; i < 3; ++i) {
      auto read = Client{cluster.rest_port(i)}.get("/v1/kv/" + key);
      REQUIRE(status_of(read) == 200);
      CHECK(read->body() == std::to_string(k));
    }
  }
  CHECK(shards_seen.size() == 3);
  CHECK(cluster.assertion_failures().empty());
}

TEST_CASE("squalld: a node cut off from the majority serves no linearizable read or write") {
  DaemonCluster cluster({3, 1, 3, {}, {}});
  require_started(cluster);
  const Client lonely{cluster.rest_port(0)};
  REQUIRE(status_of(lonely.put("before", "v")) == 201);
  // Freeze the other two: node 1 is alone with a minority of its view.
  cluster.signal(1, SIGSTOP);
  cluster.signal(2, SIGSTOP);
  // The barrier (and the write) cannot become stable without them: 503 once the request
  // times out, or no answer at all once the node stops for lack of a majority.
  const int read = status_of(lonely.get("/v1/kv/before"));
  CHECK(read != 200);
  CHECK((read == 503 || read == 0));
  const int write = status_of(lonely.put("during", "v"));
  CHECK((write == 503 || write == 0));
  cluster.signal(1, SIGCONT);
  cluster.signal(2, SIGCONT);
  CHECK(cluster.assertion_failures().empty());
}

TEST_CASE("squalld: kill -9 and restart of each node under writes loses no acknowledged write") {
  DaemonCluster cluster({3, 1, 3, {}, {}});
  require_started(cluster);
  std::mutex mutex;
  std::map<std::string, std::string> acknowledged;
  std::atomic<bool> stop{false};
  std::atomic<int> attempts{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&, w] {
      for (int n = 0; !stop.load(); ++n) {
        const std::string key = fmt::format("w{}/{}", w, n);
        const std::string value = fmt::format("value {} of writer {}", n, w);
        const std::size_t node = static_cast<std::size_t>(w + n) % 3;
        ++attempts;
        auto answer = http_call(cluster.rest_port(node), http::verb::put, "/v1/kv/" + key,
                                value, {}, seconds(15));
        const int status = status_of(answer);
        if (status == 200 || status == 201) {
          std::lock_guard lock(mutex);
          acknowledged[key] = value;
        } else if (status == 0) {
          std::this_thread::sleep_for(milliseconds(20));  // the node is down
        }
      }
    });
  }
  auto acked = [&] {
    std::lock_guard lock(mutex);
    return acknowledged.size();
  };
  for (std::size_t victim = 0; victim < 3; ++victim) {
    const std::size_t before = acked();
    while (acked() < before + 20) std::this_thread::sleep_for(milliseconds(20));
    cluster.kill9(victim);
    const std::size_t witness = (victim + 1) % 3;
    INFO("killed node " << victim + 1);
    REQUIRE(cluster.wait_view_size(witness, 2, seconds(60)));
    const std::size_t during = acked();
    while (acked() < during + 10) std::this_thread::sleep_for(milliseconds(20));
    cluster.start(victim);
    const bool back = cluster.wait_view_size(witness, 3, seconds(60));
    if (!back) UNSCOPED_INFO(cluster.log_tail(victim));
    REQUIRE(back);
  }
  stop.store(true);
  for (auto& writer : writers) writer.join();
  INFO(acknowledged.size() << " acknowledged of " << attempts.load() << " attempts");
  REQUIRE(acknowledged.size() >= 90);
  std::size_t missing = 0;
  for (const auto& [key, value] : acknowledged) {
    for (std::size_t i = 0; i < 3; ++i) {
      auto read = Client{cluster.rest_port(i)}.get("/v1/kv/" + key);
      if (status_of(read) != 200 || read->body() != value) ++missing;
    }
  }
  CHECK(missing == 0);
  CHECK(cluster.assertion_failures().empty());
}

TEST_CASE("squalld: watch streams show durable writes in order and resume on another node") {
  DaemonCluster cluster({3, 1, 3, {}, {}});
  require_started(cluster);
  server::testing::SseClient watcher(cluster.rest_port(1));
  auto opened = watcher.open("/v1/watch?prefix=w/");
  REQUIRE(opened.has_value());
  REQUIRE(opened->result_int() == 200);
  const Client writer{cluster.rest_port(0)};
  REQUIRE(status_of(writer.put("w/a", "1")) == 201);
  REQUIRE(status_of(writer.put("w/b", "2")) == 201);
  REQUIRE(status_of(writer.del("w/a")) == 200);
  REQUIRE(status_of(writer.put("other", "x")) == 201);
  REQUIRE(watcher.read_events(3));
  const auto events = watcher.events();
  REQUIRE(events.size() == 3);
  CHECK(events[0].event == "put");
  CHECK(events[1].event == "put");
  CHECK(events[2].event == "delete");
  auto first = nlohmann::json::parse(events[0].data);
  CHECK(first["key"] == "w/a");
  CHECK(first["value_base64"] == "MQ==");
  CHECK(nlohmann::json::parse(events[1].data)["key"] == "w/b");

  // The cursor of the first event, resumed on another node, yields exactly the rest.
  server::testing::SseClient resumed(cluster.rest_port(2));
  auto again = resumed.open("/v1/watch?prefix=w/", {{"Last-Event-ID", events[0].id}});
  REQUIRE(again.has_value());
  REQUIRE(again->result_int() == 200);
  REQUIRE(resumed.read_events(2));
  const auto rest = resumed.events();
  REQUIRE(rest.size() == 2);
  CHECK(rest[0].id == events[1].id);
  CHECK(rest[1].id == events[2].id);
  CHECK(cluster.assertion_failures().empty());
}


// The bug this guards: a node that restarted installs the writes it missed by state transfer,
// past versions its watch hub never saw. A watch resumed there from a cursor taken before it
// went down must still get every acknowledged write after the cursor, once, in order — from
// the stores when the hub's window no longer has them.
TEST_CASE("squalld: a watch resumed at a node that caught up by state transfer misses nothing") {
  DaemonCluster cluster({3, 1, 3, {}, {}});
  require_started(cluster);
  const Client writer{cluster.rest_port(0)};
  constexpr int kBefore = 5;
  constexpr int kDown = 8;
  std::string cursor;
  {
    server::testing::SseClient watcher(cluster.rest_port(1));
    auto opened = watcher.open("/v1/watch?prefix=h/");
    REQUIRE(opened.has_value());
    REQUIRE(opened->result_int() == 200);
    for (int n = 0; n < kBefore; ++n) {
      REQUIRE(status_of(writer.put(fmt::format("h/{:02}", n), std::to_string(n))) == 201);
    }
    REQUIRE(watcher.read_events(kBefore));
    cursor = watcher.last_id();
  }
  REQUIRE_FALSE(cursor.empty());
  REQUIRE(cluster.terminate(1) == 0);
  REQUIRE(cluster.wait_view_size(0, 2, seconds(60)));
  std::vector<std::string> acknowledged;
  for (int n = kBefore; n < kBefore + kDown; ++n) {
    const std::string key = fmt::format("h/{:02}", n);
    REQUIRE(status_of(writer.put(key, std::to_string(n))) == 201);
    acknowledged.push_back(key);
  }
  cluster.start(1);
  const bool back = cluster.wait_view_size(0, 3, seconds(60));
  if (!back) UNSCOPED_INFO(cluster.log_tail(1));
  REQUIRE(back);
  const std::string live_key = fmt::format("h/{:02}", kBefore + kDown);

  // Resume at the restarted node like an EventSource: reconnect with the last id when the
  // stream ends (the node drops watchers when it installs state) or is not served yet.
  std::vector<std::string> keys;
  std::vector<std::uint64_t> versions;
  bool live_written = false;
  const std::size_t total = acknowledged.size() + 1;
  for (int attempt = 0; attempt < 40 && keys.size() < total; ++attempt) {
    server::testing::SseClient resumed(cluster.rest_port(1), 0, seconds(5));
    auto again = resumed.open("/v1/watch?prefix=h/", {{"Last-Event-ID", cursor}});
    REQUIRE(again.has_value());
    INFO(again->body());
    REQUIRE(again->result_int() != 410);  // the cursor must stay replayable: never "gone"
    if (again->result_int() != 200) {
      std::this_thread::sleep_for(milliseconds(250));
      continue;
    }
    std::size_t taken = 0;
    auto take = [&] {
      const auto events = resumed.events();
      for (; taken < events.size(); ++taken) {
        auto data = nlohmann::json::parse(events[taken].data);
        keys.push_back(data["key"].get<std::string>());
        versions.push_back(data["version"].get<std::uint64_t>());
      }
      if (!resumed.last_id().empty()) cursor = resumed.last_id();
    };
    if (keys.size() < acknowledged.size()) {
      resumed.read_events(acknowledged.size() - keys.size());
      take();
    }
    if (keys.size() >= acknowledged.size() && !live_written) {
      REQUIRE(status_of(writer.put(live_key, "live")) == 201);
      live_written = true;
    }
    if (live_written && keys.size() < total) {
      resumed.read_events(taken + total - keys.size());
      take();
    }
  }
  std::vector<std::string> expected = acknowledged;
  expected.push_back(live_key);
  CHECK(keys == expected);  // every write after the cursor, once, in order: no gap
  for (std::size_t i = 1; i < versions.size(); ++i) CHECK(versions[i] > versions[i - 1]);
  // The restarted node did install state and restart its hub's window of the shard.
  CHECK(cluster.log_tail(1, 1 << 20).find("after a state install") != std::string::npos);
  CHECK(cluster.assertion_failures().empty());
}

}  // namespace squall::test
