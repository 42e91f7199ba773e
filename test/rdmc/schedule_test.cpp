// Exhaustive checks of the RDMC schedules: every algorithm, group sizes 1..32, block counts
// 1..64, every step, every rank.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <fmt/format.h>

#include "rdmc/schedule.hpp"

using namespace squall;
using namespace squall::rdmc;

namespace {

constexpr Algorithm kAlgorithms[] = {Algorithm::binomial_pipeline, Algorithm::chain,
                                     Algorithm::sequential, Algorithm::tree};

// The step counts, written independently of the implementation.
std::uint64_t expected_steps(Algorithm algorithm, std::uint64_t n, std::uint64_t b) {
  if (n == 1) return 0;
  std::uint64_t ceil_log = 0;
  while ((std::uint64_t{1} << ceil_log) < n) ++ceil_log;
  switch (algorithm) {
    case Algorithm::binomial_pipeline: return b + ceil_log - 1;
    case Algorithm::chain: return b + n - 2;
    case Algorithm::sequential: return b * (n - 1);
    case Algorithm::tree: return b * ceil_log;
  }
  return 0;
}

std::string describe(const Schedule& s, std::uint64_t step, const Transfer& t) {
  return fmt::format("{} n={} b={} step {}: {} -> {} block {}", algorithm_name(s.algorithm),
                     s.members, s.blocks, step, t.from, t.to, t.block);
}

// Checks one transfer against the state at the start of its step; "" when it is fine.
std::string check_transfer(const Schedule& s, std::uint64_t step, const Transfer& t,
                           const std::vector<std::vector<bool>>& have,
                           std::vector<bool>& receiving) {
  const std::string where = describe(s, step, t);
  if (t.from >= s.members || t.to >= s.members || t.block >= s.blocks) return where + ": range";
  if (t.from == t.to || t.to == 0) return where + ": bad receiver";
  if (receiving[t.to]) return where + ": receiver gets two blocks in one step";
  receiving[t.to] = true;
  if (!have[t.from][t.block]) return where + ": sender does not hold the block yet";
  if (have[t.to][t.block]) return where + ": receiver already holds the block";
  const auto in = incoming(s, t.to, step);
  if (!in || !(*in == t)) return where + ": incoming() disagrees";
  return "";
}

// Every incoming() of the step must match the sender's outgoing().
std::string check_incoming_side(const Schedule& s, std::uint64_t step) {
  for (std::uint32_t rank = 0; rank < s.members; ++rank) {
    const auto in = incoming(s, rank, step);
    if (!in) continue;
    const auto out = outgoing(s, in->from, step);
    if (!out || !(*out == *in)) return describe(s, step, *in) + ": outgoing() disagrees";
  }
  return "";
}

// Runs the schedule step by step; returns "" or the first violation.
std::string check_schedule(const Schedule& s) {
  const std::uint64_t total = total_steps(s);
  if (total != expected_steps(s.algorithm, s.members, s.blocks)) {
    return fmt::format("{} n={} b={}: {} steps", algorithm_name(s.algorithm), s.members,
                       s.blocks, total);
  }
  std::vector<std::vector<bool>> have(s.members, std::vector<bool>(s.blocks, false));
  have[0].assign(s.blocks, true);
  for (std::uint64_t step = 0; step < total + 2; ++step) {
    const std::vector<Transfer> transfers = transfers_at(s, step);
    if (step >= total && !transfers.empty()) return describe(s, step, transfers[0]) + ": late";
    if (step + 1 == total && transfers.empty()) return fmt::format("last step {} empty", step);
    std::vector<bool> receiving(s.members, false);
    for (const Transfer& t : transfers) {
      if (auto error = check_transfer(s, step, t, have, receiving); !error.empty()) return error;
    }
    if (auto error = check_incoming_side(s, step); !error.empty()) return error;
    for (const Transfer& t : transfers) have[t.to][t.block] = true;
  }
  for (std::uint32_t rank = 0; rank < s.members; ++rank) {
    for (std::uint32_t block = 0; block < s.blocks; ++block) {
      if (!have[rank][block]) return fmt::format("n={} b={}: rank {} misses block {}",
                                                 s.members, s.blocks, rank, block);
    }
  }
  return "";
}

void check_all_sizes(Algorithm algorithm) {
  for (std::uint32_t members = 1; members <= 32; ++members) {
    for (std::uint32_t blocks = 1; blocks <= 64; ++blocks) {
      const std::string error = check_schedule(Schedule{algorithm, members, blocks});
      if (!error.empty()) FAIL(error);
    }
  }
  SUCCEED(fmt::format("{}: 2048 schedules checked", algorithm_name(algorithm)));
}

// Every transfer of a schedule, one step per line: "step: from>to:block ...".
std::string transcript(const Schedule& s) {
  std::string text;
  for (std::uint64_t step = 0; step < total_steps(s); ++step) {
    text += fmt::format("{}:", step);
    for (const Transfer& t : transfers_at(s, step)) {
      text += fmt::format(" {}>{}:{}", t.from, t.to, t.block);
    }
    text += "\n";
  }
  return text;
}

}  // namespace

TEST_CASE("binomial pipeline: all sizes 1-32 members x 1-64 blocks") {
  check_all_sizes(Algorithm::binomial_pipeline);
}

TEST_CASE("chain: all sizes 1-32 members x 1-64 blocks") { check_all_sizes(Algorithm::chain); }

TEST_CASE("sequential: all sizes 1-32 members x 1-64 blocks") {
  check_all_sizes(Algorithm::sequential);
}

TEST_CASE("tree: all sizes 1-32 members x 1-64 blocks") { check_all_sizes(Algorithm::tree); }

TEST_CASE("binomial pipeline meets the one-port lower bound and the published count") {
  for (std::uint32_t members = 2; members <= kMaxMembers; ++members) {
    for (std::uint32_t blocks : {1U, 2U, 7U, 1000U}) {
      const std::uint64_t steps = total_steps(Algorithm::binomial_pipeline, members, blocks);
      // Lower bound: the sender emits one block per step, and after the last block leaves it
      // the number of holders of that block at most doubles per step.
      CHECK(steps == blocks - 1 + ceil_log2(members));
      // b + floor(log2 n): equal for non-powers of two, one step better for powers of two.
      const bool power_of_two = (members & (members - 1)) == 0;
      CHECK(steps + (power_of_two ? 1 : 0) == blocks + floor_log2(members));
    }
  }
}

TEST_CASE("schedules hold at larger sizes") {
  for (const Algorithm algorithm : kAlgorithms) {
    for (std::uint32_t members : {33U, 47U, 64U, 65U, 100U}) {
      for (std::uint32_t blocks : {1U, 3U, 100U}) {
        if (algorithm == Algorithm::sequential && members * blocks > 1000) continue;
        const std::string error = check_schedule(Schedule{algorithm, members, blocks});
        if (!error.empty()) FAIL(error);
      }
    }
  }
}

TEST_CASE("a group of one takes no steps") {
  for (const Algorithm algorithm : kAlgorithms) {
    const Schedule schedule{algorithm, 1, 5};
    CHECK(total_steps(schedule) == 0);
    CHECK_FALSE(outgoing(schedule, 0, 0).has_value());
    CHECK(transfers_at(schedule, 0).empty());
  }
}

TEST_CASE("worked examples of docs/rdmc.md") {
  CHECK(transcript(Schedule{Algorithm::binomial_pipeline, 4, 3}) ==
        "0: 0>1:0\n"
        "1: 0>2:1 1>3:0\n"
        "2: 0>1:2 2>3:1 3>2:0\n"
        "3: 0>2:2 1>3:2 3>1:1\n");
  CHECK(transcript(Schedule{Algorithm::binomial_pipeline, 6, 3}) ==
        "0: 0>1:0\n"
        "1: 0>2:1 1>3:0\n"
        "2: 0>4:2 2>3:1 3>5:0\n"
        "3: 0>5:2 1>4:0 3>1:1 4>3:2 5>2:0\n"
        "4: 1>4:1 2>5:1 4>1:2 5>2:2\n");
  CHECK(transcript(Schedule{Algorithm::chain, 4, 3}) ==
        "0: 0>1:0\n"
        "1: 0>1:1 1>2:0\n"
        "2: 0>1:2 1>2:1 2>3:0\n"
        "3: 1>2:2 2>3:1\n"
        "4: 2>3:2\n");
  CHECK(transcript(Schedule{Algorithm::sequential, 3, 2}) ==
        "0: 0>1:0\n"
        "1: 0>1:1\n"
        "2: 0>2:0\n"
        "3: 0>2:1\n");
  CHECK(transcript(Schedule{Algorithm::tree, 5, 2}) ==
        "0: 0>1:0\n"
        "1: 0>1:1\n"
        "2: 0>2:0 1>3:0\n"
        "3: 0>2:1 1>3:1\n"
        "4: 0>4:0\n"
        "5: 0>4:1\n");
}

TEST_CASE("algorithm names round-trip") {
  for (const Algorithm algorithm : kAlgorithms) {
    const auto parsed = parse_algorithm(algorithm_name(algorithm));
    REQUIRE(parsed.is_ok());
    CHECK(*parsed == algorithm);
  }
  CHECK(parse_algorithm("ring").status().code() == Code::invalid_argument);
}
