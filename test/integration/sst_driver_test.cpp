// Multi-process tests of SST, failure detection and SMC over real libfabric (tcp, loopback):
// each test runs sst_node processes (sst_node.cpp) and checks what they report. Waits are
// bounded by generous safety timeouts so a broken build fails instead of hanging; assertions
// are on events and data, never on how long something took.
#include <signal.h>

#include <catch2/catch.hpp>

#include "sst_cluster.hpp"
#include "sst_messages.hpp"

namespace squall::integration {
namespace {

constexpr std::uint64_t kSafetyMs = 60'000;
constexpr std::uint64_t kSeed = 20240611;

#define REQUIRE_OK(expr)                 \
  do {                                   \
    ::squall::Status status_ = (expr);   \
    INFO(status_.to_string());           \
    REQUIRE(status_.is_ok());            \
  } while (0)

template <typename T>
T require_ok(Result<T> result) {
  INFO(result.status().to_string());
  REQUIRE(result.is_ok());
  return std::move(result).value();
}

std::unique_ptr<Cluster> start_cluster(std::vector<std::string> args,
                                       std::vector<std::uint32_t> ids = {1, 2, 3}) {
  ClusterOptions options;
  options.program = SQUALL_SST_NODE_PATH;
  options.ids = std::move(ids);
  options.common_args = std::move(args);
  options.common_args.insert(options.common_args.end(),
                             {"--idle", "sleep", "--safety-timeout-ms", "90000"});
  return require_ok(Cluster::start(options));
}

struct Traffic {
  std::string mode = "smc";
  std::uint64_t messages = 0;
  std::size_t size_min = 0;
  std::size_t size_max = 0;
  std::size_t window = 8;
  std::string senders;  // empty: all
  // Failure detection is not under test in the delivery tests: no stall of a loaded machine
  // should look like a failure there.
  std::uint64_t heartbeat_ms = 50;
  std::uint64_t failure_timeout_ms = 20'000;

  std::vector<std::string> args() const {
    std::vector<std::string> list = {"--mode", mode, "--messages", std::to_string(messages),
                                     "--size-min", std::to_string(size_min), "--size-max",
                                     std::to_string(size_max), "--window", std::to_string(window),
                                     "--seed", std::to_string(kSeed), "--heartbeat-ms",
                                     std::to_string(heartbeat_ms), "--failure-timeout-ms",
                                     std::to_string(failure_timeout_ms)};
    if (!senders.empty()) list.insert(list.end(), {"--senders", senders});
    return list;
  }
  bool sends(std::uint32_t id) const {
    return senders.empty() || senders.find(std::to_string(id)) != std::string::npos;
  }
};

// Every node delivered every message of every sender, verified (in order, exactly once,
// intact: the node checks each one) and with the stream checksum the driver derives.
void check_complete_delivery(Cluster& cluster, const Traffic& traffic) {
  for (std::size_t index = 0; index < cluster.size(); ++index) {
    nlohmann::json result = require_ok(cluster.wait_event(index, "result", kSafetyMs));
    INFO("node " << cluster.id(index) << ": " << result.dump());
    for (std::size_t sender = 0; sender < cluster.size(); ++sender) {
      std::uint32_t id = cluster.id(sender);
      std::string key = std::to_string(id);
      std::uint64_t count = traffic.sends(id) ? traffic.messages : 0;
      CHECK(result["delivered"][key].get<std::uint64_t>() == count);
      CHECK(result["checksums"][key].get<std::uint64_t>() ==
            expected_checksum(kSeed, id, count, traffic.size_min, traffic.size_max));
    }
    CHECK(result["sent"].get<std::uint64_t>() ==
          (traffic.sends(cluster.id(index)) ? traffic.messages : 0));
  }
}

// What every node printed so far. Taken before Cluster::stop(): once nodes start to exit,
// the others rightly report them failed.
using Transcript = std::vector<std::vector<nlohmann::json>>;
Transcript transcript(const Cluster& cluster) {
  Transcript events;
  for (std::size_t index = 0; index < cluster.size(); ++index) {
    events.push_back(cluster.events(index));
  }
  return events;
}

void check_no_suspicion(const Transcript& events) {
  for (std::size_t index = 0; index < events.size(); ++index) {
    for (const nlohmann::json& event : events[index]) {
      INFO("node index " << index << ": " << event.dump());
      CHECK(event["event"] != "suspected");
    }
  }
}

std::size_t suspicions_of(const Transcript& events, std::size_t index, std::uint32_t suspect) {
  std::size_t found = 0;
  for (const nlohmann::json& event : events[index]) {
    if (event["event"] == "suspected" && event["suspect"] == suspect) ++found;
  }
  return found;
}

Cluster::Filter suspects(std::uint32_t id) {
  return [id](const nlohmann::json& event) { return event["suspect"] == id; };
}

TEST_CASE("SMC over libfabric: three senders, random sizes, every message verified") {
  Traffic traffic;
  traffic.messages = 3000;
  traffic.size_max = 512;
  auto cluster = start_cluster(traffic.args());
  REQUIRE_OK(cluster->go());
  check_complete_delivery(*cluster, traffic);
  Transcript events = transcript(*cluster);
  REQUIRE_OK(cluster->stop(kSafetyMs));
  check_no_suspicion(events);
}

TEST_CASE("SMC over libfabric: one sender, window 2, sizes up to the slot payload") {
  Traffic traffic;
  traffic.messages = 2000;
  traffic.size_max = 1024;
  traffic.window = 2;
  traffic.senders = "2";
  auto cluster = start_cluster(traffic.args());
  REQUIRE_OK(cluster->go());
  check_complete_delivery(*cluster, traffic);
  Transcript events = transcript(*cluster);
  REQUIRE_OK(cluster->stop(kSafetyMs));
  check_no_suspicion(events);
}

TEST_CASE("SMC over libfabric: five members, two senders, fixed-size messages") {
  Traffic traffic;
  traffic.messages = 1000;
  traffic.size_min = 64;
  traffic.size_max = 64;
  traffic.window = 4;
  traffic.senders = "1,5";
  auto cluster = start_cluster(traffic.args(), {1, 2, 3, 4, 5});
  REQUIRE_OK(cluster->go());
  check_complete_delivery(*cluster, traffic);
  Transcript events = transcript(*cluster);
  REQUIRE_OK(cluster->stop(kSafetyMs));
  check_no_suspicion(events);
}

TEST_CASE("Point-to-point baseline over libfabric delivers the same streams") {
  Traffic traffic;
  traffic.mode = "p2p";
  traffic.messages = 2000;
  traffic.size_min = 8;
  traffic.size_max = 1024;
  auto cluster = start_cluster(traffic.args());
  REQUIRE_OK(cluster->go());
  check_complete_delivery(*cluster, traffic);
  REQUIRE_OK(cluster->stop(kSafetyMs));
}

TEST_CASE("kill -9 of one member: both survivors suspect it, and only it") {
  auto cluster = start_cluster({"--mode", "idle", "--heartbeat-ms", "20",
                                "--failure-timeout-ms", "5000"});
  REQUIRE_OK(cluster->go());
  cluster->signal(2, SIGKILL);
  for (std::size_t survivor : {0, 1}) {
    nlohmann::json event =
        require_ok(cluster->wait_event(survivor, "suspected", kSafetyMs, suspects(3)));
    INFO(event.dump());
    CHECK(event["node"] == cluster->id(survivor));
  }
  Transcript events = transcript(*cluster);
  REQUIRE_OK(cluster->stop(kSafetyMs));
  for (std::size_t survivor : {0, 1}) {
    CHECK(suspicions_of(events, survivor, 3) == 1);
    CHECK(suspicions_of(events, survivor, cluster->id(1 - survivor)) == 0);
  }
}

TEST_CASE("kill -9 during SMC traffic: survivors deliver each other's streams whole") {
  Traffic traffic;
  traffic.messages = 4000;
  traffic.size_max = 256;
  std::vector<std::string> args = traffic.args();
  args.insert(args.end(), {"--progress-ms", "5"});
  auto cluster = start_cluster(args);
  REQUIRE_OK(cluster->go());
  // Kill once traffic flows (if it already finished, the checks below still hold).
  require_ok(cluster->wait_event(0, "progress", kSafetyMs, [](const nlohmann::json& event) {
    return event["delivered_total"].get<std::uint64_t>() > 0;
  }));
  cluster->signal(2, SIGKILL);
  for (std::size_t survivor : {0, 1}) {
    nlohmann::json result = require_ok(cluster->wait_event(survivor, "result", kSafetyMs));
    INFO("node " << cluster->id(survivor) << ": " << result.dump());
    for (std::uint32_t id : {1u, 2u}) {
      std::string key = std::to_string(id);
      CHECK(result["delivered"][key] == traffic.messages);
      CHECK(result["checksums"][key].get<std::uint64_t>() ==
            expected_checksum(kSeed, id, traffic.messages, 0, traffic.size_max));
    }
    // From the dead sender: a verified prefix of its stream.
    std::uint64_t prefix = result["delivered"]["3"].get<std::uint64_t>();
    CHECK(prefix <= traffic.messages);
    CHECK(result["checksums"]["3"].get<std::uint64_t>() ==
          expected_checksum(kSeed, 3, prefix, 0, traffic.size_max));
  }
  REQUIRE_OK(cluster->stop(kSafetyMs));
}

TEST_CASE("SIGSTOP longer than the failure timeout: both survivors suspect the member") {
  auto cluster = start_cluster({"--mode", "idle", "--heartbeat-ms", "20",
                                "--failure-timeout-ms", "1000"});
  REQUIRE_OK(cluster->go());
  cluster->signal(2, SIGSTOP);
  for (std::size_t survivor : {0, 1}) {
    nlohmann::json event =
        require_ok(cluster->wait_event(survivor, "suspected", kSafetyMs, suspects(3)));
    INFO(event.dump());
    // The connection stays up while the process is stopped: the heartbeat timeout (directly or
    // spread through the other survivor's row) must be what found it.
    std::string reason = event["reason"].get<std::string>();
    CHECK(reason.rfind("transport", 0) == std::string::npos);
  }
  cluster->signal(2, SIGKILL);
  REQUIRE_OK(cluster->stop(kSafetyMs));
}

TEST_CASE("SIGSTOP during SMC traffic: suspected by timeout, survivors finish their streams") {
  Traffic traffic;
  traffic.messages = 4000;
  traffic.size_max = 256;
  traffic.heartbeat_ms = 20;
  traffic.failure_timeout_ms = 1000;
  std::vector<std::string> args = traffic.args();
  args.insert(args.end(), {"--progress-ms", "5"});
  auto cluster = start_cluster(args);
  REQUIRE_OK(cluster->go());
  require_ok(cluster->wait_event(0, "progress", kSafetyMs, [](const nlohmann::json& event) {
    return event["delivered_total"].get<std::uint64_t>() > 0;
  }));
  cluster->signal(2, SIGSTOP);
  for (std::size_t survivor : {0, 1}) {
    nlohmann::json event =
        require_ok(cluster->wait_event(survivor, "suspected", kSafetyMs, suspects(3)));
    INFO(event.dump());
    CHECK(event["reason"].get<std::string>().rfind("transport", 0) == std::string::npos);
    nlohmann::json result = require_ok(cluster->wait_event(survivor, "result", kSafetyMs));
    INFO("node " << cluster->id(survivor) << ": " << result.dump());
    for (std::uint32_t id : {1u, 2u}) {
      std::string key = std::to_string(id);
      CHECK(result["delivered"][key] == traffic.messages);
      CHECK(result["checksums"][key].get<std::uint64_t>() ==
            expected_checksum(kSeed, id, traffic.messages, 0, traffic.size_max));
    }
    std::uint64_t prefix = result["delivered"]["3"].get<std::uint64_t>();
    CHECK(result["checksums"]["3"].get<std::uint64_t>() ==
          expected_checksum(kSeed, 3, prefix, 0, traffic.size_max));
  }
  cluster->signal(2, SIGKILL);
  REQUIRE_OK(cluster->stop(kSafetyMs));
}

}  // namespace
}  // namespace squall::integration
