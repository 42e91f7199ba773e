#include "rdmc/schedule.hpp"

#include <bit>
#include <string>

#include "common/assert.hpp"
#include "rdmc/binomial.hpp"

namespace squall::rdmc {
namespace {

void check_schedule(const Schedule& schedule) {
  SQUALL_ASSERT(schedule.members >= 1 && schedule.members <= kMaxMembers,
                "schedule for {} members", schedule.members);
  SQUALL_ASSERT(schedule.blocks >= 1 && schedule.blocks <= kMaxBlocks, "schedule for {} blocks",
                schedule.blocks);
}

void check_rank(const Schedule& schedule, std::uint32_t rank) {
  check_schedule(schedule);
  SQUALL_ASSERT(rank < schedule.members, "rank {} of {} members", rank, schedule.members);
}

// Chain: rank r relays block t-r to rank r+1 in step t; blocks ripple down the line.
std::optional<Transfer> chain_outgoing(const Schedule& s, std::uint32_t rank, std::uint64_t step) {
  if (rank + 1 >= s.members || step < rank || step - rank >= s.blocks) return std::nullopt;
  return Transfer{rank, rank + 1, static_cast<std::uint32_t>(step - rank)};
}

std::optional<Transfer> chain_incoming(const Schedule& s, std::uint32_t rank, std::uint64_t step) {
  if (rank == 0) return std::nullopt;
  return chain_outgoing(s, rank - 1, step);
}

// Sequential: the sender sends all blocks to rank 1, then all to rank 2, and so on.
std::optional<Transfer> sequential_outgoing(const Schedule& s, std::uint32_t rank,
                                            std::uint64_t step) {
  if (rank != 0 || step >= total_steps(s)) return std::nullopt;
  const auto to = static_cast<std::uint32_t>(1 + step / s.blocks);
  return Transfer{0, to, static_cast<std::uint32_t>(step % s.blocks)};
}

std::optional<Transfer> sequential_incoming(const Schedule& s, std::uint32_t rank,
                                            std::uint64_t step) {
  const auto transfer = sequential_outgoing(s, 0, step);
  if (!transfer || transfer->to != rank) return std::nullopt;
  return transfer;
}

// Tree: in stage k (steps k*b .. k*b+b-1) every rank r < 2^k that holds the message sends all
// of it, block by block, to rank r + 2^k: a binomial tree, one whole message per edge.
std::optional<Transfer> tree_outgoing(const Schedule& s, std::uint32_t rank, std::uint64_t step) {
  if (step >= total_steps(s)) return std::nullopt;
  const std::uint64_t stage = step / s.blocks;
  const std::uint32_t span = std::uint32_t{1} << stage;
  if (rank >= span || rank + span >= s.members) return std::nullopt;
  return Transfer{rank, rank + span, static_cast<std::uint32_t>(step % s.blocks)};
}

std::optional<Transfer> tree_incoming(const Schedule& s, std::uint32_t rank, std::uint64_t step) {
  if (rank == 0 || step >= total_steps(s)) return std::nullopt;
  const std::uint32_t span = std::uint32_t{1} << floor_log2(rank);
  if (step / s.blocks != floor_log2(rank)) return std::nullopt;
  return Transfer{rank - span, rank, static_cast<std::uint32_t>(step % s.blocks)};
}

}  // namespace

std::string_view algorithm_name(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::binomial_pipeline: return "binomial_pipeline";
    case Algorithm::chain: return "chain";
    case Algorithm::sequential: return "sequential";
    case Algorithm::tree: return "tree";
  }
  SQUALL_UNREACHABLE("algorithm {}", static_cast<int>(algorithm));
}

Result<Algorithm> parse_algorithm(std::string_view name) {
  for (const Algorithm algorithm : {Algorithm::binomial_pipeline, Algorithm::chain,
                                    Algorithm::sequential, Algorithm::tree}) {
    if (algorithm_name(algorithm) == name) return algorithm;
  }
  return invalid_argument(
      "unknown RDMC algorithm '" + std::string(name) +
      "' (expected binomial_pipeline, chain, sequential or tree)");
}

std::uint32_t floor_log2(std::uint32_t value) {
  SQUALL_ASSERT(value >= 1, "log2 of 0");
  return static_cast<std::uint32_t>(std::bit_width(value)) - 1;
}

std::uint32_t ceil_log2(std::uint32_t value) {
  SQUALL_ASSERT(value >= 1, "log2 of 0");
  return value == 1 ? 0 : static_cast<std::uint32_t>(std::bit_width(value - 1));
}

std::uint64_t total_steps(Algorithm algorithm, std::uint32_t members, std::uint32_t blocks) {
  return total_steps(Schedule{algorithm, members, blocks});
}

std::uint64_t total_steps(const Schedule& schedule) {
  check_schedule(schedule);
  const std::uint64_t n = schedule.members;
  const std::uint64_t b = schedule.blocks;
  if (n == 1) return 0;
  switch (schedule.algorithm) {
    case Algorithm::binomial_pipeline: return detail::binomial_total_steps(schedule.members,
                                                                           schedule.blocks);
    case Algorithm::chain: return b + n - 2;
    case Algorithm::sequential: return b * (n - 1);
    case Algorithm::tree: return b * ceil_log2(schedule.members);
  }
  SQUALL_UNREACHABLE("algorithm {}", static_cast<int>(schedule.algorithm));
}

std::optional<Transfer> outgoing(const Schedule& schedule, std::uint32_t rank,
                                 std::uint64_t step) {
  check_rank(schedule, rank);
  switch (schedule.algorithm) {
    case Algorithm::binomial_pipeline:
      return detail::binomial_outgoing(schedule.members, schedule.blocks, rank, step);
    case Algorithm::chain: return chain_outgoing(schedule, rank, step);
    case Algorithm::sequential: return sequential_outgoing(schedule, rank, step);
    case Algorithm::tree: return tree_outgoing(schedule, rank, step);
  }
  SQUALL_UNREACHABLE("algorithm {}", static_cast<int>(schedule.algorithm));
}

std::optional<Transfer> incoming(const Schedule& schedule, std::uint32_t rank,
                                 std::uint64_t step) {
  check_rank(schedule, rank);
  switch (schedule.algorithm) {
    case Algorithm::binomial_pipeline:
      return detail::binomial_incoming(schedule.members, schedule.blocks, rank, step);
    case Algorithm::chain: return chain_incoming(schedule, rank, step);
    case Algorithm::sequential: return sequential_incoming(schedule, rank, step);
    case Algorithm::tree: return tree_incoming(schedule, rank, step);
  }
  SQUALL_UNREACHABLE("algorithm {}", static_cast<int>(schedule.algorithm));
}

std::vector<Transfer> transfers_at(const Schedule& schedule, std::uint64_t step) {
  check_schedule(schedule);
  std::vector<Transfer> transfers;
  for (std::uint32_t rank = 0; rank < schedule.members; ++rank) {
    if (const auto transfer = outgoing(schedule, rank, step)) transfers.push_back(*transfer);
  }
  return transfers;
}

}  // namespace squall::rdmc
