// squalld's security end to end, with real processes:
//  - a node with the wrong cluster secret tries to join a live 3-node cluster under write
//    load: it never enters the view, the cluster keeps serving, no acknowledged write is
//    lost and nothing else changes;
//  - a node with rest.tls and auth.tokens serves HTTPS with bearer tokens, and SIGHUP makes
//    new connections use a new certificate and rotated token files take effect, while the
//    node keeps running;
//  - a 3-shard cluster with rest.tls and auth.tokens forwards writes, reads, lists and
//    watches from nodes that serve no shard (over TLS, with the node token), and refuses a
//    request without a token before forwarding it.
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <boost/beast/http.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "test/integration/daemon_cluster.hpp"
#include "test/server/tls_util.hpp"

namespace squall::test {
namespace {

namespace http = boost::beast::http;
using std::chrono::milliseconds;
using std::chrono::seconds;
using server::testing::CertDir;
using server::testing::TlsClientOptions;
using server::testing::TlsTestClient;

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Inserts `lines` into the `cluster:` section of a harness config (it comes first).
void add_to_cluster_section(const std::string& path, const std::string& lines) {
  std::string text = read_file(path);
  const std::string head = "cluster:\n  name: e2e\n";
  REQUIRE(text.starts_with(head));
  text.insert(head.size(), lines);
  write_file(path, text);
}

// The member ids of node `port`'s view; empty when it did not answer.
std::vector<std::uint64_t> view_members(std::uint16_t port) {
  auto answer = http_call(port, http::verb::get, "/v1/cluster", {}, {}, seconds(5));
  std::vector<std::uint64_t> ids;
  if (status_of(answer) != 200) return ids;
  const auto body = nlohmann::json::parse(answer->body(), nullptr, false);
  if (body.is_discarded()) return ids;
  for (const auto& member : body["view"]["members"]) {
    ids.push_back(member["id"].get<std::uint64_t>());
  }
  return ids;
}

struct Acked {
  std::string key;
  std::string value;
};

// Inserts rest.tls (after the harness's `listen:` line) into node i's config.
void enable_tls(const DaemonCluster& cluster, std::size_t i, const std::string& tls_yaml) {
  std::string text = read_file(cluster.config_path(i));
  const std::string listen = fmt::format("  listen: \"127.0.0.1:{}\"\n", cluster.rest_port(i));
  const auto at = text.find(listen);
  REQUIRE(at != std::string::npos);
  text.insert(at + listen.size(), tls_yaml);
  write_file(cluster.config_path(i), text);
}

// One request over a new TLS connection; none when the handshake or the request failed.
std::optional<server::testing::Response> tls_call(std::uint16_t port,
                                                  const TlsClientOptions& trust,
                                                  http::verb method, const std::string& target,
                                                  const std::string& body,
                                                  const server::testing::Headers& headers) {
  TlsTestClient client(port, trust);
  if (!client.handshake().empty()) return std::nullopt;
  return client.request(method, target, body, headers);
}

// Until GET /v1/cluster at `port` (over TLS, with an admin token) shows `members` members
// and /readyz of each of `ports` is 200; false after 60 s (a guard, not a test threshold).
bool wait_tls_view(const TlsClientOptions& trust, const server::testing::Headers& admin,
                   const std::vector<std::uint16_t>& ports, std::size_t members) {
  const auto guard = std::chrono::steady_clock::now() + seconds(60);
  while (std::chrono::steady_clock::now() < guard) {
    bool ready = true;
    for (const std::uint16_t port : ports) {
      const auto answer = tls_call(port, trust, http::verb::get, "/readyz", {}, {});
      ready = ready && answer && answer->result_int() == 200;
    }
    const auto info = tls_call(ports[0], trust, http::verb::get, "/v1/cluster", {}, admin);
    if (ready && info && info->result_int() == 200) {
      const auto body = nlohmann::json::parse(info->body(), nullptr, false);
      if (!body.is_discarded() && body["view"]["members"].size() == members) return true;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  return false;
}

}  // namespace

TEST_CASE("a joiner with the wrong cluster secret leaves a loaded cluster untouched") {
  ClusterLayout layout;
  layout.nodes = 4;
  layout.replicas = 3;
  DaemonCluster cluster(layout);
  const std::string good = cluster.directory() + "/secret";
  const std::string bad = cluster.directory() + "/wrong-secret";
  write_file(good, "the-cluster-secret-0123456789abcdef\n");
  write_file(bad, "not-the-secret-at-all-0123456789ab\n");
  for (std::size_t i = 0; i < 3; ++i) {
    add_to_cluster_section(cluster.config_path(i), fmt::format("  secret_file: \"{}\"\n", good));
  }
  add_to_cluster_section(cluster.config_path(3), fmt::format("  secret_file: \"{}\"\n", bad));

  cluster.start(0);
  REQUIRE(cluster.wait_ready(0, seconds(60)));
  cluster.start(1);
  cluster.start(2);
  REQUIRE(cluster.wait_view_size(0, 3, seconds(60)));
  REQUIRE(status_of(http_call(cluster.rest_port(0), http::verb::put, "/v1/kv/fixed",
                              "before")) / 100 == 2);

  // Writers on the three members while the intruder tries.
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::vector<Acked> acked;  // GUARDED_BY(mutex)
  std::vector<std::thread> writers;
  for (std::size_t w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      for (std::size_t n = 0; !stop.load(); ++n) {
        const std::string key = fmt::format("load/{}/{}", w, n);
        const std::string value = fmt::format("value-{}-{}", w, n);
        const auto answer = http_call(cluster.rest_port(n % 3), http::verb::put,
                                      "/v1/kv/" + key, value, {}, seconds(15));
        if (status_of(answer) / 100 == 2) {
          std::lock_guard lock(mutex);
          acked.push_back({key, value});
        }
      }
    });
  }
  auto acked_count = [&] {
    std::lock_guard lock(mutex);
    return acked.size();
  };
  while (acked_count() < 50 && cluster.running(0)) std::this_thread::sleep_for(milliseconds(20));

  cluster.start(3);
  // Wait (bounded by a guard, never a pass/fail threshold) for the intruder's join to be
  // refused, then for more writes to be acknowledged after it.
  const auto guard = std::chrono::steady_clock::now() + seconds(60);
  auto refused = [&] {
    return cluster.log_tail(3, 100000).find("authentication failed") != std::string::npos;
  };
  while (!refused() && std::chrono::steady_clock::now() < guard) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  const std::size_t after_refusal = acked_count();
  while (acked_count() < after_refusal + 200 && std::chrono::steady_clock::now() < guard) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  stop.store(true);
  for (auto& writer : writers) writer.join();

  INFO("intruder log: " << cluster.log_tail(3));
  CHECK(refused());
  CHECK(cluster.log_tail(0, 1000000).find("membership request refused") != std::string::npos);
  CHECK(acked.size() >= after_refusal + 200);  // the cluster kept acknowledging writes
  for (std::size_t i = 0; i < 3; ++i) {
    const auto members = view_members(cluster.rest_port(i));
    CHECK(members.size() == 3);
    CHECK(std::find(members.begin(), members.end(), 4) == members.end());
  }
  CHECK(status_of(http_call(cluster.rest_port(3), http::verb::get, "/readyz", {}, {},
                            seconds(2))) != 200);
  // No acknowledged write lost, on any member; the earlier key unchanged.
  std::size_t missing = 0;
  for (const Acked& write : acked) {
    for (std::size_t i = 0; i < 3; ++i) {
      const auto answer = http_call(cluster.rest_port(i), http::verb::get,
                                    "/v1/kv/" + write.key);
      if (status_of(answer) != 200 || answer->body() != write.value) ++missing;
    }
  }
  CHECK(missing == 0);
  const auto fixed = http_call(cluster.rest_port(1), http::verb::get, "/v1/kv/fixed");
  REQUIRE(status_of(fixed) == 200);
  CHECK(fixed->body() == "before");
  CHECK(cluster.assertion_failures().empty());
}

TEST_CASE("squalld serves HTTPS with bearer tokens and reloads its certificate on SIGHUP") {
  CertDir certs;
  REQUIRE(certs.make_leaf("node-a"));
  REQUIRE(certs.make_leaf("node-b"));
  REQUIRE(certs.make_leaf("live"));
  std::filesystem::copy_file(certs.crt("node-a"), certs.crt("live"),
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(certs.key("node-a"), certs.key("live"),
                             std::filesystem::copy_options::overwrite_existing);
  const std::string token = "writer-token-0123456789abcdef";
  write_file(certs.path("writer.token"), token + "\n");
  ClusterLayout layout;
  layout.nodes = 1;
  layout.replicas = 1;
  layout.extra_yaml = {
      "auth:",
      "  tokens:",
      fmt::format("    - {{name: writer, token_file: \"{}\", roles: [read, write], "
                  "prefixes: [app/]}}", certs.path("writer.token")),
  };
  DaemonCluster cluster(layout);
  {
    // rest.tls goes into the harness's rest section.
    std::string text = read_file(cluster.config_path(0));
    const std::string listen = fmt::format("  listen: \"127.0.0.1:{}\"\n", cluster.rest_port(0));
    const auto at = text.find(listen);
    REQUIRE(at != std::string::npos);
    text.insert(at + listen.size(),
                fmt::format("  tls:\n    cert_file: \"{}\"\n    key_file: \"{}\"\n",
                            certs.crt("live"), certs.key("live")));
    write_file(cluster.config_path(0), text);
  }
  cluster.start(0);
  const TlsClientOptions trust{certs.crt("ca"), std::nullopt, std::nullopt};
  bool ready = false;
  for (int attempt = 0; attempt < 600 && !ready && cluster.running(0); ++attempt) {
    TlsTestClient probe(cluster.rest_port(0), trust);
    if (probe.handshake().empty()) {
      const auto answer = probe.request(http::verb::get, "/readyz");
      ready = answer && answer->result_int() == 200;
    }
    if (!ready) std::this_thread::sleep_for(milliseconds(100));
  }
  INFO("log: " << cluster.log_tail(0));
  REQUIRE(ready);

  TlsTestClient before(cluster.rest_port(0), trust);
  REQUIRE(before.handshake().empty());
  CHECK(before.server_common_name() == "node-a");
  const auto put = before.request(http::verb::put, "/v1/kv/app/k", "v",
                                  {{"Authorization", "Bearer " + token}});
  REQUIRE(put.has_value());
  CHECK(put->result_int() / 100 == 2);
  const auto anonymous = before.request(http::verb::get, "/v1/kv/app/k");
  REQUIRE(anonymous.has_value());
  CHECK(anonymous->result_int() == 401);
  const auto outside = before.request(http::verb::put, "/v1/kv/other/k", "v",
                                      {{"Authorization", "Bearer " + token}});
  REQUIRE(outside.has_value());
  CHECK(outside->result_int() == 403);
  // Plain HTTP on the TLS port gets no answer.
  CHECK(status_of(http_call(cluster.rest_port(0), http::verb::get, "/healthz", {}, {},
                            seconds(5))) == 0);

  std::filesystem::copy_file(certs.crt("node-b"), certs.crt("live"),
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(certs.key("node-b"), certs.key("live"),
                             std::filesystem::copy_options::overwrite_existing);
  const std::string rotated = "rotated-token-0123456789abcdef";
  write_file(certs.path("writer.token"), rotated + "\n");
  cluster.signal(0, SIGHUP);
  std::string common_name;
  for (int attempt = 0; attempt < 300 && common_name != "node-b"; ++attempt) {
    TlsTestClient after(cluster.rest_port(0), trust);
    if (after.handshake().empty()) common_name = after.server_common_name();
    if (common_name != "node-b") std::this_thread::sleep_for(milliseconds(100));
  }
  CHECK(common_name == "node-b");
  // The connection from before the reload still works (with the rotated token now).
  const auto still = before.request(http::verb::get, "/v1/kv/app/k", {},
                                    {{"Authorization", "Bearer " + rotated}});
  REQUIRE(still.has_value());
  CHECK(still->result_int() == 200);
  CHECK(still->body() == "v");
  // The token file was read again: the rotated token works, the old one no longer does.
  TlsTestClient rotation(cluster.rest_port(0), trust);
  REQUIRE(rotation.handshake().empty());
  const auto with_new = rotation.request(http::verb::get, "/v1/kv/app/k", {},
                                         {{"Authorization", "Bearer " + rotated}});
  REQUIRE(with_new.has_value());
  CHECK(with_new->result_int() == 200);
  const auto with_old = rotation.request(http::verb::get, "/v1/kv/app/k", {},
                                         {{"Authorization", "Bearer " + token}});
  REQUIRE(with_old.has_value());
  CHECK(with_old->result_int() == 401);
  CHECK(cluster.running(0));
  CHECK(cluster.terminate(0) == 0);
  CHECK(cluster.assertion_failures().empty());
}


// 3 nodes, 3 shards x 1 replica: the first view has node 1 serve every shard and the joiners
// stay spares (docs/core.md), so nodes 2 and 3 serve none and forward every request.
TEST_CASE("a cluster with TLS and tokens forwards from a node that serves no shard") {
  CertDir certs;
  REQUIRE(certs.make_leaf("node"));
  const std::string app_token = "app-token-0123456789abcdef";
  const std::string admin_token = "admin-token-0123456789abcdef";
  write_file(certs.path("app.token"), app_token + "\n");
  write_file(certs.path("admin.token"), admin_token + "\n");
  write_file(certs.path("secret"), "the-cluster-secret-0123456789abcdef\n");
  ClusterLayout layout;
  layout.nodes = 3;
  layout.shards = 3;
  layout.replicas = 1;
  layout.extra_yaml = {
      "limits:", "  max_value_bytes: 1048576", "multicast:", "  max_payload_bytes: 2097152",
      "auth:", "  tokens:",
      fmt::format("    - {{name: app, token_file: \"{}\", roles: [read, write], "
                  "prefixes: [app/]}}", certs.path("app.token")),
      fmt::format("    - {{name: ops, token_file: \"{}\", roles: [admin]}}",
                  certs.path("admin.token")),
  };
  DaemonCluster cluster(layout);
  std::vector<std::uint16_t> ports;
  for (std::size_t i = 0; i < 3; ++i) {
    add_to_cluster_section(cluster.config_path(i),
                           fmt::format("  secret_file: \"{}\"\n", certs.path("secret")));
    enable_tls(cluster, i, fmt::format("  tls:\n    cert_file: \"{}\"\n    key_file: \"{}\"\n"
                                       "    ca_file: \"{}\"\n",
                                       certs.crt("node"), certs.key("node"), certs.crt("ca")));
    ports.push_back(cluster.rest_port(i));
  }
  const TlsClientOptions trust{certs.crt("ca"), std::nullopt, std::nullopt};
  const server::testing::Headers app{{"Authorization", "Bearer " + app_token}};
  const server::testing::Headers admin{{"Authorization", "Bearer " + admin_token}};
  cluster.start(0);
  REQUIRE(wait_tls_view(trust, admin, {ports[0]}, 1));
  cluster.start(1);
  cluster.start(2);
  const bool formed = wait_tls_view(trust, admin, ports, 3);
  INFO("node 1 log: " << cluster.log_tail(0) << "\nnode 2 log: " << cluster.log_tail(1));
  REQUIRE(formed);
  // Nodes 2 and 3 serve no shard.
  const auto info = tls_call(ports[0], trust, http::verb::get, "/v1/cluster", {}, admin);
  REQUIRE(info.has_value());
  for (const auto& shard : nlohmann::json::parse(info->body())["shards"]) {
    REQUIRE(shard["members"] == nlohmann::json::array({1}));
  }

  // Writes through node 2 and reads through node 3, on every shard.
  std::set<std::uint32_t> shards;
  for (int k = 0; k < 20; ++k) {
    const std::string key = fmt::format("app/k{:02}", k);
    const auto put = tls_call(ports[1], trust, http::verb::put, "/v1/kv/" + key, "v" + key, app);
    REQUIRE(put.has_value());
    REQUIRE(put->result_int() == 201);
    shards.insert(nlohmann::json::parse(put->body())["shard"].get<std::uint32_t>());
    const auto got = tls_call(ports[2], trust, http::verb::get, "/v1/kv/" + key, {}, app);
    REQUIRE(got.has_value());
    CHECK(got->result_int() == 200);
    CHECK(got->body() == "v" + key);
  }
  CHECK(shards.size() == 3);
  // A list through node 2 merges the pages node 1 sent for each shard.
  const auto listed = tls_call(ports[1], trust, http::verb::get, "/v1/kv?prefix=app/&limit=100",
                               {}, app);
  REQUIRE(listed.has_value());
  REQUIRE(listed->result_int() == 200);
  const auto items = nlohmann::json::parse(listed->body())["items"];
  REQUIRE(items.size() == 20);
  CHECK(items[0]["key"] == "app/k00");
  CHECK(items[19]["key"] == "app/k19");

  // A watch at node 3 (every shard's stream forwarded from node 1) sees a write at node 2.
  TlsTestClient watcher(ports[2], trust);
  REQUIRE(watcher.handshake().empty());
  const auto head = watcher.read_until("/v1/watch?prefix=app/", app, "\r\n\r\n");
  REQUIRE(head.has_value());
  CHECK_THAT(*head, Catch::StartsWith("HTTP/1.1 200"));
  const auto put = tls_call(ports[1], trust, http::verb::put, "/v1/kv/app/watched", "w", app);
  REQUIRE(put.has_value());
  REQUIRE(put->result_int() == 201);
  const auto event = watcher.read_more_until("app/watched");
  REQUIRE(event.has_value());
  CHECK_THAT(*event, Catch::Contains("event: put"));

  // Without a token (or with an unknown one) node 2 answers 401 itself: nothing is written.
  for (const server::testing::Headers& headers :
       {server::testing::Headers{},
        server::testing::Headers{{"Authorization", "Bearer not-a-token-0123456789"}}}) {
    const auto refused = tls_call(ports[1], trust, http::verb::put, "/v1/kv/app/anon", "x",
                                  headers);
    REQUIRE(refused.has_value());
    CHECK(refused->result_int() == 401);
    CHECK(refused->count(http::field::www_authenticate) == 1);
  }
  const auto outside = tls_call(ports[1], trust, http::verb::put, "/v1/kv/other/x", "x", app);
  REQUIRE(outside.has_value());
  CHECK(outside->result_int() == 403);
  const auto anon = tls_call(ports[2], trust, http::verb::get, "/v1/kv/app/anon", {}, app);
  REQUIRE(anon.has_value());
  CHECK(anon->result_int() == 404);
  CHECK(cluster.assertion_failures().empty());
}

}  // namespace squall::test
