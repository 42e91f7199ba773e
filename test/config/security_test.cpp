// The rest.tls and auth sections, and the refusal of text that is not UTF-8.
#include <catch2/catch.hpp>

#include "config/config.hpp"
#include "test/config/test_util.hpp"

using namespace squall::config;
using namespace squall::config::testing;

namespace {

constexpr std::string_view kDigest =
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

constexpr std::string_view kSecured =
    "node:\n"
    "  id: 1\n"
    "  data_dir: /var/lib/squall\n"
    "rest:\n"
    "  tls:\n"
    "    cert_file: /etc/squall/node.crt\n"
    "    key_file: /etc/squall/node.key\n"
    "    ca_file: /etc/squall/ca.crt\n"
    "    client_certs: optional\n"
    "    handshake_timeout_ms: 2500\n"
    "auth:\n"
    "  metrics: admin\n"
    "  health: open\n"
    "  tokens:\n"
    "    - name: app\n"
    "      token_file: /etc/squall/tokens/app\n"
    "      roles: [read, write]\n"
    "      prefixes: [\"app/\", \"shared/\"]\n"
    "    - name: ops\n"
    "      token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
    "      roles: [admin]\n";

}  // namespace

TEST_CASE("rest.tls and auth load with every key") {
  auto config = load(kSecured);
  REQUIRE(config.is_ok());
  REQUIRE(config->rest.tls.has_value());
  CHECK(config->rest.tls->cert_file == "/etc/squall/node.crt");
  CHECK(config->rest.tls->key_file == "/etc/squall/node.key");
  CHECK(config->rest.tls->ca_file == "/etc/squall/ca.crt");
  CHECK(config->rest.tls->client_certs == ClientCerts::optional);
  CHECK(config->rest.tls->handshake_timeout_ms == 2500);
  CHECK(config->auth.enabled());
  CHECK(config->auth.metrics == EndpointAccess::admin);
  CHECK(config->auth.health == EndpointAccess::open);
  REQUIRE(config->auth.tokens.size() == 2);
  CHECK(config->auth.tokens[0].roles == std::vector<std::string>{"read", "write"});
  CHECK(config->auth.tokens[0].prefixes == std::vector<std::string>{"app/", "shared/"});
  CHECK(config->auth.tokens[1].token_sha256 == std::string(kDigest));
  CHECK(config->auth.tokens[1].prefixes.empty());
}

TEST_CASE("defaults: no TLS, auth off, metrics and health open") {
  auto config = load(kMinimal);
  REQUIRE(config.is_ok());
  CHECK(!config->rest.tls.has_value());
  CHECK(!config->auth.enabled());
  CHECK(config->auth.metrics == EndpointAccess::open);
  CHECK(config->auth.health == EndpointAccess::open);
  CHECK(name(ClientCerts::require) == "require");
  CHECK(name(EndpointAccess::admin) == "admin");
}

TEST_CASE("the security sections round trip through to_yaml") {
  auto original = load(kSecured);
  REQUIRE(original.is_ok());
  const std::string text = to_yaml(*original);
  CHECK_THAT(text, Catch::Contains("client_certs: optional"));
  CHECK_THAT(text, Catch::Contains("roles: [\"read\", \"write\"]"));
  auto reloaded = load(text);
  REQUIRE(reloaded.is_ok());
  CHECK(*reloaded == *original);
  auto defaults = load(kMinimal);
  REQUIRE(defaults.is_ok());
  auto defaults_reloaded = load(to_yaml(*defaults));
  REQUIRE(defaults_reloaded.is_ok());
  CHECK(*defaults_reloaded == *defaults);
}

TEST_CASE("bad TLS settings are refused with their position") {
  CHECK(load_error(minimal_with("rest:\n  tls:\n    cert_file: /c\n")) ==
        "test.yaml:5:3: rest.tls.key_file: required key is missing (expected a string)");
  CHECK(load_error(minimal_with("rest:\n  tls:\n    cert_file: /c\n    key_file: /k\n"
                                "    client_certs: require\n")) ==
        "test.yaml:8:19: rest.tls.client_certs: 'require' needs rest.tls.ca_file (the CAs "
        "client certificates are verified against)");
  CHECK(load_error(minimal_with("rest:\n  tls:\n    cert_file: /c\n    key_file: /k\n"
                                "    client_certs: always\n")) ==
        "test.yaml:8:19: rest.tls.client_certs: unknown value 'always' (allowed: off, "
        "optional, require)");
  CHECK(load_error(minimal_with("rest:\n  tls:\n    cert_file: /c\n    key_file: /k\n"
                                "    handshake_timeout_ms: 0\n")) ==
        "test.yaml:8:27: rest.tls.handshake_timeout_ms: 0 is out of range (allowed: 1 to "
        "3600000)");
}

TEST_CASE("bad tokens are refused with their position") {
  const std::string head = std::string(kMinimal) + "auth:\n  tokens:\n    - name: a\n";
  CHECK(load_error(head + "      roles: [read]\n") ==
        "test.yaml:6:7: auth.tokens[0]: give exactly one of token_file and token_sha256");
  CHECK(load_error(head + "      roles: [read]\n      token_file: /t\n"
                          "      token_sha256: " + std::string(kDigest) + "\n") ==
        "test.yaml:6:7: auth.tokens[0]: give exactly one of token_file and token_sha256");
  CHECK(load_error(head + "      token_file: /t\n      roles: [reader]\n") ==
        "test.yaml:8:15: auth.tokens[0].roles[0]: unknown role 'reader' (allowed: read, "
        "write, admin)");
  CHECK(load_error(head + "      token_file: /t\n      roles: []\n") ==
        "test.yaml:8:7: auth.tokens[0].roles: has 0 entries (allowed: 1 to 3)");
  CHECK(load_error(head + "      token_file: /t\n") ==
        "test.yaml:6:7: auth.tokens[0].roles: has 0 entries (allowed: 1 to 3)");
  CHECK_THAT(load_error(head + "      token_sha256: abc\n      roles: [read]\n"),
             Catch::StartsWith("test.yaml:7:21: auth.tokens[0].token_sha256: must be 64 "
                               "hexadecimal digits"));
  CHECK_THAT(load_error(head + "      token: s3cret\n      roles: [read]\n"),
             Catch::StartsWith("test.yaml:7:14: auth.tokens[0].token: 'token' is not "
                               "supported: a token is never written in the configuration"));
  CHECK(load_error(head + "      token_file: /t\n      roles: [read]\n"
                          "    - name: a\n      token_file: /u\n      roles: [read]\n") ==
        "test.yaml:9:13: auth.tokens[1].name: duplicate token name 'a' (also "
        "auth.tokens[0])");
  CHECK(load_error(head + "      token_file: /t\n      roles: read\n") ==
        "test.yaml:8:14: auth.tokens[0].roles: expected a list of strings, got 'read'");
  CHECK(load_error(minimal_with("auth:\n  metrics: everyone\n")) ==
        "test.yaml:5:12: auth.metrics: unknown value 'everyone' (allowed: open, admin)");
  CHECK(load_error(kMinimal, {"auth.health=closed"}) ==
        "--set auth.health=closed: auth.health: unknown value 'closed' (allowed: open, "
        "admin)");
}

TEST_CASE("warnings for tokens without TLS") {
  auto config = load(minimal_with("auth:\n  tokens:\n    - name: a\n      token_file: /t\n"
                                  "      roles: [read]\n"));
  REQUIRE(config.is_ok());
  bool warned = false;
  for (const std::string& warning : config_warnings(*config)) {
    warned = warned || warning.find("clear text") != std::string::npos;
  }
  CHECK(warned);
}

TEST_CASE("text that is not UTF-8 is refused with its position") {
  // A Latin-1 'e acute' in a value: yaml-cpp would load it but not emit it back equal.
  CHECK(load_error(std::string(kMinimal) + "cluster:\n  name: caf\xe9\n") ==
        "test.yaml:5:12: the configuration is not valid UTF-8 (byte 0xe9 at offset 62)");
  CHECK(load_error(std::string("# \xc3\n") + std::string(kMinimal)) ==
        "test.yaml:1:3: the configuration is not valid UTF-8 (byte 0xc3 at offset 2)");
  // Overlong forms and surrogates are not UTF-8 either.
  CHECK_THAT(load_error(std::string("# \xc0\xaf\n") + std::string(kMinimal)),
             Catch::Contains("not valid UTF-8 (byte 0xc0"));
  CHECK_THAT(load_error(std::string("# \xed\xa0\x80\n") + std::string(kMinimal)),
             Catch::Contains("not valid UTF-8 (byte 0xed"));
  CHECK_THAT(load_error(kMinimal, {std::string("logging.file=\xff")}),
             Catch::StartsWith("--set:1:14: the configuration is not valid UTF-8"));
  // Real UTF-8 loads and round-trips.
  auto config = load(std::string(kMinimal) +
                     "logging:\n  file: \"/var/log/caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xa7.log\"\n");
  REQUIRE(config.is_ok());
  auto reloaded = load(to_yaml(*config));
  REQUIRE(reloaded.is_ok());
  CHECK(*reloaded == *config);
}
