// Relations between keys, and validate() on configurations built in code.
#include <catch2/catch.hpp>

#include "test/config/test_util.hpp"

using namespace squall;
using namespace squall::config;
using namespace squall::config::testing;

namespace {

Config valid_config() {
  Config config;
  config.node.id = NodeId(2);
  config.node.data_dir = "/tmp/squall-node2";
  return config;
}

std::string validate_error(const Config& config) { return validate(config).message(); }

}  // namespace

TEST_CASE("failure_timeout_ms must exceed heartbeat_ms") {
  CHECK(load_error(minimal_with("timeouts:\n  heartbeat_ms: 500\n  failure_timeout_ms: 500\n")) ==
        "test.yaml:6:23: timeouts.failure_timeout_ms: 500 must be greater than "
        "timeouts.heartbeat_ms (500), preferably at least twice it");
  // Legal but doubtful: reported as a warning, not an error.
  auto close = load(minimal_with("timeouts:\n  heartbeat_ms: 100\n  failure_timeout_ms: 150\n"));
  REQUIRE(close.is_ok());
  auto warnings = config_warnings(*close);
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Catch::Contains("less than twice timeouts.heartbeat_ms"));
}

TEST_CASE("smc_payload_bytes and rdmc_block_bytes must fit max_payload_bytes") {
  auto base = [](std::string_view more) {
    return minimal_with(std::string("limits: {max_value_bytes: 1KiB, max_key_bytes: 64}\n"
                                    "multicast:\n  max_payload_bytes: 64KiB\n") +
                        std::string(more));
  };
  CHECK(load(base("  rdmc_block_bytes: 16KiB\n")).is_ok());
  CHECK(load_error(base("  rdmc_block_bytes: 16KiB\n  smc_payload_bytes: 128KiB\n")) ==
        "test.yaml:8:22: multicast.smc_payload_bytes: 128KiB exceeds "
        "multicast.max_payload_bytes (64KiB); smc_payload_bytes must be <= max_payload_bytes");
  CHECK(load_error(base("  rdmc_block_bytes: 1MiB\n")) ==
        "test.yaml:7:21: multicast.rdmc_block_bytes: 1MiB exceeds "
        "multicast.max_payload_bytes (64KiB); rdmc_block_bytes must be <= max_payload_bytes");
}

TEST_CASE("pinned memory over budget says how much is needed") {
  auto text = minimal_with("layout: {shards: 4}\n");
  CHECK(load_error(text) ==
        "test.yaml: multicast.pinned_memory_budget_bytes: the multicast buffers need "
        "3422552064 bytes = layout.shards 4 x multicast.window 16 x "
        "layout.replicas_per_shard 3 x multicast.max_payload_bytes 17825792, but the budget is "
        "1073741824 bytes (1GiB); raise the budget or lower one of those");
  CHECK(load(text, {"multicast.pinned_memory_budget_bytes=4GiB"}).is_ok());
  Config config = valid_config();
  config.layout.shards = 4;
  CHECK(pinned_memory_needed_bytes(config) == 4ULL * 16 * 3 * 17 * kMiB);
  config.multicast.window = 4;
  CHECK(validate(config).is_ok());
}

TEST_CASE("the largest key and value must fit one multicast message") {
  CHECK(load_error(minimal_with("limits:\n  max_value_bytes: 17MiB\n")) ==
        "test.yaml:5:20: limits.max_value_bytes: the largest update needs 17830144 bytes = "
        "limits.max_key_bytes 4096 + limits.max_value_bytes 17825792 + 256 header bytes, "
        "more than multicast.max_payload_bytes (17825792); lower the limits or raise "
        "max_payload_bytes");
  Config config = valid_config();
  config.limits.max_value_bytes = config.multicast.max_payload_bytes - 4096 - 256;
  CHECK(validate(config).is_ok());
  config.limits.max_value_bytes += 1;
  CHECK_THAT(validate_error(config), Catch::StartsWith("limits.max_value_bytes:"));
}

TEST_CASE("every listening port must be distinct") {
  CHECK(load_error(minimal_with("ports: {membership: 9000, state_transfer: 9000}\n")) ==
        "test.yaml:4:43: ports.state_transfer: port 9000 is also used by ports.membership; "
        "ports.membership, ports.state_transfer, ports.fabric and the rest.listen port must "
        "all differ");
  CHECK(load_error(minimal_with("rest: {listen: \"0.0.0.0:23582\"}\n")) ==
        "test.yaml:4:16: rest.listen: port 23582 is also used by ports.fabric; "
        "ports.membership, ports.state_transfer, ports.fabric and the rest.listen port must "
        "all differ");
}

TEST_CASE("pool prefixes are unique, fit a key, and stateless pools keep nothing") {
  CHECK(load_error(minimal_with("layout:\n  pools:\n    - prefix: a/\n    - prefix: b/\n"
                                "    - prefix: a/\n")) ==
        "test.yaml:8:15: layout.pools[2].prefix: duplicate pool prefix 'a/' (also "
        "layout.pools[0]); pool prefixes must be unique");
  CHECK(load_error(minimal_with("limits: {max_key_bytes: 4}\nrest: {max_header_bytes: 2KiB}\n"
                                "layout:\n  pools: [{prefix: users/}]\n")) ==
        "test.yaml:7:20: layout.pools[0].prefix: prefix is 6 bytes, longer than "
        "limits.max_key_bytes (4)");
  CHECK(load_error(minimal_with("layout:\n  pools:\n    - prefix: ev/\n      storage: stateless\n"
                                "      retention: {max_versions: 5}\n")) ==
        "test.yaml:8:7: layout.pools[0].retention: a stateless pool stores nothing, so "
        "retention must be 0 (unlimited) or left out");
  Config config = valid_config();
  config.layout.pools[0].prefix = "a/";
  CHECK(validate_error(config) ==
        "layout.pools: no default pool with prefix \"\" (every key needs a pool)");
  config.layout.pools.clear();
  CHECK(validate_error(config) == "layout.pools: has 0 entries (allowed: 1 to 256)");
}

TEST_CASE("the default pool is added unless given, and may be overridden") {
  auto added = load(minimal_with("layout:\n  pools: [{prefix: tmp/, storage: volatile}]\n"));
  REQUIRE(added.is_ok());
  REQUIRE(added->layout.pools.size() == 2);
  CHECK(added->layout.pools[1] == PoolConfig{});
  auto given = load(minimal_with("layout:\n  pools: [{prefix: \"\", storage: volatile}]\n"));
  REQUIRE(given.is_ok());
  REQUIRE(given->layout.pools.size() == 1);
  CHECK(given->layout.pools[0].storage == Storage::volatile_);
  auto empty = load(minimal_with("layout:\n  pools: []\n"));
  REQUIRE(empty.is_ok());
  CHECK(empty->layout.pools == std::vector<PoolConfig>{PoolConfig{}});
}

TEST_CASE("persistence segments hold the largest update and the log holds two segments") {
  CHECK(load_error(minimal_with("persistence: {segment_bytes: 16MiB}\n")) ==
        "test.yaml:4:30: persistence.segment_bytes: 16MiB is smaller than "
        "multicast.max_payload_bytes (17MiB); the largest update must fit in one segment");
  CHECK(load_error(minimal_with("persistence: {max_log_bytes: 100MiB}\n")) ==
        "test.yaml:4:30: persistence.max_log_bytes: 100MiB is less than two segments (2 x "
        "persistence.segment_bytes = 2 x 64MiB); use 0 for unlimited");
  CHECK(load(minimal_with("persistence: {max_log_bytes: 128MiB}\n")).is_ok());
}

TEST_CASE("REST and watch limits fit together") {
  CHECK(load_error(minimal_with("rest: {max_header_bytes: 8KiB}\n")) ==
        "test.yaml:4:26: rest.max_header_bytes: 8192 is too small for limits.max_key_bytes "
        "(4096): requests need at least 3 x max_key_bytes + 1024 = 13312 bytes");
  CHECK(load_error(minimal_with("watch: {max_watchers: 2000}\n")) ==
        "test.yaml:4:23: watch.max_watchers: 2000 exceeds rest.max_connections (1024); every "
        "watcher holds a connection");
  CHECK(load_error(minimal_with("watch: {keepalive_s: 60}\n")) ==
        "test.yaml:4:22: watch.keepalive_s: 60 s is not shorter than rest.idle_timeout_ms "
        "(60000 ms); idle watch streams would be closed between keepalives");
}

TEST_CASE("validate judges configurations built in code by key path") {
  Config config = valid_config();
  CHECK(validate(config).is_ok());
  config.node.data_dir.clear();
  CHECK(validate_error(config) == "node.data_dir: must not be empty");
  config = valid_config();
  config.multicast.window = 5000;
  CHECK(validate_error(config) == "multicast.window: 5000 is out of range (allowed: 1 to 1024)");
  config = valid_config();
  config.transport.provider = static_cast<Provider>(9);
  CHECK(validate_error(config) == "transport.provider: invalid value (allowed: tcp, verbs)");
  config = valid_config();
  config.logging.modules["fabric"] = "chatty";
  CHECK_THAT(validate_error(config),
             Catch::StartsWith("logging.modules.fabric: unknown log level 'chatty'"));
  config = valid_config();
  config.rest.listen.host = "bad host";
  CHECK(validate_error(config) == "rest.listen: host 'bad host' is not a host name or address");
  config = valid_config();
  config.contact.port = 0;
  CHECK(validate_error(config) == "contact.port: 0 is out of range (allowed: 1 to 65535)");
  config = valid_config();
  config.layout.pools[0].affinity = AffinityConfig{};
  CHECK(validate_error(config) == "layout.pools[0].affinity.delimiter: must not be empty");
}

TEST_CASE("warnings flag legal but risky settings") {
  Config config = valid_config();
  CHECK(config_warnings(config).empty());
  config.persistence.fsync = false;
  config.transport.provider = Provider::verbs;
  config.layout.replicas_per_shard = 1;
  auto warnings = config_warnings(config);
  REQUIRE(warnings.size() == 3);
  CHECK_THAT(warnings[0], Catch::Contains("verbs needs an RDMA device"));
  CHECK_THAT(warnings[1], Catch::Contains("persistence.fsync is false"));
  CHECK_THAT(warnings[2], Catch::Contains("single copy"));
}
