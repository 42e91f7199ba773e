// Bearer tokens through the real HttpServer and RestApi: 401 without a valid token, 403
// outside its roles or prefixes, for every route (a roles x prefixes x endpoints matrix),
// list and watch scopes, /metrics and health open or admin-only, the node token, and tokens
// from a configuration (files and digests).
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "server/auth.hpp"
#include "test/server/server_fixture.hpp"

using namespace squall;
using namespace squall::server;
using namespace squall::server::testing;
namespace http = boost::beast::http;

namespace {

constexpr std::string_view kSecret = "a-cluster-secret-of-some-length";

TokenGrant grant(std::string name, bool read, bool write, bool admin,
                 std::vector<std::string> prefixes) {
  TokenGrant out;
  out.digest = sha256(name + "-token-0123456789");
  out.name = std::move(name);
  out.read = read;
  out.write = write;
  out.admin = admin;
  out.prefixes = std::move(prefixes);
  return out;
}

std::string bearer(const std::string& name) { return "Bearer " + name + "-token-0123456789"; }

std::shared_ptr<const Authorizer> test_authorizer(config::EndpointAccess metrics,
                                                  config::EndpointAccess health) {
  std::vector<TokenGrant> grants{
      grant("reader", true, false, false, {"app/"}),
      grant("writer", false, true, false, {"app/"}),
      grant("rw", true, true, false, {"app/", "shared/"}),
      grant("admin", false, false, true, {}),
      grant("scoped-admin", false, false, true, {"app/"}),
      node_grant(kSecret),
  };
  return std::make_shared<Authorizer>(std::move(grants), metrics, health);
}

struct AuthFixture {
  explicit AuthFixture(config::EndpointAccess metrics_access = config::EndpointAccess::open,
                       config::EndpointAccess health_access = config::EndpointAccess::open)
      : api(backend, metrics, test_limits(), nullptr, {},
            test_authorizer(metrics_access, health_access)) {
    auto started = HttpServer::start(test_options(), api.handler(), &metrics);
    REQUIRE(started.is_ok());
    server = std::move(started.value());
  }
  ~AuthFixture() { server->stop(); }

  // "401", "403" or "ok" (any other answer: the request got past the token checks).
  std::string outcome(http::verb method, const std::string& target,
                      const std::string& authorization, const Headers& more = {}) {
    Headers headers = more;
    if (!authorization.empty()) headers.emplace_back("Authorization", authorization);
    TestClient client(server->port());
    const Response response = client.request(method, target, "v", headers);
    if (response.result_int() == 401 || response.result_int() == 403) {
      return std::to_string(response.result_int());
    }
    return "ok";
  }

  SingleNodeTestBackend backend;
  MetricsRegistry metrics;
  RestApi api;
  std::unique_ptr<HttpServer> server;
};

struct Probe {
  http::verb method;
  std::string target;
  Headers headers;
};

// The endpoints of the matrix, by name.
const std::map<std::string, Probe>& probes() {
  static const std::map<std::string, Probe> all{
      {"get app", {http::verb::get, "/v1/kv/app/x", {}}},
      {"get other", {http::verb::get, "/v1/kv/other/x", {}}},
      {"put app", {http::verb::put, "/v1/kv/app/y", {}}},
      {"put other", {http::verb::put, "/v1/kv/other/y", {}}},
      {"delete app", {http::verb::delete_, "/v1/kv/app/z", {}}},
      {"cas app", {http::verb::put, "/v1/kv/app/c", {{"If-None-Match", "*"}}}},
      {"list app", {http::verb::get, "/v1/kv?prefix=app/", {}}},
      {"list narrower", {http::verb::get, "/v1/kv?prefix=app/sub", {}}},
      {"list wider", {http::verb::get, "/v1/kv?prefix=ap", {}}},
      {"list all", {http::verb::get, "/v1/kv", {}}},
      {"history app", {http::verb::get, "/v1/history/app/x", {}}},
      {"history other", {http::verb::get, "/v1/history/other/x", {}}},
      {"watch key", {http::verb::get, "/v1/watch?key=app/x", {}}},
      {"watch prefix", {http::verb::get, "/v1/watch?prefix=app/", {}}},
      {"watch wider", {http::verb::get, "/v1/watch?prefix=a", {}}},
      {"watch all", {http::verb::get, "/v1/watch?prefix=", {}}},
      {"cluster", {http::verb::get, "/v1/cluster", {}}},
      {"metrics", {http::verb::get, "/metrics", {}}},
      {"healthz", {http::verb::get, "/healthz", {}}},
      {"readyz", {http::verb::get, "/readyz", {}}},
  };
  return all;
}

// Expected outcomes, in the order of probes() (std::map: alphabetical by name).
void check_matrix(AuthFixture& fixture, const std::string& authorization,
                  const std::map<std::string, std::string>& expected) {
  REQUIRE(expected.size() == probes().size());
  for (const auto& [name, probe] : probes()) {
    INFO("token " << (authorization.empty() ? "<none>" : authorization) << ", " << name);
    CHECK(fixture.outcome(probe.method, probe.target, authorization, probe.headers) ==
          expected.at(name));
  }
}

std::map<std::string, std::string> all(const std::string& outcome) {
  std::map<std::string, std::string> out;
  for (const auto& [name, probe] : probes()) out[name] = outcome;
  return out;
}

std::map<std::string, std::string> with(std::map<std::string, std::string> base,
                                        const std::vector<std::string>& names,
                                        const std::string& outcome) {
  for (const std::string& name : names) {
    REQUIRE(base.count(name) == 1);
    base[name] = outcome;
  }
  return base;
}

const std::vector<std::string> kHealthAndMetrics{"metrics", "healthz", "readyz"};

}  // namespace

TEST_CASE("auth: bearer tokens are parsed and matched by digest") {
  auto auth = test_authorizer(config::EndpointAccess::open, config::EndpointAccess::open);
  REQUIRE(auth->enabled());
  REQUIRE(auth->authenticate(bearer("reader")) != nullptr);
  CHECK(auth->authenticate(bearer("reader"))->name == "reader");
  CHECK(auth->authenticate("bearer  reader-token-0123456789 ")->name == "reader");
  CHECK(auth->authenticate("BEARER reader-token-0123456789")->name == "reader");
  CHECK(auth->authenticate("Basic cmVhZGVyOnB3") == nullptr);
  CHECK(auth->authenticate("Bearer ") == nullptr);
  CHECK(auth->authenticate("Bearer") == nullptr);
  CHECK(auth->authenticate("") == nullptr);
  CHECK(auth->authenticate("Bearer reader-token-012345678") == nullptr);    // one byte short
  CHECK(auth->authenticate("Bearer reader-token-01234567890") == nullptr);  // one byte more
  CHECK(auth->authenticate("Bearer reader-token-0123456788") == nullptr);   // last byte
  CHECK(auth->authenticate(node_authorization(kSecret))->name == "squall-node");
  CHECK(auth->authenticate(node_authorization("another-secret-of-length")) == nullptr);
  CHECK(node_authorization(kSecret).starts_with("Bearer squall-node."));
  // The digest is SHA-256 (the value token_sha256 takes).
  const TokenDigest empty = sha256("");
  CHECK(std::to_integer<int>(empty[0]) == 0xe3);
  CHECK(std::to_integer<int>(empty[31]) == 0x55);
  CHECK(!Authorizer().enabled());
}

TEST_CASE("auth: roles and prefixes") {
  const TokenGrant reader = grant("r", true, false, false, {"app/"});
  const TokenGrant writer = grant("w", false, true, false, {"app/", "x"});
  const TokenGrant admin = grant("a", false, false, true, {});
  using Kind = KeyScope::Kind;
  CHECK(Authorizer::permits(reader, Access::read, {Kind::key, "app/1"}));
  CHECK(!Authorizer::permits(reader, Access::read, {Kind::key, "app"}));
  CHECK(!Authorizer::permits(reader, Access::write, {Kind::key, "app/1"}));
  CHECK(!Authorizer::permits(reader, Access::admin, {}));
  CHECK(Authorizer::permits(reader, Access::read, {Kind::prefix, "app/"}));
  CHECK(Authorizer::permits(reader, Access::read, {Kind::prefix, "app/deeper"}));
  CHECK(!Authorizer::permits(reader, Access::read, {Kind::prefix, "app"}));
  CHECK(!Authorizer::permits(reader, Access::read, {Kind::prefix, ""}));
  CHECK(Authorizer::permits(writer, Access::write, {Kind::key, "xyz"}));
  CHECK(!Authorizer::permits(writer, Access::read, {Kind::key, "xyz"}));
  CHECK(Authorizer::permits(admin, Access::read, {Kind::prefix, ""}));
  CHECK(Authorizer::permits(admin, Access::write, {Kind::key, "anything"}));
  CHECK(Authorizer::permits(admin, Access::admin, {}));
}

TEST_CASE("auth: the roles x prefixes x endpoints matrix, metrics and health open") {
  AuthFixture fixture;
  REQUIRE(fixture.outcome(http::verb::put, "/v1/kv/app/x", bearer("admin")) == "ok");
  REQUIRE(fixture.outcome(http::verb::put, "/v1/kv/other/x", bearer("admin")) == "ok");

  const auto open = with(all("401"), kHealthAndMetrics, "ok");
  check_matrix(fixture, "", open);
  check_matrix(fixture, "Bearer not-a-configured-token", open);
  check_matrix(fixture, "Basic YWRtaW46YWRtaW4=", open);

  const auto forbidden = with(all("403"), kHealthAndMetrics, "ok");
  check_matrix(fixture, bearer("reader"),
               with(forbidden, {"get app", "list app", "list narrower", "history app",
                                "watch key", "watch prefix"}, "ok"));
  check_matrix(fixture, bearer("writer"),
               with(forbidden, {"put app", "delete app", "cas app"}, "ok"));
  check_matrix(fixture, bearer("rw"),
               with(forbidden, {"get app", "put app", "delete app", "cas app", "list app",
                                "list narrower", "history app", "watch key", "watch prefix"},
                    "ok"));
  check_matrix(fixture, bearer("admin"), all("ok"));
  check_matrix(fixture, bearer("scoped-admin"),
               with(forbidden, {"get app", "put app", "delete app", "cas app", "list app",
                                "list narrower", "history app", "watch key", "watch prefix",
                                "cluster"}, "ok"));
  // The node token (requests forwarded by another node) is an admin over every key.
  check_matrix(fixture, node_authorization(kSecret), all("ok"));
}

TEST_CASE("auth: metrics and health admin-only") {
  AuthFixture fixture(config::EndpointAccess::admin, config::EndpointAccess::admin);
  for (const std::string target : {"/metrics", "/healthz", "/readyz"}) {
    INFO(target);
    CHECK(fixture.outcome(http::verb::get, target, "") == "401");
    CHECK(fixture.outcome(http::verb::get, target, bearer("reader")) == "403");
    CHECK(fixture.outcome(http::verb::get, target, bearer("rw")) == "403");
    CHECK(fixture.outcome(http::verb::get, target, bearer("admin")) == "ok");
    CHECK(fixture.outcome(http::verb::get, target, bearer("scoped-admin")) == "ok");
  }
  AuthFixture mixed(config::EndpointAccess::admin, config::EndpointAccess::open);
  CHECK(mixed.outcome(http::verb::get, "/metrics", "") == "401");
  CHECK(mixed.outcome(http::verb::get, "/healthz", "") == "ok");
  CHECK(mixed.outcome(http::verb::get, "/readyz", "") == "ok");
}

TEST_CASE("auth: answers follow the contract and never echo the token") {
  AuthFixture fixture;
  TestClient client(fixture.server->port());
  const Response missing = client.get("/v1/kv/app/x");
  CHECK(missing.result_int() == 401);
  CHECK(json_of(missing)["error"] == "unauthorized");
  CHECK(header_of(missing, "WWW-Authenticate") == "Bearer realm=\"squall\"");
  const Response invalid = client.request(http::verb::get, "/v1/kv/app/x", {},
                                          {{"Authorization", "Bearer secret-guess-123456"}});
  CHECK(invalid.result_int() == 401);
  CHECK(header_of(invalid, "WWW-Authenticate") ==
        "Bearer realm=\"squall\", error=\"invalid_token\"");
  CHECK(invalid.body().find("secret-guess") == std::string::npos);
  const Response outside = client.request(http::verb::get, "/v1/kv/other/x", {},
                                          {{"Authorization", bearer("reader")}});
  CHECK(outside.result_int() == 403);
  CHECK(json_of(outside)["error"] == "forbidden");
  CHECK(outside.body().find("token-0123456789") == std::string::npos);
  // Reads and writes inside the scope work end to end.
  const Response put = client.request(http::verb::put, "/v1/kv/app/k", "value",
                                      {{"Authorization", bearer("rw")}});
  CHECK(put.result_int() == 201);
  const Response get = client.request(http::verb::get, "/v1/kv/app/k", {},
                                      {{"Authorization", bearer("reader")}});
  CHECK(get.result_int() == 200);
  CHECK(get.body() == "value");
  const Response list = client.request(http::verb::get, "/v1/kv?prefix=app/", {},
                                       {{"Authorization", bearer("reader")}});
  CHECK(list.result_int() == 200);
  const std::string rendered = fixture.metrics.render();
  CHECK(rendered.find("squall_http_auth_refusals_total{reason=\"no_token\"}") !=
        std::string::npos);
  CHECK(rendered.find("squall_http_auth_refusals_total{reason=\"forbidden\"}") !=
        std::string::npos);
  CHECK(rendered.find("token-0123456789") == std::string::npos);
}

TEST_CASE("auth: tokens from a configuration (files, digests, the cluster secret)") {
  const auto dir = std::filesystem::temp_directory_path() /
                   fmt::format("squall-auth-{:08x}", std::random_device{}());
  std::filesystem::create_directories(dir);
  { std::ofstream(dir / "app.token") << "  app-token-abcdefghijkl\n"; }
  { std::ofstream(dir / "short.token") << "short\n"; }
  { std::ofstream(dir / "secret") << kSecret << "\n"; }
  const std::string digest =
      "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";  // sha256("test")
  auto text = [&](const std::string& app_file) {
    return fmt::format(
        "node: {{id: 1, data_dir: /tmp/unused}}\n"
        "cluster: {{secret_file: {}}}\n"
        "auth:\n"
        "  metrics: admin\n"
        "  tokens:\n"
        "    - {{name: app, token_file: {}, roles: [read, write], prefixes: [app/]}}\n"
        "    - {{name: ops, token_sha256: {}, roles: [admin]}}\n",
        (dir / "secret").string(), (dir / app_file).string(), digest);
  };
  auto config = config::load_config_string(text("app.token"), "test.yaml");
  REQUIRE(config.is_ok());
  auto auth = Authorizer::from_config(config.value());
  REQUIRE(auth.is_ok());
  const Authorizer& authorizer = *auth.value();
  CHECK(authorizer.metrics_access() == config::EndpointAccess::admin);
  REQUIRE(authorizer.authenticate("Bearer app-token-abcdefghijkl") != nullptr);
  CHECK(authorizer.authenticate("Bearer app-token-abcdefghijkl")->write);
  CHECK(authorizer.authenticate("Bearer test")->name == "ops");
  auto node = node_authorization(config.value());
  REQUIRE(node.is_ok());
  CHECK(authorizer.authenticate(node.value())->name == "squall-node");

  auto missing = Authorizer::from_config(
      config::load_config_string(text("absent.token"), "test.yaml").value());
  REQUIRE(!missing.is_ok());
  CHECK_THAT(missing.status().message(), Catch::Contains("auth token 'app'"));
  auto short_token = Authorizer::from_config(
      config::load_config_string(text("short.token"), "test.yaml").value());
  REQUIRE(!short_token.is_ok());
  CHECK_THAT(short_token.status().message(), Catch::Contains("at least 16"));
  CHECK(short_token.status().message().find("short\n") == std::string::npos);

  // Rotation: the source reads the token file again on reload; a bad file keeps the tokens.
  auto source = AuthSource::create(config.value());
  REQUIRE(source.is_ok());
  const auto before = source.value()->current();
  { std::ofstream(dir / "app.token", std::ios::trunc) << "app-token-rotated-0123456\n"; }
  REQUIRE(reload_auth_sources().is_ok());
  CHECK(source.value()->current()->authenticate("Bearer app-token-abcdefghijkl") == nullptr);
  CHECK(source.value()->current()->authenticate("Bearer app-token-rotated-0123456") != nullptr);
  // The tokens a request was checked with stay valid while it holds them.
  CHECK(before->authenticate("Bearer app-token-abcdefghijkl") != nullptr);
  { std::ofstream(dir / "app.token", std::ios::trunc) << "short\n"; }
  CHECK(!source.value()->reload().is_ok());
  CHECK(source.value()->current()->authenticate("Bearer app-token-rotated-0123456") != nullptr);
  source.value().reset();  // unregistered: reload_auth_sources() no longer reaches it
  CHECK(reload_auth_sources().is_ok());

  // No tokens: auth off, and no node token to send.
  auto plain = config::load_config_string("node: {id: 1, data_dir: /tmp/unused}\n", "t.yaml");
  REQUIRE(plain.is_ok());
  CHECK(!Authorizer::from_config(plain.value()).value()->enabled());
  CHECK(node_authorization(plain.value()).value().empty());
  std::filesystem::remove_all(dir);
}
