// Loading: defaults, every section read, and one test per class of malformed input.
#include <catch2/catch.hpp>

#include "test/config/test_util.hpp"

using namespace squall;
using namespace squall::config;
using namespace squall::config::testing;

TEST_CASE("a minimal file gets every documented default") {
  auto config = load(kMinimal);
  REQUIRE(config.is_ok());
  Config expected;
  expected.node.id = NodeId(1);
  expected.node.data_dir = "/var/lib/squall";
  CHECK(*config == expected);
  CHECK(config->cluster.name == "squall");
  CHECK(config->node.address == "127.0.0.1");
  CHECK(config->ports.membership == 23580);
  CHECK(config->ports.state_transfer == 23581);
  CHECK(config->ports.fabric == 23582);
  CHECK(config->transport.provider == Provider::tcp);
  CHECK(config->transport.domain == "lo");
  CHECK(config->timeouts.heartbeat_ms == 100);
  CHECK(config->timeouts.failure_timeout_ms == 1000);
  CHECK(config->multicast.rdmc_algorithm == RdmcAlgorithm::binomial_pipeline);
  CHECK(config->rest.listen.to_string() == "127.0.0.1:8080");
  CHECK(config->limits.max_key_bytes == 4096);
  CHECK(config->limits.max_value_bytes == 16 * kMiB);
  CHECK(config->limits.max_list_limit == 10000);
  CHECK(config->watch.keepalive_s == 15);
  CHECK(config->persistence.fsync);
  REQUIRE(config->layout.pools.size() == 1);
  CHECK(config->layout.pools[0].prefix.empty());
  CHECK(config->layout.pools[0].storage == Storage::persistent);
  CHECK(validate(expected).is_ok());
}

TEST_CASE("the contact defaults to this node and can point elsewhere") {
  auto self = load(kMinimal);
  REQUIRE(self.is_ok());
  CHECK(self->contact_is_self());
  CHECK(self->contact_address() == "127.0.0.1");
  CHECK(self->contact_port() == 23580);
  auto other = load(minimal_with("contact:\n  address: 10.0.0.1\n  port: 23590\n"));
  REQUIRE(other.is_ok());
  CHECK_FALSE(other->contact_is_self());
  CHECK(other->contact_address() == "10.0.0.1");
  CHECK(other->contact_port() == 23590);
}

TEST_CASE("every section and key is read") {
  auto config = load(R"(
cluster: {name: prod-1}
node: {id: 7, data_dir: /data/squall, address: 10.0.0.7}
contact: {address: 10.0.0.1, port: 24000}
ports: {membership: 24000, state_transfer: 24001, fabric: 24002}
transport: {provider: verbs, domain: mlx5_0, tx_depth: 512, rx_depth: 1024,
            max_message_bytes: 128KiB}
timeouts: {heartbeat_ms: 20, failure_timeout_ms: 200, join_timeout_ms: 3000,
           request_timeout_ms: 2000}
multicast: {window: 8, smc_payload_bytes: 2KiB, rdmc_block_bytes: 512KiB,
            rdmc_algorithm: chain, max_payload_bytes: 17MiB,
            pinned_memory_budget_bytes: 4GiB}
layout:
  shards: 4
  replicas_per_shard: 3
  pools:
    - {prefix: "cache/", storage: volatile, retention: {max_versions: 1}}
    - prefix: "events/"
      storage: stateless
    - prefix: "users/"
      retention: {max_versions: 10, max_age_s: 86400}
      affinity: {delimiter: "/"}
persistence: {segment_bytes: 128MiB, fsync: false, group_commit_max_delay_us: 500,
              checkpoint_interval_versions: 5000, max_log_bytes: 1GiB}
rest: {listen: "0.0.0.0:9090", max_connections: 2048, max_header_bytes: 64KiB,
       read_timeout_ms: 10000, idle_timeout_ms: 30000}
limits: {max_key_bytes: 1024, max_value_bytes: 8MiB, max_list_limit: 500}
watch: {max_watchers: 100, buffer_events: 64, keepalive_s: 5}
logging: {level: debug, modules: {fabric: trace, sst: warn}, file: /var/log/squall.log}
)");
  REQUIRE(config.is_ok());
  const Config& c = *config;
  CHECK(c.cluster.name == "prod-1");
  CHECK(c.node.id == NodeId(7));
  CHECK(c.node.address == "10.0.0.7");
  CHECK(c.contact_port() == 24000);
  CHECK(c.ports.fabric == 24002);
  CHECK(c.transport.provider == Provider::verbs);
  CHECK(c.transport.domain == "mlx5_0");
  CHECK(c.transport.rx_depth == 1024);
  CHECK(c.transport.max_message_bytes == 128 * kKiB);
  CHECK(c.timeouts.join_timeout_ms == 3000);
  CHECK(c.multicast.rdmc_algorithm == RdmcAlgorithm::chain);
  CHECK(c.multicast.rdmc_block_bytes == 512 * kKiB);
  CHECK(c.layout.shards == 4);
  REQUIRE(c.layout.pools.size() == 4);  // three given + the default pool
  CHECK(c.layout.pools[0].storage == Storage::volatile_);
  CHECK(c.layout.pools[0].retention.max_versions == 1);
  CHECK(c.layout.pools[1].storage == Storage::stateless);
  CHECK(c.layout.pools[2].retention.max_age_s == 86400);
  REQUIRE(c.layout.pools[2].affinity.has_value());
  CHECK(c.layout.pools[2].affinity->delimiter == "/");
  CHECK(c.layout.pools[3].prefix.empty());
  CHECK_FALSE(c.persistence.fsync);
  CHECK(c.persistence.max_log_bytes == kGiB);
  CHECK(c.rest.listen == HostPort{"0.0.0.0", 9090});
  CHECK(c.limits.max_list_limit == 500);
  CHECK(c.watch.keepalive_s == 5);
  LogSettings log = c.logging.to_log_settings();
  CHECK(log.level == "debug");
  CHECK(log.modules.at("fabric") == "trace");
  CHECK(log.file == "/var/log/squall.log");
}

TEST_CASE("missing required keys name the key and where its section is") {
  CHECK(load_error("node:\n  data_dir: /x\n") ==
        "test.yaml:1:1: node.id: required key is missing (expected an unsigned integer)");
  CHECK(load_error("cluster:\n  name: a\nnode:\n  id: 3\n") ==
        "test.yaml:3:1: node.data_dir: required key is missing (expected a string)");
  CHECK(load_error("") == "test.yaml: node.id: required key is missing "
                          "(expected an unsigned integer)");
  CHECK(load_error(minimal_with("layout:\n  pools:\n    - storage: volatile\n")) ==
        "test.yaml:6:7: layout.pools[0].prefix: required key is missing (expected a string)");
}

TEST_CASE("a value of the wrong type is refused with what was expected") {
  CHECK(load_error(minimal_with("multicast:\n  window: abc\n")) ==
        "test.yaml:5:11: multicast.window: expected an unsigned integer, got 'abc'");
  CHECK(load_error(minimal_with("multicast:\n  window: [1, 2]\n")) ==
        "test.yaml:5:3: multicast.window: expected an unsigned integer, got a list");
  CHECK(load_error(minimal_with("layout:\n  pools:\n    prefix: a\n")) ==
        "test.yaml:5:3: layout.pools: expected a list, got a map");
  CHECK(load_error(minimal_with("layout:\n  pools: [a/]\n")) ==
        "test.yaml:5:11: layout.pools[0]: expected a map, got 'a/'");
  CHECK(load_error(minimal_with("transport: tcp\n")) ==
        "test.yaml:4:12: transport: expected a map of keys, got 'tcp'");
  CHECK(load_error(minimal_with("persistence:\n  fsync: yes\n")) ==
        "test.yaml:5:10: persistence.fsync: expected true or false, got 'yes'");
  CHECK(load_error(minimal_with("limits:\n  max_value_bytes: 16MB\n")) ==
        "test.yaml:5:20: limits.max_value_bytes: unknown size unit 'MB' in '16MB' (allowed "
        "units: B, KiB, MiB, GiB, TiB; powers of 1024)");
}

TEST_CASE("negative numbers are refused for unsigned keys") {
  CHECK(load_error(minimal_with("timeouts:\n  heartbeat_ms: -5\n")) ==
        "test.yaml:5:17: timeouts.heartbeat_ms: must not be negative, got '-5'");
  CHECK(load_error("node: {id: -1, data_dir: /x}\n") ==
        "test.yaml:1:12: node.id: must not be negative, got '-1'");
}

TEST_CASE("numbers out of range show the allowed range") {
  CHECK(load_error(minimal_with("multicast:\n  window: 0\n")) ==
        "test.yaml:5:11: multicast.window: 0 is out of range (allowed: 1 to 1024)");
  CHECK(load_error(minimal_with("ports:\n  fabric: 70000\n")) ==
        "test.yaml:5:11: ports.fabric: 70000 is out of range (allowed: 1 to 65535)");
  CHECK(load_error("node: {id: 4294967296, data_dir: /x}\n") ==
        "test.yaml:1:12: node.id: 4294967296 is out of range (allowed: 0 to 4294967295)");
  CHECK(load_error(minimal_with("multicast:\n  smc_payload_bytes: 2MiB\n")) ==
        "test.yaml:5:22: multicast.smc_payload_bytes: 2MiB is out of range (allowed: 64 to "
        "1MiB)");
}

TEST_CASE("an empty value is refused rather than guessed") {
  CHECK(load_error(minimal_with("transport:\n  domain:\n")) ==
        "test.yaml:5:3: transport.domain: has no value (expected a string; remove the key to "
        "use the default)");
  CHECK(load_error(minimal_with("watch:\n")) ==
        "test.yaml:4:1: watch: has no value (expected a map of keys; remove the key to use "
        "the default)");
}

TEST_CASE("malformed YAML reports the parser's position") {
  auto message = load_error("node:\n  id: [1, 2\n  data_dir: /x\n");
  CHECK_THAT(message, Catch::StartsWith("test.yaml:") && Catch::Contains("malformed YAML"));
  CHECK(load_error("node: {id: 1, data_dir: x}\nkey: a: b\n") ==
        "test.yaml:2:7: malformed YAML: illegal map value");
}

TEST_CASE("the document must be one map of sections") {
  CHECK(load_error("- node\n- id\n") ==
        "test.yaml:1:1: the configuration must be a map of sections (cluster, node, ...), "
        "got a list");
  CHECK(load_error(std::string(kMinimal) + "---\n" + std::string(kMinimal)) ==
        "test.yaml:5:1: 2 YAML documents found; a configuration is one document");
}

TEST_CASE("unknown keys are refused with the allowed keys and a suggestion") {
  CHECK(load_error(minimal_with("multicast:\n  windw: 8\n")) ==
        "test.yaml:5:10: multicast.windw: unknown key 'windw' (allowed: window, "
        "smc_payload_bytes, rdmc_block_bytes, rdmc_algorithm, max_payload_bytes, "
        "pinned_memory_budget_bytes); did you mean 'window'?");
  CHECK_THAT(load_error(minimal_with("storage:\n  fsync: true\n")),
             Catch::StartsWith("test.yaml:4:1: storage: unknown section 'storage' (allowed: "
                               "cluster, node, contact,"));
  CHECK_THAT(load_error(minimal_with("node2:\n  id: 1\n")),
             Catch::Contains("did you mean 'node'?"));
}

TEST_CASE("keys in the wrong place are refused with where they belong") {
  CHECK(load_error(minimal_with("tls:\n  cert: /etc/squall/cert.pem\n")) ==
        "test.yaml:4:1: tls: 'tls' is not supported: TLS of the REST API is configured in "
        "rest.tls");
  CHECK(load_error(minimal_with("tokens: [abc]\n")) ==
        "test.yaml:4:1: tokens: 'tokens' is not supported: bearer tokens are configured in "
        "auth.tokens");
  CHECK(load_error(minimal_with("rest:\n  tls: {}\n")) ==
        "test.yaml:5:3: rest.tls.cert_file: required key is missing (expected a string)");
  CHECK_THAT(load_error(minimal_with("ports:\n  rest: 8080\n")),
             Catch::Contains("ports.rest: 'rest' is not supported: the REST port is part of "
                             "rest.listen"));
}

TEST_CASE("duplicate keys are refused, naming the first") {
  CHECK(load_error(minimal_with("timeouts:\n  heartbeat_ms: 50\n  heartbeat_ms: 60\n")) ==
        "test.yaml:6:3: timeouts.heartbeat_ms: duplicate key 'heartbeat_ms' (first given at "
        "line 5)");
  CHECK(load_error(minimal_with("node:\n  id: 2\n")) ==
        "test.yaml:4:1: node: duplicate key 'node' (first given at line 1)");
}

TEST_CASE("the sockets provider is refused with the reason, others list the allowed values") {
  CHECK(load_error(minimal_with("transport:\n  provider: sockets\n")) ==
        "test.yaml:5:13: transport.provider: 'sockets' is refused: the libfabric 'sockets' "
        "provider is deprecated and does not keep one-sided writes in order, which the "
        "shared-state table relies on; use 'tcp' instead (allowed: tcp, verbs)");
  CHECK(load_error(minimal_with("transport:\n  provider: udp\n")) ==
        "test.yaml:5:13: transport.provider: unknown value 'udp' (allowed: tcp, verbs)");
  CHECK(load_error(minimal_with("multicast:\n  rdmc_algorithm: ring\n")) ==
        "test.yaml:5:19: multicast.rdmc_algorithm: unknown value 'ring' (allowed: "
        "binomial_pipeline, chain, sequential, tree)");
  CHECK(load_error(minimal_with("layout:\n  pools:\n    - {prefix: a/, storage: disk}\n")) ==
        "test.yaml:6:29: layout.pools[0].storage: unknown value 'disk' (allowed: persistent, "
        "volatile, stateless)");
}

TEST_CASE("strings are checked against their rules") {
  CHECK(load_error(minimal_with("cluster:\n  name: my cluster\n")) ==
        "test.yaml:5:9: cluster.name: 'my cluster' may only contain letters, digits, '.', '_' "
        "and '-'");
  CHECK(load_error("node: {id: 1, data_dir: \"\"}\n") ==
        "test.yaml:1:25: node.data_dir: must not be empty");
  CHECK(load_error(minimal_with("logging:\n  level: verbose\n")) ==
        "test.yaml:5:10: logging.level: unknown log level 'verbose' (allowed: trace, debug, "
        "info, warn, error, critical, off)");
  CHECK_THAT(load_error(minimal_with("logging:\n  modules: {sst: loud}\n")),
             Catch::StartsWith("test.yaml:5:18: logging.modules.sst: unknown log level 'loud'"));
  CHECK_THAT(load_error(minimal_with("logging:\n  modules: {sst: [debug]}\n")),
             Catch::Contains("logging.modules.sst: expected a string, got a list"));
  CHECK(load_error(minimal_with("transport:\n  domain: \"eth 0\"\n")) ==
        "test.yaml:5:11: transport.domain: 'eth 0' must not contain spaces or control "
        "characters");
}

TEST_CASE("rest.listen must be host:port") {
  CHECK(load_error(minimal_with("rest:\n  listen: localhost\n")) ==
        "test.yaml:5:11: rest.listen: expected \"host:port\" (or \"[ipv6-address]:port\"), "
        "got 'localhost'");
  CHECK(load_error(minimal_with("rest:\n  listen: \"127.0.0.1:0\"\n")) ==
        "test.yaml:5:11: rest.listen: port '0' in '127.0.0.1:0' is not a port number "
        "(allowed: 1 to 65535)");
  auto v6 = load(minimal_with("rest:\n  listen: \"[::1]:8081\"\n"));
  REQUIRE(v6.is_ok());
  CHECK(v6->rest.listen == HostPort{"::1", 8081});
  CHECK(v6->rest.listen.to_string() == "[::1]:8081");
}

TEST_CASE("an unreadable file is reported with its path") {
  auto missing = load_config_file("/nonexistent/squall.yaml");
  REQUIRE_FALSE(missing.is_ok());
  CHECK(missing.status().code() == Code::not_found);
  CHECK(missing.status().message() ==
        "cannot read configuration file '/nonexistent/squall.yaml': No such file or directory");
  auto directory = load_config_file("/");
  REQUIRE_FALSE(directory.is_ok());
  CHECK(directory.status().code() == Code::io_error);
  CHECK(directory.status().message() ==
        "cannot read configuration file '/': it is a directory");
}

TEST_CASE("keys must be plain names") {
  CHECK(load_error(minimal_with("multicast:\n  ? [a, b]\n  : 1\n")) ==
        "test.yaml:5:5: multicast.<key>: keys must be plain names, got a list");
}
