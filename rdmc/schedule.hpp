// RDMC block schedules: which block each member sends to and receives from whom, per step.
//
// A message of `blocks` blocks goes from rank 0 (its sender) to ranks 1..members-1. Time is
// cut into steps; in one step a member sends at most one block and receives at most one block
// (the one-port model). A schedule is a pure function of (algorithm, members, blocks, rank,
// step): every member computes its own part with no communication, and all members agree.
//
// Guarantees, checked exhaustively by test/rdmc/schedule_test.cpp for every algorithm, every
// group size 1..32 and every block count 1..64:
// - every rank other than 0 receives every block exactly once;
// - a rank sends a block only if it received it in an earlier step (rank 0 has all blocks);
// - per step, each rank sends at most one block and receives at most one block;
// - the last transfer happens in step total_steps() - 1.
//
// Step counts (n = members, b = blocks, n >= 2; n = 1 takes zero steps):
//   binomial_pipeline  b + ceil(log2 n) - 1   (the one-port lower bound, for every n)
//   chain              b + n - 2
//   sequential         b * (n - 1)
//   tree               b * ceil(log2 n)
// docs/rdmc.md describes each algorithm with a worked example.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace squall::rdmc {

// Listed in configuration files by name; the numbers are not stored anywhere, but keep them
// in the order of config's RdmcAlgorithm (do not renumber).
enum class Algorithm : std::uint8_t { binomial_pipeline = 0, chain = 1, sequential = 2, tree = 3 };

std::string_view algorithm_name(Algorithm algorithm);
Result<Algorithm> parse_algorithm(std::string_view name);

// Limits of the schedule functions. Callers validate their inputs against these; the
// functions assert them.
inline constexpr std::uint32_t kMaxMembers = 1024;
inline constexpr std::uint32_t kMaxBlocks = std::uint32_t{1} << 24;

// One block moving from one rank to another in one step.
struct Transfer {
  std::uint32_t from = 0;   // rank of the sending member
  std::uint32_t to = 0;     // rank of the receiving member
  std::uint32_t block = 0;  // block index, 0..blocks-1
  bool operator==(const Transfer&) const = default;
};

// What a schedule depends on. Ranks are positions in the message's member order, the sender
// being rank 0. REQUIRES: 1 <= members <= kMaxMembers, 1 <= blocks <= kMaxBlocks.
struct Schedule {
  Algorithm algorithm = Algorithm::binomial_pipeline;
  std::uint32_t members = 1;
  std::uint32_t blocks = 1;
};

// Number of steps a schedule takes (0 when members == 1).
std::uint64_t total_steps(Algorithm algorithm, std::uint32_t members, std::uint32_t blocks);
std::uint64_t total_steps(const Schedule& schedule);

// The block `rank` sends in `step`, if any. Steps at or past total_steps() have none.
// REQUIRES: rank < schedule.members.
std::optional<Transfer> outgoing(const Schedule& schedule, std::uint32_t rank,
                                 std::uint64_t step);

// The block `rank` receives in `step`, if any. Consistent with outgoing(): when
// incoming(s, r, t) is set to x, outgoing(s, x.from, t) is x, and the other way round.
std::optional<Transfer> incoming(const Schedule& schedule, std::uint32_t rank,
                                 std::uint64_t step);

// Every transfer of `step`, ordered by sending rank.
std::vector<Transfer> transfers_at(const Schedule& schedule, std::uint64_t step);

// ceil(log2 value) and floor(log2 value) for value >= 1.
std::uint32_t ceil_log2(std::uint32_t value);
std::uint32_t floor_log2(std::uint32_t value);

}  // namespace squall::rdmc
