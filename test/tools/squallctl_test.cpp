// squallctl's commands against the real REST server over the single-node test backend:
// outputs (human and --json), exit codes, endpoint selection and failover.
#include <atomic>
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "test/server/server_fixture.hpp"
#include "test/tools/ctl_test_util.hpp"
#include "tools/squallctl/format.hpp"

namespace squall::ctl::testing {
namespace {
using nlohmann::json;
using server::testing::ServerFixture;

std::uint64_t put_version(std::uint16_t port, const std::string& key, const std::string& value) {
  const CtlRun put = ctl_at(port, {"--json", "put", key, value});
  REQUIRE(put.code == kExitOk);
  return json::parse(put.out)["version"].get<std::uint64_t>();
}

}  // namespace

TEST_CASE("squallctl put and get: human output, --json output, created then updated") {
  ServerFixture fixture;
  const std::uint16_t port = fixture.server->port();

  const CtlRun created = ctl_at(port, {"put", "users/42", "hello"});
  CAPTURE(created.err);
  REQUIRE(created.code == kExitOk);
  REQUIRE(created.out.rfind("users/42 created version ", 0) == 0);
  const CtlRun updated = ctl_at(port, {"--json", "put", "users/42", "world"});
  REQUIRE(updated.code == kExitOk);
  const json write = json::parse(updated.out);
  REQUIRE(write["key"] == "users/42");
  REQUIRE(write["version"].is_number_unsigned());
  REQUIRE(write["timestamp_us"].is_number_unsigned());

  const CtlRun read = ctl_at(port, {"get", "users/42"});
  REQUIRE(read.code == kExitOk);
  REQUIRE(read.out == "world");  // the raw value, nothing added
  const CtlRun read_json = ctl_at(port, {"get", "users/42", "--json"});
  REQUIRE(read_json.code == kExitOk);
  const json value = json::parse(read_json.out);
  REQUIRE(value["key"] == "users/42");
  REQUIRE(value["value"] == "world");
  REQUIRE(value["value_base64"] == "d29ybGQ=");
  REQUIRE(value["version"] == write["version"]);
  REQUIRE(value["timestamp_us"] == write["timestamp_us"]);
}

TEST_CASE("squallctl put - reads the value from stdin, bytes kept exactly") {
  ServerFixture fixture;
  const std::uint16_t port = fixture.server->port();
  std::string binary;
  for (int i = 0; i < 256; ++i) binary += static_cast<char>(i);
  REQUIRE(ctl_at(port, {"put", "bin", "-"}, binary).code == kExitOk);
  const CtlRun read = ctl_at(port, {"get", "bin"});
  REQUIRE(read.code == kExitOk);
  REQUIRE(read.out == binary);
  const CtlRun read_json = ctl_at(port, {"--json", "get", "bin"});
  const json value = json::parse(read_json.out);
  REQUIRE_FALSE(value.contains("value"));  // not UTF-8: base64 only
  REQUIRE(base64_decode(value["value_base64"].get<std::string>()).value() == binary);
}

TEST_CASE("squallctl get --version, --at and --stable read the past and the local replica") {
  ServerFixture fixture;
  const std::uint16_t port = fixture.server->port();
  const std::uint64_t first = put_version(port, "k", "one");
  const CtlRun first_json = ctl_at(port, {"--json", "get", "k"});
  const std::uint64_t first_time = json::parse(first_json.out)["timestamp_us"];
  put_version(port, "k", "two");

  REQUIRE(ctl_at(port, {"get", "k", "--version", std::to_string(first)}).out == "one");
  REQUIRE(ctl_at(port, {"get", "k", "--at", std::to_string(first_time)}).out == "one");
  const CtlRun rfc3339 = ctl_at(port, {"get", "k", "--at", format_time_us(first_time)});
  CAPTURE(rfc3339.err);
  REQUIRE(rfc3339.out == "one");
  REQUIRE(ctl_at(port, {"get", "k", "--stable"}).out == "two");
  REQUIRE(ctl_at(port, {"get", "k", "--at", "yesterday"}).code == kExitUsage);
  REQUIRE(ctl_at(port, {"get", "k", "--at", "1", "--version", "1"}).code == kExitUsage);
}

TEST_CASE("squallctl cas: each condition, and 412 as exit code 3 with the current version") {
  ServerFixture fixture;
  const std::uint16_t port = fixture.server->port();
  REQUIRE(ctl_at(port, {"cas", "k", "a", "--if-exists"}).code == kExitPrecondition);
  REQUIRE(ctl_at(port, {"cas", "k", "a", "--if-absent"}).code == kExitOk);
  const CtlRun again = ctl_at(port, {"cas", "k", "b", "--if-absent"});
  REQUIRE(again.code == kExitPrecondition);
  REQUIRE(again.err.find("precondition_failed") != std::string::npos);
  REQUIRE(again.err.find("current version") != std::string::npos);

  const CtlRun current = ctl_at(port, {"--json", "get", "k"});
  const std::uint64_t version = json::parse(current.out)["version"];
  const CtlRun stale = ctl_at(port, {"--json", "cas", "k", "c", "--if-version",
                                     std::to_string(version + 1)});
  REQUIRE(stale.code == kExitPrecondition);
  REQUIRE(json::parse(stale.err)["current_version"] == version);
  REQUIRE(ctl_at(port, {"cas", "k", "d", "--if-version", std::to_string(version)}).code ==
          kExitOk);
  REQUIRE(ctl_at(port, {"cas", "k", "e", "--if-exists"}).code == kExitOk);
  REQUIRE(ctl_at(port, {"get", "k"}).out == "e");
  REQUIRE(ctl_at(port, {"cas", "k", "f"}).code == kExitUsage);  // no condition
  REQUIRE(ctl_at(port, {"cas", "k", "f", "--if-absent", "--if-exists"}).code == kExitUsage);
}

TEST_CASE("squallctl del: deletes then not found (1) and --if-version mismatch (3)") {
  ServerFixture fixture;
  const std::uint16_t port = fixture.server->port();
  const std::uint64_t version = put_version(port, "k", "v");
  REQUIRE(ctl_at(port, {"del", "k", "--if-version", std::to_string(version + 7)}).code ==
          kExitPrecondition);
  const CtlRun deleted = ctl_at(port, {"--json", "del", "k", "--if-version",
                                       std::to_string(version)});
  REQUIRE(deleted.code == kExitOk);
  REQUIRE(json::parse(deleted.out)["version"].get<std::uint64_t>() > version);
  const CtlRun again = ctl_at(port, {"del", "k"});
  REQUIRE(again.code == kExitNotFound);
  REQUIRE(again.err.find("not_found") != std::string::npos);
  REQUIRE(ctl_at(port, {"get", "k"}).code == kExitNotFound);
}

TEST_CASE("squallctl ls follows pagination: --limit, --all, prefix, --json") {
  ServerFixture fixture;
  const std::uint16_t port = fixture.server->port();
  for (int i = 0; i < 23; ++i) put_version(port, fmt::format("p/{:02}", i), "v");
  put_version(port, "q/other", "v");

  const CtlRun all = ctl_at(port, {"--json", "ls", "p/", "--all", "--page-size", "5"});
  REQUIRE(all.code == kExitOk);
  const json listed = json::parse(all.out);
  REQUIRE(listed["items"].size() == 23);
  REQUIRE(listed["next"].is_null());
  for (int i = 0; i < 23; ++i) REQUIRE(listed["items"][i]["key"] == fmt::format("p/{:02}", i));

  const CtlRun limited = ctl_at(port, {"--json", "ls", "p/", "--limit", "12", "--page-size", "5"});
  const json page = json::parse(limited.out);
  REQUIRE(page["items"].size() == 12);
  REQUIRE(page["next"] == "p/11");

  const CtlRun human = ctl_at(port, {"ls", "--limit", "3"});
  REQUIRE(human.code == kExitOk);
  REQUIRE(human.out.find("KEY") == 0);
  REQUIRE(human.out.find("p/02") != std::string::npos);
  REQUIRE(human.out.find("p/03") == std::string::npos);
  REQUIRE(human.err.find("more follow") != std::string::npos);
  REQUIRE(json::parse(ctl_at(port, {"--json", "ls"}).out)["items"].size() == 24);
}

TEST_CASE("squallctl history lists versions newest first, deletes included, paginated") {
  ServerFixture fixture;
  const std::uint16_t port = fixture.server->port();
  for (int i = 0; i < 4; ++i) put_version(port, "h", std::to_string(i));
  REQUIRE(ctl_at(port, {"del", "h"}).code == kExitOk);

  const CtlRun all = ctl_at(port, {"--json", "history", "h", "--page-size", "2"});
  REQUIRE(all.code == kExitOk);
  const json versions = json::parse(all.out)["versions"];
  REQUIRE(versions.size() == 5);
  REQUIRE(versions[0]["op"] == "delete");
  for (std::size_t i = 1; i < versions.size(); ++i) {
    REQUIRE(versions[i]["op"] == "put");
    REQUIRE(versions[i]["version"].get<std::uint64_t>() <
            versions[i - 1]["version"].get<std::uint64_t>());
  }
  const CtlRun two = ctl_at(port, {"history", "h", "--limit", "2"});
  REQUIRE(two.code == kExitOk);
  REQUIRE(two.out.find("delete") != std::string::npos);
  REQUIRE(two.err.find("older versions follow") != std::string::npos);
  REQUIRE(ctl_at(port, {"history", "nothing"}).code == kExitNotFound);
}

TEST_CASE("squallctl cluster and status") {
  ServerFixture fixture;
  const std::uint16_t port = fixture.server->port();
  const CtlRun cluster = ctl_at(port, {"cluster"});
  REQUIRE(cluster.code == kExitOk);
  REQUIRE(cluster.out.find("cluster test: view 1, leader 1") == 0);
  REQUIRE(cluster.out.find("active") != std::string::npos);
  const CtlRun cluster_json = ctl_at(port, {"cluster", "--json"});
  REQUIRE(json::parse(cluster_json.out)["view"]["members"].size() == 1);

  const CtlRun ready = ctl_at(port, {"status"});
  REQUIRE(ready.code == kExitOk);
  REQUIRE(ready.out.find("healthy  ready") != std::string::npos);

  const std::string dead = endpoint(dead_port());
  const CtlRun mixed = ctl({"--json", "--endpoints", endpoint(port) + "," + dead, "status"});
  REQUIRE(mixed.code == kExitUnavailable);
  const json nodes = json::parse(mixed.out)["endpoints"];
  REQUIRE(nodes.size() == 2);
  REQUIRE(nodes[0]["ready"] == true);
  REQUIRE(nodes[0]["members"] == 1);
  REQUIRE(nodes[1]["reachable"] == false);

  fixture.backend.set_ready(false);
  const CtlRun not_ready = ctl_at(port, {"status"});
  REQUIRE(not_ready.code == kExitUnavailable);
  REQUIRE(not_ready.out.find("not ready") != std::string::npos);
}

TEST_CASE("squallctl exit codes: unavailable (4), malformed key (2), usage (2), unreachable (4)") {
  ServerFixture fixture;
  const std::uint16_t port = fixture.server->port();
  REQUIRE(ctl_at(port, {"get", std::string("bad\x01key")}).code == kExitUsage);
  REQUIRE(ctl_at(port, {"get", std::string(5000, 'k')}).code == kExitUsage);  // 414
  REQUIRE(ctl_at(port, {"frobnicate"}).code == kExitUsage);
  REQUIRE(ctl_at(port, {}).code == kExitUsage);
  const CtlRun help = ctl({"--help"});
  REQUIRE(help.code == kExitOk);
  REQUIRE(help.out.find("Exit codes") != std::string::npos);

  fixture.backend.set_unavailable(true);
  const CtlRun unavailable = ctl_at(port, {"put", "k", "v"});
  REQUIRE(unavailable.code == kExitUnavailable);
  REQUIRE(unavailable.err.find("retry after 7 s") != std::string::npos);
  const CtlRun unreachable = ctl({"--endpoints", endpoint(dead_port()), "get", "k"});
  REQUIRE(unreachable.code == kExitUnavailable);
  REQUIRE(unreachable.err.find("no endpoint reachable") != std::string::npos);
  REQUIRE(ctl({"--endpoints", "nonsense", "get", "k"}).code == kExitUsage);
}

TEST_CASE("squallctl fails over from a dead endpoint to a live one (flag and environment)") {
  ServerFixture fixture;
  const std::string live = endpoint(fixture.server->port());
  const std::string dead = endpoint(dead_port());
  REQUIRE(ctl({"--endpoints", dead + "," + live, "put", "k", "v"}).code == kExitOk);
  REQUIRE(ctl({"get", "k"}, {}, dead + "," + live).out == "v");
  // The flag wins over the environment.
  REQUIRE(ctl({"--endpoints", live, "get", "k"}, {}, dead).out == "v");
  REQUIRE(ctl({"get", "k"}, {}, dead).code == kExitUnavailable);
}

TEST_CASE("squallctl --config takes the endpoint from the node's rest.listen") {
  ServerFixture fixture;
  static std::atomic<int> counter{0};
  const auto file = std::filesystem::temp_directory_path() /
                    fmt::format("squallctl-config-{}-{}.yaml", ::getpid(), counter++);
  {
    std::ofstream yaml(file);
    yaml << "node:\n  id: 3\n  data_dir: /tmp/unused\nrest:\n  listen: \"0.0.0.0:"
         << fixture.server->port() << "\"\n";
  }
  REQUIRE(ctl_at(fixture.server->port(), {"put", "k", "from-config"}).code == kExitOk);
  const CtlRun read = ctl({"--config", file.string(), "get", "k"});
  CAPTURE(read.err);
  REQUIRE(read.out == "from-config");
  REQUIRE(ctl({"--config", "/nonexistent/node.yaml", "get", "k"}).code == kExitUsage);
  std::filesystem::remove(file);
}

}  // namespace squall::ctl::testing
