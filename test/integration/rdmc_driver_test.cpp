// Multi-process tests of RDMC (rdmc/group.hpp) over real libfabric (tcp, loopback): each test
// runs rdmc_node processes (rdmc_node.cpp) and checks what they report. Every node verifies
// every delivered message byte for byte (content derived from sender and index); the driver
// checks counts and stream checksums. Waits are bounded by safety timeouts; nothing asserts
// on time.
#include <signal.h>

#include <catch2/catch.hpp>

#include "sst_cluster.hpp"
#include "sst_messages.hpp"

namespace squall::integration {
namespace {

constexpr std::uint64_t kSafetyMs = 60'000;
constexpr std::uint64_t kSeed = 424242;
const std::vector<std::string> kAlgorithms = {"binomial_pipeline", "chain", "sequential",
                                              "tree"};

template <typename T>
T require_ok(Result<T> result) {
  INFO(result.status().to_string());
  REQUIRE(result.is_ok());
  return std::move(result).value();
}

struct RdmcRun {
  std::string mode = "rdmc";
  std::string algorithm = "binomial_pipeline";
  std::vector<std::uint32_t> ids = {1, 2, 3};
  std::string senders;  // empty: all
  std::uint64_t messages = 12;
  std::uint64_t block_bytes = 64 << 10;
  std::uint64_t size_min = 1;
  std::uint64_t size_max = (4 << 16) + 1000;
  std::uint64_t window = 3;
  std::uint64_t progress_ms = 0;

  std::vector<std::string> args() const {
    std::vector<std::string> list = {
        "--mode", mode, "--algorithm", algorithm, "--messages", std::to_string(messages),
        "--block-bytes", std::to_string(block_bytes), "--size-min", std::to_string(size_min),
        "--size-max", std::to_string(size_max), "--window", std::to_string(window), "--seed",
        std::to_string(kSeed), "--idle", "sleep", "--safety-timeout-ms", "90000"};
    if (!senders.empty()) list.insert(list.end(), {"--senders", senders});
    if (progress_ms > 0) list.insert(list.end(), {"--progress-ms", std::to_string(progress_ms)});
    return list;
  }
  bool sends(std::uint32_t id) const {
    return senders.empty() || ("," + senders + ",").find("," + std::to_string(id) + ",") !=
                                  std::string::npos;
  }
};

std::unique_ptr<Cluster> start(const RdmcRun& run) {
  ClusterOptions options;
  options.program = SQUALL_RDMC_NODE_PATH;
  options.ids = run.ids;
  options.common_args = run.args();
  return require_ok(Cluster::start(options));
}

// Starts the group, lets it run, and checks every node's complete, verified streams.
void run_and_check(const RdmcRun& run) {
  INFO(run.mode << " " << run.algorithm << ", " << run.ids.size() << " members, sizes "
                << run.size_min << ".." << run.size_max << ", blocks of " << run.block_bytes);
  auto cluster = start(run);
  REQUIRE(cluster->go().is_ok());
  for (std::size_t index = 0; index < cluster->size(); ++index) {
    nlohmann::json result = require_ok(cluster->wait_event(index, "result", kSafetyMs));
    INFO("node " << cluster->id(index) << ": " << result.dump());
    CHECK_FALSE(result.value("group_failed", false));
    for (std::uint32_t id : run.ids) {
      std::string key = std::to_string(id);
      std::uint64_t count = run.sends(id) ? run.messages : 0;
      CHECK(result["delivered"][key] == count);
      CHECK(result["checksums"][key].get<std::uint64_t>() ==
            expected_checksum(kSeed, id, count, run.size_min, run.size_max));
    }
    CHECK(result["sent"] == (run.sends(cluster->id(index)) ? run.messages : 0));
  }
  Status stopped = cluster->stop(kSafetyMs);
  INFO(stopped.to_string());
  CHECK(stopped.is_ok());
}

TEST_CASE("RDMC over libfabric: binomial pipeline, 3 members, all senders") {
  RdmcRun run;
  run_and_check(run);
}

TEST_CASE("RDMC over libfabric: chain, 3 members, all senders") {
  RdmcRun run;
  run.algorithm = "chain";
  run_and_check(run);
}

TEST_CASE("RDMC over libfabric: sequential, 3 members, all senders") {
  RdmcRun run;
  run.algorithm = "sequential";
  run_and_check(run);
}

TEST_CASE("RDMC over libfabric: tree, 3 members, all senders") {
  RdmcRun run;
  run.algorithm = "tree";
  run_and_check(run);
}

TEST_CASE("RDMC over libfabric: 5 members, small blocks, two senders, every algorithm") {
  for (const std::string& algorithm : kAlgorithms) {
    RdmcRun run;
    run.algorithm = algorithm;
    run.ids = {1, 2, 3, 4, 5};
    run.senders = "2,5";
    run.messages = 8;
    run.block_bytes = 4096;
    run.size_max = 100'000;
    run.window = 4;
    run_and_check(run);
  }
}

TEST_CASE("RDMC over libfabric: sizes at block boundaries, one sender") {
  constexpr std::uint64_t kBlock = 32 << 10;
  for (std::uint64_t size : {std::uint64_t{1}, kBlock - 1, kBlock, kBlock + 1, 3 * kBlock}) {
    RdmcRun run;
    run.senders = "3";
    run.messages = 6;
    run.block_bytes = kBlock;
    run.size_min = size;
    run.size_max = size;
    run.window = 2;
    run_and_check(run);
  }
}

TEST_CASE("Point-to-point RMA baseline over libfabric delivers the same streams") {
  RdmcRun run;
  run.mode = "p2p";
  run_and_check(run);
}

TEST_CASE("kill -9 during RDMC traffic: both survivors report the group failed by it") {
  RdmcRun run;
  run.messages = 1'000'000;  // runs until the kill
  run.size_max = 20'000;
  run.block_bytes = 4096;
  run.progress_ms = 5;
  auto cluster = start(run);
  REQUIRE(cluster->go().is_ok());
  require_ok(cluster->wait_event(0, "progress", kSafetyMs, [](const nlohmann::json& event) {
    return event["bytes_delivered"].get<std::uint64_t>() > 0;
  }));
  cluster->signal(2, SIGKILL);
  for (std::size_t survivor : {0, 1}) {
    nlohmann::json failed = require_ok(cluster->wait_event(survivor, "group_failed", kSafetyMs));
    INFO(failed.dump());
    CHECK(failed["member"] == 3);
    nlohmann::json result = require_ok(cluster->wait_event(survivor, "result", kSafetyMs));
    INFO(result.dump());
    CHECK(result["group_failed"] == true);
    // What was delivered before the failure is a verified prefix of each stream.
    for (std::uint32_t id : {1u, 2u, 3u}) {
      std::uint64_t prefix = result["delivered"][std::to_string(id)].get<std::uint64_t>();
      CHECK(result["checksums"][std::to_string(id)].get<std::uint64_t>() ==
            expected_checksum(kSeed, id, prefix, run.size_min, run.size_max));
    }
  }
  std::size_t reports = 0;
  for (std::size_t survivor : {0, 1}) {
    for (const nlohmann::json& event : cluster->events(survivor)) {
      reports += event["event"] == "group_failed" ? 1 : 0;
    }
  }
  CHECK(reports == 2);  // once per survivor
  REQUIRE(cluster->stop(kSafetyMs).is_ok());
}

}  // namespace
}  // namespace squall::integration
