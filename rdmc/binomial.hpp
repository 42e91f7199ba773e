// The binomial pipeline schedule (internal to rdmc/; callers use schedule.hpp).
//
// Members 0..N-1 (N = 2^l, l = floor(log2 members)) are the vertices of an l-dimensional
// hypercube; in step t every vertex exchanges with its neighbour across dimension t mod l.
// Ranks N..members-1 are "twins": rank N-1+v shares vertex v (1 <= v <= members-N) with
// rank v, and the two split that vertex's work. docs/rdmc.md gives the construction and the
// argument for why it delivers every block exactly once.
#pragma once

#include <cstdint>
#include <optional>

#include "rdmc/schedule.hpp"

namespace squall::rdmc::detail {

std::uint64_t binomial_total_steps(std::uint32_t members, std::uint32_t blocks);

std::optional<Transfer> binomial_outgoing(std::uint32_t members, std::uint32_t blocks,
                                          std::uint32_t rank, std::uint64_t step);

std::optional<Transfer> binomial_incoming(std::uint32_t members, std::uint32_t blocks,
                                          std::uint32_t rank, std::uint64_t step);

}  // namespace squall::rdmc::detail
