// One member's part of one message's schedule, computed once per message from the pure
// schedule functions (schedule.hpp).
#pragma once

#include <cstdint>
#include <vector>

#include "rdmc/schedule.hpp"

namespace squall::rdmc {

struct Plan {
  std::vector<Transfer> sends;           // this rank's outgoing transfers, in step order
  std::vector<std::uint32_t> upstream;   // ranks this rank receives from, ascending, distinct
  std::vector<std::uint32_t> downstream; // ranks this rank sends to, ascending, distinct
  std::uint32_t receives = 0;            // incoming transfers: blocks for a receiver, 0 for rank 0
};

// REQUIRES: rank < schedule.members.
Plan make_plan(const Schedule& schedule, std::uint32_t rank);

// Bytes of block `block` of a message of `size_bytes` cut into `block_size_bytes` blocks.
std::uint64_t block_length(std::uint64_t size_bytes, std::uint64_t block_size_bytes,
                           std::uint32_t block);

// Number of blocks of a message: ceil(size / block size). REQUIRES: size_bytes >= 1.
std::uint64_t block_count(std::uint64_t size_bytes, std::uint64_t block_size_bytes);

}  // namespace squall::rdmc
