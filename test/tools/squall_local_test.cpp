// tools/squall-local's config generation: every rendered file loads and validates, with the
// ports, contact and data directory of the local layout (docs/operations.md).
#include <atomic>
#include <cstdlib>
#include <filesystem>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "config/config.hpp"

namespace squall::ctl::testing {
namespace {

std::filesystem::path scratch_dir() {
  static std::atomic<int> counter{0};
  return std::filesystem::temp_directory_path() /
         fmt::format("squall-local-test-{}-{}", ::getpid(), counter++);
}

// Runs `squall-local render`; returns its exit status.
int render(int nodes, const std::filesystem::path& root, const std::filesystem::path& out) {
  const std::string command =
      fmt::format("'{}/tools/squall-local' render -n {} --root '{}' --out '{}' >/dev/null",
                  SQUALL_SOURCE_DIR, nodes, root.string(), out.string());
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("squall-local render: each node's config loads, with the local layout's ports") {
  const auto dir = scratch_dir();
  const auto root = dir / "root";
  REQUIRE(render(3, root, dir / "configs") == 0);
  for (std::uint32_t id = 0; id < 3; ++id) {
    const auto file = dir / "configs" / fmt::format("node{}.yaml", id);
    auto loaded = config::load_config_file(file.string());
    CAPTURE(file, loaded.status().to_string());
    REQUIRE(loaded.is_ok());
    const config::Config& config = loaded.value();
    REQUIRE(config.node.id.value == id);
    REQUIRE(config.node.data_dir == (root / fmt::format("node{}", id)).string());
    REQUIRE(config.ports.membership == 23580 + 10 * id);
    REQUIRE(config.ports.state_transfer == 23581 + 10 * id);
    REQUIRE(config.ports.fabric == 23582 + 10 * id);
    REQUIRE(config.rest.listen.to_string() == fmt::format("127.0.0.1:{}", 8080 + id));
    REQUIRE(config.contact_port() == 23580);
    REQUIRE(config.contact_is_self() == (id == 0));
    REQUIRE(config.layout.replicas_per_shard == 3);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("squall-local render: fewer than 3 nodes get as many replicas and bad counts are refused") {
  const auto dir = scratch_dir();
  REQUIRE(render(1, dir / "root", dir / "one") == 0);
  auto loaded = config::load_config_file((dir / "one" / "node0.yaml").string());
  REQUIRE(loaded.is_ok());
  REQUIRE(loaded->layout.replicas_per_shard == 1);
  REQUIRE(render(0, dir / "root", dir / "none") != 0);
  REQUIRE(render(17, dir / "root", dir / "many") != 0);
  std::filesystem::remove_all(dir);
}

}  // namespace squall::ctl::testing
