// Deterministic simulations of whole clusters running the ordered multicast.
#include <catch2/catch.hpp>

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
  std::uint64_t deliveries = 0;
  for (std::uint64_t seed : seeds_to_run(1, 2000)) {
    Scenario scenario = random_scenario(seed);
    RunResult result = run_scenario(scenario);
    require_clean(scenario, result);
    deliveries += result.deliveries;
  }
  REQUIRE(deliveries > 0);
}

TEST_CASE("The same seed replays the same run") {
  for (std::uint64_t seed : seeds_to_run(7001, 20)) {
    Scenario scenario = random_scenario(seed);
    RunResult first = run_scenario(scenario);
    RunResult second = run_scenario(scenario);
    INFO(scenario.describe());
    REQUIRE(first.trace_hash == second.trace_hash);
    REQUIRE(first.deliveries == second.deliveries);
    REQUIRE(first.violations == second.violations);
  }
}
