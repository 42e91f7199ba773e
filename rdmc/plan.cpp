#include "rdmc/plan.hpp"

#include <algorithm>

#include "common/assert.hpp"

namespace squall::rdmc {
namespace {

void insert_sorted_unique(std::vector<std::uint32_t>& ranks, std::uint32_t rank) {
  const auto position = std::lower_bound(ranks.begin(), ranks.end(), rank);
  if (position == ranks.end() || *position != rank) ranks.insert(position, rank);
}

}  // namespace

Plan make_plan(const Schedule& schedule, std::uint32_t rank) {
  Plan plan;
  const std::uint64_t steps = total_steps(schedule);
  for (std::uint64_t step = 0; step < steps; ++step) {
    if (const auto out = outgoing(schedule, rank, step)) {
      plan.sends.push_back(*out);
      insert_sorted_unique(plan.downstream, out->to);
    }
    if (const auto in = incoming(schedule, rank, step)) {
      ++plan.receives;
      insert_sorted_unique(plan.upstream, in->from);
    }
  }
  SQUALL_ASSERT(plan.receives == (rank == 0 ? 0 : schedule.blocks),
                "rank {} receives {} of {} blocks", rank, plan.receives, schedule.blocks);
  return plan;
}

std::uint64_t block_count(std::uint64_t size_bytes, std::uint64_t block_size_bytes) {
  SQUALL_ASSERT(size_bytes >= 1 && block_size_bytes >= 1, "blocks of an empty message");
  return (size_bytes + block_size_bytes - 1) / block_size_bytes;
}

std::uint64_t block_length(std::uint64_t size_bytes, std::uint64_t block_size_bytes,
                           std::uint32_t block) {
  const std::uint64_t start = std::uint64_t{block} * block_size_bytes;
  SQUALL_ASSERT(start < size_bytes, "block {} past the end of {} bytes", block, size_bytes);
  return std::min(block_size_bytes, size_bytes - start);
}

}  // namespace squall::rdmc
