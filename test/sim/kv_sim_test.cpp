// The replicated KV shard in the deterministic simulator (test/sim/kv_cluster.hpp).
#include <cstdlib>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "kv_cluster.hpp"

using namespace squall;
using namespace squall::sim;

namespace {

// SQUALL_SIM_SEED=<n> runs that seed only; SQUALL_SIM_SEEDS=<n> changes the count.
std::vector<std::uint64_t> kv_seeds(std::uint64_t first, std::uint64_t count) {
  if (const char* only = std::getenv("SQUALL_SIM_SEED")) return {std::strtoull(only, nullptr, 10)};
  if (const char* many = std::getenv("SQUALL_SIM_SEEDS")) count = std::strtoull(many, nullptr, 10);
  std::vector<std::uint64_t> seeds;
  for (std::uint64_t seed = first; seed < first + count; ++seed) seeds.push_back(seed);
  return seeds;
}

}  // namespace

TEST_CASE("Replicated KV: identical replicas, one winner per expected version, no lost ack") {
  KvSimReport total;
  std::size_t runs = 0;
  for (std::uint64_t seed : kv_seeds(1, 300)) {
    KvSimOptions options = random_kv_options(seed);
    KvSimReport report = run_kv_sim(options);
    INFO(options.describe());
    INFO("replay: SQUALL_SIM_SEED=" << seed);
    for (const std::string& violation : report.violations) INFO(violation);
    if (!report.violations.empty()) FAIL_CHECK(report.violations.front());
    REQUIRE(report.violations.empty());
    ++runs;
    total.requests += report.requests;
    total.acknowledged += report.acknowledged;
    total.race_wins += report.race_wins;
    total.race_losses += report.race_losses;
    total.applied += report.applied;
    total.elapsed_us = std::max(total.elapsed_us, report.elapsed_us);
  }
  fmt::print("{} runs: {} requests acknowledged, {} race wins and {} race losses, {} applies, "
             "longest run {} us simulated\n", runs, total.acknowledged, total.race_wins,
             total.race_losses, total.applied, total.elapsed_us);
  CHECK(total.race_losses > 0);
}

TEST_CASE("Replicated KV: a seed replays to the same outcome") {
  KvSimOptions options = random_kv_options(77);
  KvSimReport a = run_kv_sim(options);
  KvSimReport b = run_kv_sim(options);
  CHECK(a.violations.empty());
  CHECK(a.applied == b.applied);
  CHECK(a.race_wins == b.race_wins);
  CHECK(a.elapsed_us == b.elapsed_us);
}
