// `--set key.path=value` overrides: applied before validation, checked like the file.
#include <catch2/catch.hpp>

#include "test/config/test_util.hpp"

using namespace squall;
using namespace squall::config;
using namespace squall::config::testing;

TEST_CASE("overrides replace and add values, later ones winning") {
  auto config = load(minimal_with("transport: {provider: verbs, domain: mlx5_0}\n"),
                     {"transport.provider=tcp", "transport.domain=eth0", "multicast.window=8",
                      "multicast.window=4", "limits.max_value_bytes=1MiB",
                      "persistence.fsync=false", "rest.listen=0.0.0.0:9000"});
  REQUIRE(config.is_ok());
  CHECK(config->transport.provider == Provider::tcp);
  CHECK(config->transport.domain == "eth0");
  CHECK(config->multicast.window == 4);
  CHECK(config->limits.max_value_bytes == kMiB);
  CHECK_FALSE(config->persistence.fsync);
  CHECK(config->rest.listen == HostPort{"0.0.0.0", 9000});
}

TEST_CASE("overrides create missing sections and satisfy required keys") {
  auto config = load("", {"node.id=5", "node.data_dir=/srv/n5", "logging.modules.sst=debug",
                          "logging.file="});
  REQUIRE(config.is_ok());
  CHECK(config->node.id == NodeId(5));
  CHECK(config->node.data_dir == "/srv/n5");
  CHECK(config->logging.modules.at("sst") == "debug");
  CHECK(config->logging.file.empty());
}

TEST_CASE("overrides address list entries by index and append at the end") {
  std::string text = minimal_with("layout:\n  pools:\n    - {prefix: a/, storage: volatile}\n");
  auto config = load(text, {"layout.pools[0].storage=stateless",
                            "layout.pools[1]={prefix: b/, retention: {max_versions: 3}}",
                            "layout.pools[1].affinity.delimiter=:"});
  REQUIRE(config.is_ok());
  REQUIRE(config->layout.pools.size() == 3);
  CHECK(config->layout.pools[0].storage == Storage::stateless);
  CHECK(config->layout.pools[1].prefix == "b/");
  CHECK(config->layout.pools[1].retention.max_versions == 3);
  REQUIRE(config->layout.pools[1].affinity.has_value());
  CHECK(config->layout.pools[1].affinity->delimiter == ":");
  CHECK(load_error(text, {"layout.pools[5].prefix=x"}) ==
        "--set layout.pools[5].prefix=x: layout.pools has 1 entries; index 5 is past its end "
        "(use 1 to append)");
}

TEST_CASE("an override's unknown key or bad value is reported against the override") {
  CHECK(load_error(kMinimal, {"transport.providr=tcp"}) ==
        "--set transport.providr=tcp: transport.providr: unknown key 'providr' (allowed: "
        "provider, domain, tx_depth, rx_depth, max_message_bytes); did you mean 'provider'?");
  CHECK(load_error(kMinimal, {"multicast.window=abc"}) ==
        "--set multicast.window=abc: multicast.window: expected an unsigned integer, got 'abc'");
  CHECK(load_error(kMinimal, {"transport.provider=sockets"}) ==
        "--set transport.provider=sockets: transport.provider: 'sockets' is refused: the "
        "libfabric 'sockets' provider is deprecated and does not keep one-sided writes in "
        "order, which the shared-state table relies on; use 'tcp' instead (allowed: tcp, "
        "verbs)");
  CHECK(load_error(kMinimal, {"tls.cert=/x"}) ==
        "--set tls.cert=/x: tls: 'tls' is not supported: TLS of the REST API is configured "
        "in rest.tls");
  CHECK(load_error(kMinimal, {"multicast.window=0"}) ==
        "--set multicast.window=0: multicast.window: 0 is out of range (allowed: 1 to 1024)");
}

TEST_CASE("a relation broken by an override points at the override") {
  CHECK(load_error(kMinimal, {"timeouts.failure_timeout_ms=50"}) ==
        "--set timeouts.failure_timeout_ms=50: timeouts.failure_timeout_ms: 50 must be greater "
        "than timeouts.heartbeat_ms (100), preferably at least twice it");
  // The same relation broken by the file points at the file's line.
  CHECK_THAT(load_error(minimal_with("timeouts:\n  failure_timeout_ms: 50\n")),
             Catch::StartsWith("test.yaml:5:23: timeouts.failure_timeout_ms: 50 must be"));
}

TEST_CASE("malformed overrides are refused with the reason") {
  CHECK(load_error(kMinimal, {"multicast.window"}) ==
        "--set multicast.window: expected key.path=value");
  CHECK(load_error(kMinimal, {"=5"}) == "--set =5: empty key in the key path");
  CHECK(load_error(kMinimal, {"multicast..window=5"}) ==
        "--set multicast..window=5: empty key in the key path");
  CHECK(load_error(kMinimal, {"layout.pools[x].prefix=a"}) ==
        "--set layout.pools[x].prefix=a: malformed index in 'pools[x]'");
  CHECK(load_error(kMinimal, {"node.id.x=1"}) ==
        "--set node.id.x=1: node.id is a single value, not a map of keys");
  CHECK(load_error(kMinimal, {"node[0]=1"}) == "--set node[0]=1: node is a map, not a list");
  CHECK_THAT(load_error(kMinimal, {"multicast.window=[1, 2"}),
             Catch::StartsWith("--set multicast.window=[1, 2: the value is not valid YAML:"));
}

TEST_CASE("override values: flow collections and quoted strings are YAML, others verbatim") {
  CHECK(load_error(kMinimal, {"multicast={window: 4}", "layout.shards=[1]"}) ==
        "--set layout.shards=[1]: layout.shards: expected an unsigned integer, got a list");
  auto config = load(kMinimal, {"multicast={window: 4}"});
  REQUIRE(config.is_ok());
  CHECK(config->multicast.window == 4);
  CHECK(config->multicast.smc_payload_bytes == MulticastConfig{}.smc_payload_bytes);
  auto quoted = load(kMinimal, {"cluster.name='007'", "layout.pools[0]={prefix: \"\"}",
                                "layout.pools[0].affinity.delimiter=#"});
  REQUIRE(quoted.is_ok());
  CHECK(quoted->cluster.name == "007");
  REQUIRE(quoted->layout.pools[0].affinity.has_value());
  CHECK(quoted->layout.pools[0].affinity->delimiter == "#");
  CHECK(load_error(kMinimal, {"logging.level=~"}) ==
        "--set logging.level=~: logging.level: unknown log level '~' (allowed: trace, debug, "
        "info, warn, error, critical, off)");
  CHECK(load_error(kMinimal, {"logging.file=\"a\" b"}) ==
        "--set logging.file=\"a\" b: a quoted value must end with its closing quote");
}
