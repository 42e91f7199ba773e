// Every example in deploy/config loads and validates; the local template renders to the
// three local node files.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "test/config/test_util.hpp"

using namespace squall;
using namespace squall::config;
using namespace squall::config::testing;

namespace {

const std::string kExamples = std::string(SQUALL_SOURCE_DIR) + "/deploy/config/";

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string render_local(int id, const std::string& data_root) {
  std::string text = read_text(kExamples + "local-node.yaml.template");
  const std::map<std::string, std::string> values = {
      {"NODE_ID", std::to_string(id)},
      {"DATA_ROOT", data_root},
      {"MEMBERSHIP_PORT", std::to_string(23580 + 10 * id)},
      {"STATE_TRANSFER_PORT", std::to_string(23581 + 10 * id)},
      {"FABRIC_PORT", std::to_string(23582 + 10 * id)},
      {"REST_PORT", std::to_string(8080 + id)}};
  for (const auto& [name, value] : values) {
    std::string placeholder = "{{" + name + "}}";
    for (auto at = text.find(placeholder); at != std::string::npos; at = text.find(placeholder)) {
      text.replace(at, placeholder.size(), value);
    }
  }
  return text;
}

}  // namespace

TEST_CASE("the local node files load, differ in identity and ports, and share a contact") {
  std::set<std::uint16_t> ports;
  for (int id = 0; id < 3; ++id) {
    std::string file = kExamples + "node" + std::to_string(id) + ".yaml";
    auto config = load_config_file(file);
    INFO(file);
    REQUIRE(config.is_ok());
    CHECK(config->node.id == NodeId(static_cast<std::uint32_t>(id)));
    CHECK(config->node.data_dir == "/tmp/squall-local/node" + std::to_string(id));
    CHECK(config->transport.provider == Provider::tcp);
    CHECK(config->transport.domain == "lo");
    CHECK(config->contact_address() == "127.0.0.1");
    CHECK(config->contact_port() == 23580);
    CHECK(config->contact_is_self() == (id == 0));
    for (std::uint16_t port : {config->ports.membership, config->ports.state_transfer,
                               config->ports.fabric, config->rest.listen.port}) {
      CHECK(ports.insert(port).second);  // no two nodes share a port
    }
    CHECK(config_warnings(*config).empty());
  }
}

TEST_CASE("the local template renders to the node files, for any data root") {
  for (int id = 0; id < 3; ++id) {
    auto rendered = load(render_local(id, "/tmp/squall-local"));
    auto file = load_config_file(kExamples + "node" + std::to_string(id) + ".yaml");
    REQUIRE(rendered.is_ok());
    REQUIRE(file.is_ok());
    CHECK(*rendered == *file);
  }
  auto elsewhere = load(render_local(7, "/srv/data"));
  REQUIRE(elsewhere.is_ok());
  CHECK(elsewhere->node.data_dir == "/srv/data/node7");
  CHECK(elsewhere->ports.membership == 23650);
  CHECK(elsewhere->rest.listen.port == 8087);
}

TEST_CASE("a local node file takes a data root from an override") {
  auto config = load_config_file(kExamples + "node2.yaml", {"node.data_dir=/scratch/c1/node2"});
  REQUIRE(config.is_ok());
  CHECK(config->node.data_dir == "/scratch/c1/node2");
}

TEST_CASE("the multi-host examples load and validate") {
  auto tcp = load_config_file(kExamples + "multi-host-tcp.yaml");
  REQUIRE(tcp.is_ok());
  CHECK(tcp->transport.provider == Provider::tcp);
  CHECK(tcp->layout.shards == 3);
  CHECK(tcp->layout.pools.size() == 4);
  CHECK(pinned_memory_needed_bytes(*tcp) <= tcp->multicast.pinned_memory_budget_bytes);
  CHECK(config_warnings(*tcp).empty());
  auto verbs = load_config_file(kExamples + "multi-host-verbs.yaml");
  REQUIRE(verbs.is_ok());
  CHECK(verbs->transport.provider == Provider::verbs);
  CHECK(verbs->transport.domain == "mlx5_0");
  CHECK(config_warnings(*verbs).empty());
  auto tls = load_config_file(kExamples + "multi-host-tls.yaml");
  REQUIRE(tls.is_ok());
  REQUIRE(tls->rest.tls.has_value());
  CHECK(tls->rest.tls->client_certs == ClientCerts::optional);
  CHECK(tls->auth.tokens.size() == 3);
  CHECK(tls->auth.metrics == EndpointAccess::admin);
  CHECK(config_warnings(*tls).empty());
  auto reloaded = load(to_yaml(*tls));
  REQUIRE(reloaded.is_ok());
  CHECK(*reloaded == *tls);
}
