// squalld end to end over layouts where no node serves every shard: lists merged from
// per-shard pages of other nodes, watch streams that take shards from other nodes, and
// watchers resuming across kill -9 and restarts (docs/consistency.md, "Forwarding").
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
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

std::optional<HttpAnswer> get(std::uint16_t port, const std::string& target) {
  return http_call(port, http::verb::get, target);
}

std::optional<HttpAnswer> put(std::uint16_t port, const std::string& key,
                              const std::string& value) {
  return http_call(port, http::verb::put, "/v1/kv/" + key, value);
}

void require_started(DaemonCluster& cluster) {
  const bool started = cluster.start_all(seconds(60));
  if (!started) {
    for (std::size_t i = 0; i < cluster.size(); ++i) UNSCOPED_INFO(cluster.log_tail(i));
  }
  REQUIRE(started);
}

// Node ids (1-based) serving each shard, from /v1/cluster.
std::vector<std::set<std::size_t>> shard_members(const DaemonCluster& cluster) {
  auto info = json_of(get(cluster.rest_port(0), "/v1/cluster"));
  std::vector<std::set<std::size_t>> out;
  for (const auto& shard : info["shards"]) {
    std::set<std::size_t> members;
    for (const auto& id : shard["members"]) members.insert(id.get<std::size_t>());
    out.push_back(std::move(members));
  }
  return out;
}

// Every key under `prefix`, read at `port` in pages of `limit`; each page's keys ascend and
// follow the previous page's.
std::vector<std::string> list_all(std::uint16_t port, const std::string& prefix,
                                  std::size_t limit, const std::string& extra = {}) {
  std::vector<std::string> keys;
  std::optional<std::string> after;
  for (int pages = 0; pages < 1000; ++pages) {
    std::string target = fmt::format("/v1/kv?prefix={}&limit={}{}", prefix, limit, extra);
    if (after) target += "&start_after=" + *after;
    auto answer = get(port, target);
    INFO(target);
    REQUIRE(status_of(answer) == 200);
    auto body = json_of(answer);
    REQUIRE(body["items"].size() <= limit);
    for (const auto& item : body["items"]) {
      const std::string key = item["key"];
      if (!keys.empty()) REQUIRE(keys.back() < key);
      keys.push_back(key);
    }
    if (body["next"].is_null()) return keys;
    after = body["next"].get<std::string>();
  }
  FAIL("the list did not end");
  return keys;
}

// Keeps 3 shards x 2 replicas within the default pinned-memory budget.
std::vector<std::string> small_values() {
  return {"limits:", "  max_value_bytes: 1048576", "multicast:", "  max_payload_bytes: 2097152"};
}

bool some_node_serves_all(const DaemonCluster& cluster) {
  const auto members = shard_members(cluster);
  for (std::size_t node = 1; node <= cluster.size(); ++node) {
    std::size_t served = 0;
    for (const auto& shard : members) served += shard.count(node);
    if (served == members.size()) return true;
  }
  return false;
}

// The first view has node 1 serve every shard and joiners stay spares (docs/core.md): kill -9
// and restart nodes in rank order until the assignment leaves no node serving every shard
// (survivors keep their shards, spares replace the dead, the restarted join as spares).
void spread_shards(DaemonCluster& cluster) {
  const std::size_t nodes = cluster.size();
  for (std::size_t victim = 0; victim < nodes && some_node_serves_all(cluster); ++victim) {
    const std::size_t witness = (victim + 1) % nodes;
    cluster.kill9(victim);
    REQUIRE(cluster.wait_view_size(witness, nodes - 1, seconds(60)));
    cluster.start(victim);
    REQUIRE(cluster.wait_view_size(witness, nodes, seconds(60)));
  }
  REQUIRE_FALSE(some_node_serves_all(cluster));
}

void check_lists_on_every_node(std::size_t nodes, std::uint32_t replicas) {
  DaemonCluster cluster({nodes, 3, replicas, small_values(), {}});
  require_started(cluster);
  spread_shards(cluster);
  const auto members = shard_members(cluster);
  REQUIRE(members.size() == 3);
  std::vector<std::string> expected;
  std::set<std::uint32_t> shards;
  for (int k = 0; k < 40; ++k) {
    const std::string key = fmt::format("list/{:03}", k);
    auto written = put(cluster.rest_port(static_cast<std::size_t>(k) % nodes), key, "v");
    REQUIRE(status_of(written) == 201);
    shards.insert(json_of(written)["shard"].get<std::uint32_t>());
    expected.push_back(key);
    // Linearizable: acknowledged at one node, listed at the next.
    const std::size_t reader = static_cast<std::size_t>(k + 1) % nodes;
    auto listed = list_all(cluster.rest_port(reader), "list/", 100);
    REQUIRE(listed.size() == expected.size());
  }
  REQUIRE(shards.size() == 3);
  REQUIRE(status_of(put(cluster.rest_port(0), "other", "x")) == 201);
  for (std::size_t i = 0; i < nodes; ++i) {
    INFO("node " << i + 1);
    for (std::size_t limit : {1, 3, 7, 40, 100}) {
      CHECK(list_all(cluster.rest_port(i), "list/", limit) == expected);
    }
    CHECK(list_all(cluster.rest_port(i), "list/", 6, "&consistency=stable").size() <=
          expected.size());
    auto page = json_of(get(cluster.rest_port(i), "/v1/kv?prefix=list/&limit=2&values=true"));
    REQUIRE(page["items"].size() == 2);
    CHECK(page["items"][0]["key"] == "list/000");
    CHECK(page["items"][0]["value_base64"] == "dg==");
    CHECK(page["next"] == "list/001");
  }
  // A shard-restricted page at a node that does not serve that shard is refused with the
  // contract's 503 (the asking node then tries another member).
  for (std::size_t shard = 0; shard < 3; ++shard) {
    for (std::size_t node = 1; node <= nodes; ++node) {
      if (members[shard].count(node) != 0) continue;
      auto refused = get(cluster.rest_port(node - 1), fmt::format("/v1/kv?shard={}", shard));
      REQUIRE(status_of(refused) == 503);
      CHECK(json_of(refused)["error"] == "unavailable");
      CHECK(refused->count("Retry-After") == 1);
    }
  }
  CHECK(status_of(get(cluster.rest_port(0), "/v1/kv?shard=3")) == 400);
  CHECK(cluster.assertion_failures().empty());
}

struct SeenEvent {
  std::string key;
  std::uint32_t shard = 0;
  std::uint64_t version = 0;
};

std::vector<SeenEvent> seen_events(const server::testing::SseClient& client) {
  std::vector<SeenEvent> out;
  for (const auto& block : client.events()) {
    auto data = nlohmann::json::parse(block.data);
    out.push_back({data["key"].get<std::string>(), data["shard"].get<std::uint32_t>(),
                   data["version"].get<std::uint64_t>()});
  }
  return out;
}

}  // namespace

TEST_CASE("squalld: lists merge every shard on every node, 3 nodes, 3 shards x 1 replica") {
  check_lists_on_every_node(3, 1);
}

TEST_CASE("squalld: lists merge every shard on every node, 5 nodes, 3 shards x 2 replicas") {
  check_lists_on_every_node(5, 2);
}

// A watcher at a node that serves no shard (every shard from other nodes), a writer at
// another; kill -9 of the watcher's node mid-stream; the watcher resumes with its last id at
// a third node (one shard local there, the others forwarded). Every acknowledged write appears
// exactly once, in version order per shard.
TEST_CASE("squalld: a watch resumes at another node after kill -9 of the node serving it") {
  DaemonCluster cluster({3, 3, 1, {}, {}});
  require_started(cluster);
  spread_shards(cluster);
  const auto members = shard_members(cluster);
  std::size_t spare = 3, other = 3, writer_node = 3;
  for (std::size_t node = 1; node <= 3; ++node) {
    std::size_t served = 0;
    for (const auto& shard : members) served += shard.count(node);
    if (served == 0) spare = node - 1;
  }
  REQUIRE(spare < 3);
  writer_node = (spare + 1) % 3;
  other = (spare + 2) % 3;

  server::testing::SseClient watcher(cluster.rest_port(spare));
  auto opened = watcher.open("/v1/watch?prefix=seq/");
  REQUIRE(opened.has_value());
  REQUIRE(opened->result_int() == 200);
  constexpr int kWrites = 60;
  std::set<std::string> acknowledged;
  std::thread writer([&] {
    for (int n = 0; n < kWrites; ++n) {
      const std::string key = fmt::format("seq/{:03}", n);
      if (status_of(put(cluster.rest_port(writer_node), key, std::to_string(n))) == 201) {
        acknowledged.insert(key);
      }
    }
  });
  const bool some = watcher.read_events(15);
  cluster.kill9(spare);
  writer.join();
  REQUIRE(some);
  REQUIRE(acknowledged.size() == kWrites);
  std::vector<SeenEvent> seen = seen_events(watcher);
  const std::string resume_id = watcher.last_id();
  REQUIRE_FALSE(resume_id.empty());

  server::testing::SseClient resumed(cluster.rest_port(other));
  auto again = resumed.open("/v1/watch?prefix=seq/", {{"Last-Event-ID", resume_id}});
  REQUIRE(again.has_value());
  REQUIRE(again->result_int() == 200);
  const std::size_t left = kWrites - seen.size();
  REQUIRE(resumed.read_events(left));
  for (const SeenEvent& event : seen_events(resumed)) seen.push_back(event);
  REQUIRE(seen.size() == static_cast<std::size_t>(kWrites));
  std::set<std::string> keys;
  std::map<std::uint32_t, std::uint64_t> last_version;
  for (const SeenEvent& event : seen) {
    CHECK(keys.insert(event.key).second);  // no duplicate
    CHECK(event.version > last_version[event.shard]);  // version order per shard
    last_version[event.shard] = event.version;
  }
  CHECK(keys == acknowledged);  // no gap
  CHECK(cluster.assertion_failures().empty());
}

}  // namespace squall::test
