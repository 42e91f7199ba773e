// squallctl against a server with TLS and bearer tokens: https:// endpoints, --cacert,
// client certificates, --token-file and --token.
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "server/auth.hpp"
#include "server/tls.hpp"
#include "test/server/server_fixture.hpp"
#include "test/server/tls_util.hpp"
#include "tools/squallctl/ctl.hpp"

using namespace squall;
using namespace squall::server;
using namespace squall::server::testing;

namespace {

constexpr std::string_view kToken = "ctl-token-0123456789abcdef";

struct SecureServer {
  SecureServer(const CertDir& certs, config::ClientCerts client_certs)
      : api(backend, metrics, test_limits(), nullptr, {}, authorizer()) {
    config::TlsConfig tls;
    tls.cert_file = certs.crt("server");
    tls.key_file = certs.key("server");
    tls.ca_file = certs.crt("ca");
    tls.client_certs = client_certs;
    auto context = TlsServerContext::create(tls);
    REQUIRE(context.is_ok());
    HttpServerOptions options = test_options();
    options.tls = context.value();
    auto started = HttpServer::start(options, api.handler(), &metrics);
    REQUIRE(started.is_ok());
    server = std::move(started.value());
  }
  ~SecureServer() { server->stop(); }

  static std::shared_ptr<const Authorizer> authorizer() {
    TokenGrant grant;
    grant.name = "ctl";
    grant.digest = sha256(kToken);
    grant.read = true;
    grant.write = true;
    grant.prefixes = {"app/"};
    return std::make_shared<Authorizer>(std::vector<TokenGrant>{grant},
                                        config::EndpointAccess::open,
                                        config::EndpointAccess::open);
  }

  SingleNodeTestBackend backend;
  MetricsRegistry metrics;
  RestApi api;
  std::unique_ptr<HttpServer> server;
};

struct Ran {
  int code;
  std::string out;
  std::string err;
};

Ran run_ctl(const std::vector<std::string>& args) {
  std::istringstream in;
  std::ostringstream out;
  std::ostringstream err;
  const int code = ctl::run(args, {in, out, err}, std::nullopt);
  return {code, out.str(), err.str()};
}

}  // namespace

TEST_CASE("squallctl: https endpoints, --cacert and a token file") {
  CertDir certs;
  REQUIRE(certs.make_leaf("server"));
  SecureServer secure(certs, config::ClientCerts::off);
  const std::string endpoint = fmt::format("https://127.0.0.1:{}", secure.server->port());
  const std::string token_file = certs.path("token");
  { std::ofstream(token_file) << kToken << "\n"; }
  const std::vector<std::string> base{"--endpoints", endpoint, "--cacert", certs.crt("ca"),
                                      "--token-file", token_file};
  auto with = [&](std::vector<std::string> more) {
    std::vector<std::string> args = base;
    args.insert(args.end(), more.begin(), more.end());
    return run_ctl(args);
  };
  const Ran put = with({"put", "app/k", "v1"});
  CHECK(put.code == 0);
  const Ran get = with({"get", "app/k"});
  CHECK(get.code == 0);
  CHECK(get.out.find("v1") != std::string::npos);
  // Outside the token's prefixes: refused (403 is "any other server error", exit 5).
  const Ran outside = with({"get", "other/k"});
  CHECK(outside.code == 5);
  CHECK(outside.err.find("forbidden") != std::string::npos);
  // Without a token: 401.
  const Ran anonymous = run_ctl({"--endpoints", endpoint, "--cacert", certs.crt("ca"), "get",
                             "app/k"});
  CHECK(anonymous.code == 5);
  CHECK(anonymous.err.find("unauthorized") != std::string::npos);
  // --token works too (and the wrong one is refused).
  CHECK(run_ctl({"--endpoints", endpoint, "--cacert", certs.crt("ca"), "--token",
             std::string(kToken), "get", "app/k"}).code == 0);
  CHECK(run_ctl({"--endpoints", endpoint, "--cacert", certs.crt("ca"), "--token", "wrong-token",
             "get", "app/k"}).code == 5);
  // A CA that did not sign the server's certificate: no endpoint reachable (exit 4).
  CHECK(run_ctl({"--endpoints", endpoint, "--cacert", certs.crt("rogue-ca"), "--token",
             std::string(kToken), "get", "app/k"}).code == 4);
  // An unreadable token file is a usage error.
  CHECK(run_ctl({"--endpoints", endpoint, "--token-file", certs.path("absent"), "get", "app/k"})
            .code == 2);
}

TEST_CASE("squallctl: a client certificate for a server that requires one") {
  CertDir certs;
  REQUIRE(certs.make_leaf("server"));
  REQUIRE(certs.make_leaf("client"));
  SecureServer secure(certs, config::ClientCerts::require);
  const std::string endpoint = fmt::format("127.0.0.1:{}", secure.server->port());
  CHECK(run_ctl({"--endpoints", endpoint, "--cacert", certs.crt("ca"), "--cert",
             certs.crt("client"), "--key", certs.key("client"), "--token",
             std::string(kToken), "put", "app/c", "v"}).code == 0);
  CHECK(run_ctl({"--endpoints", endpoint, "--cacert", certs.crt("ca"), "--token",
             std::string(kToken), "put", "app/c", "v"}).code == 4);
}
