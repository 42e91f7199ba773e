// Deterministic simulations of whole clusters running the ordered multicast.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "common/log.hpp"
#include "scenario.hpp"

using namespace squall;
using namespace squall::sim;

namespace {

void require_clean(const Scenario& scenario, const RunResult& result) {
  INFO(scenario.describe());
  INFO("replay: SQUALL_SIM_SEED=" << scenario.seed);
  for (const std::string& violation : result.violations) INFO(violation);
  if (!result.violations.empty()) FAIL_CHECK(result.violations.front());
  REQUIRE(result.violations.empty());
}

}  // namespace

TEST_CASE("Ordered multicast keeps every invariant under random faults (2000 seeds)") {
  RunResult total;
  std::size_t runs = 0;
  for (std::uint64_t seed : seeds_to_run(1, 2000)) {
    Scenario scenario = random_scenario(seed);
    RunResult result = run_scenario(scenario);
    require_clean(scenario, result);
    ++runs;
    total.deliveries += result.deliveries;
    total.generated += result.generated;
    total.large_sent += result.large_sent;
    total.null_batches += result.null_batches;
    total.would_block += result.would_block;
    total.settle_us = std::max(total.settle_us, result.settle_us);
  }
  fmt::print("{} runs: {} updates sent ({} by RDMC), {} deliveries, {} null batches, "
             "{} would_block, longest settle {} us\n", runs, total.generated, total.large_sent,
             total.deliveries, total.null_batches, total.would_block, total.settle_us);
  REQUIRE(total.deliveries > 0);
  if (runs > 100) REQUIRE(total.large_sent > 0);
}

TEST_CASE("The same seed replays the same run") {
  for (std::uint64_t seed : seeds_to_run(7001, 20)) {
    Scenario scenario = seed % 2 == 0 ? random_scenario(seed) : random_crash_scenario(seed);
    RunResult first = run_scenario(scenario);
    RunResult second = run_scenario(scenario);
    INFO(scenario.describe());
    REQUIRE(first.trace_hash == second.trace_hash);
    REQUIRE(first.deliveries == second.deliveries);
    REQUIRE(first.violations == second.violations);
  }
}

TEST_CASE("After a crash, survivors wedge and a ragged trim leaves them identical (500 seeds)") {
  // Suspicions and wedges are expected here: keep the log to errors.
  for (const char* module : {"sst", "core", "rdmc"}) {
    logger(module)->set_level(spdlog::level::err);
  }
  std::uint64_t trimmed = 0;
  for (std::uint64_t seed : seeds_to_run(10'001, 500)) {
    Scenario scenario = random_crash_scenario(seed);
    RunResult result = run_scenario(scenario);
    require_clean(scenario, result);
    trimmed += result.trimmed;
  }
  fmt::print("crash runs: {} updates delivered by ragged trims\n", trimmed);
  for (const char* module : {"sst", "core", "rdmc"}) {
    logger(module)->set_level(spdlog::level::info);
  }
}

TEST_CASE("Packed slots keep every invariant through crashes and ragged trims (400 seeds)") {
  // Suspicions and wedges are expected in the crash seeds: keep the log to errors.
  for (const char* module : {"sst", "core", "rdmc"}) {
    logger(module)->set_level(spdlog::level::err);
  }
  RunResult total;
  std::uint64_t crash_runs_with_packing = 0;
  for (std::uint64_t seed : seeds_to_run(20'001, 400)) {
    Scenario scenario = random_packing_scenario(seed);
    RunResult result = run_scenario(scenario);
    require_clean(scenario, result);
    total.deliveries += result.deliveries;
    total.packed_slots += result.packed_slots;
    total.packed_updates += result.packed_updates;
    total.trimmed += result.trimmed;
    if (scenario.crash_node && result.packed_slots > 0 && result.trimmed > 0) {
      ++crash_runs_with_packing;
    }
  }
  fmt::print("packing runs: {} deliveries, {} packed slots carrying {} updates, {} updates "
             "delivered by ragged trims, {} crash runs with packed slots and a trim\n",
             total.deliveries, total.packed_slots, total.packed_updates, total.trimmed,
             crash_runs_with_packing);
  for (const char* module : {"sst", "core", "rdmc"}) {
    logger(module)->set_level(spdlog::level::info);
  }
  REQUIRE(total.packed_slots > 0);
  REQUIRE(total.packed_updates >= 2 * total.packed_slots);
}
