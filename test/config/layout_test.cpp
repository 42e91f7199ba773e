// Pools and sharding affinity, log settings, and the YAML form of a configuration.
#include <catch2/catch.hpp>

#include "test/config/test_util.hpp"

using namespace squall;
using namespace squall::config;
using namespace squall::config::testing;

namespace {

LayoutConfig three_pools() {
  auto config = load(minimal_with("layout:\n  pools:\n"
                                  "    - {prefix: users/, affinity: {delimiter: /}}\n"
                                  "    - {prefix: users/admin/, storage: volatile}\n"
                                  "    - {prefix: ev, storage: stateless}\n"));
  REQUIRE(config.is_ok());
  return config->layout;
}

}  // namespace

TEST_CASE("a key belongs to the pool with the longest matching prefix") {
  LayoutConfig layout = three_pools();
  CHECK(pool_for_key(layout, "users/42").prefix == "users/");
  CHECK(pool_for_key(layout, "users/admin/root").prefix == "users/admin/");
  CHECK(pool_for_key(layout, "users/admin").prefix == "users/");
  CHECK(pool_for_key(layout, "events/1").prefix == "ev");
  CHECK(pool_for_key(layout, "user").prefix.empty());
  CHECK(pool_for_key(layout, "").prefix.empty());
}

TEST_CASE("the affinity key is the key up to the first delimiter after the pool prefix") {
  LayoutConfig layout = three_pools();
  const PoolConfig& users = pool_for_key(layout, "users/42/name");
  CHECK(affinity_key(users, "users/42/name") == "users/42");
  CHECK(affinity_key(users, "users/42/mail") == "users/42");
  CHECK(affinity_key(users, "users/42") == "users/42");
  CHECK(affinity_key(users, "users/") == "users/");
  const PoolConfig& plain = pool_for_key(layout, "other/1/2");
  CHECK(affinity_key(plain, "other/1/2") == "other/1/2");
  PoolConfig multi;
  multi.prefix = "t:";
  multi.affinity = AffinityConfig{"::"};
  CHECK(affinity_key(multi, "t:a::b::c") == "t:a");
}

TEST_CASE("logging converts to the common log settings") {
  auto config = load(minimal_with("logging: {level: warn, modules: {core: debug}, file: f.log}\n"));
  REQUIRE(config.is_ok());
  LogSettings settings = config->logging.to_log_settings();
  CHECK(settings.level == "warn");
  CHECK(settings.modules == std::map<std::string, std::string>{{"core", "debug"}});
  CHECK(settings.file == "f.log");
}

TEST_CASE("to_yaml writes every key and loads back equal") {
  auto original = load_config_file(std::string(SQUALL_SOURCE_DIR) +
                                   "/deploy/config/multi-host-tcp.yaml");
  REQUIRE(original.is_ok());
  std::string text = to_yaml(*original);
  CHECK_THAT(text, Catch::Contains("max_payload_bytes: 17MiB"));
  CHECK_THAT(text, Catch::Contains("rdmc_algorithm: binomial_pipeline"));
  CHECK_THAT(text, Catch::Contains("storage: volatile"));
  auto reloaded = load(text);
  REQUIRE(reloaded.is_ok());
  CHECK(*reloaded == *original);

  auto minimal = load(kMinimal);
  REQUIRE(minimal.is_ok());
  std::string defaults = to_yaml(*minimal);
  CHECK_THAT(defaults, Catch::Contains("heartbeat_ms: 100"));
  CHECK_THAT(defaults, !Catch::Contains("contact:\n  address"));  // unset: resolves to self
  auto defaults_reloaded = load(defaults);
  REQUIRE(defaults_reloaded.is_ok());
  CHECK(*defaults_reloaded == *minimal);
}

TEST_CASE("enum names match the YAML spelling") {
  CHECK(name(Provider::verbs) == "verbs");
  CHECK(name(RdmcAlgorithm::binomial_pipeline) == "binomial_pipeline");
  CHECK(name(Storage::volatile_) == "volatile");
  CHECK(name(Storage::stateless) == "stateless");
}
