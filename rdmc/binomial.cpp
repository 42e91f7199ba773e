#include "rdmc/binomial.hpp"

#include <algorithm>
#include <bit>

#include "common/assert.hpp"

namespace squall::rdmc::detail {
namespace {

// Geometry of one (members, blocks) binomial pipeline.
struct Cube {
  std::uint32_t members = 0;
  std::uint32_t blocks = 0;
  std::uint32_t dimensions = 0;  // l = floor(log2 members), >= 1
  std::uint32_t vertices = 0;    // 2^l
  std::uint64_t cube_steps = 0;  // steps of the hypercube phase: blocks + l - 1
  // True when some vertices hold twins: one extra step then hands over the twins' last
  // blocks (see final_exchange()).
  bool has_twins() const { return members > vertices; }
};

Cube make_cube(std::uint32_t members, std::uint32_t blocks) {
  SQUALL_ASSERT(members >= 2, "a binomial pipeline needs a receiver");
  Cube cube;
  cube.members = members;
  cube.blocks = blocks;
  cube.dimensions = floor_log2(members);
  cube.vertices = std::uint32_t{1} << cube.dimensions;
  cube.cube_steps = std::uint64_t{blocks} + cube.dimensions - 1;
  return cube;
}

std::uint32_t dimension_of(const Cube& cube, std::uint64_t step) {
  return static_cast<std::uint32_t>(step % cube.dimensions);
}

// A vertex is "high" in a step when its bit of that step's dimension is set.
bool high(const Cube& cube, std::uint32_t vertex, std::uint64_t step) {
  return ((vertex >> dimension_of(cube, step)) & 1U) != 0;
}

std::uint32_t vertex_of(const Cube& cube, std::uint32_t rank) {
  return rank < cube.vertices ? rank : rank - cube.vertices + 1;
}

bool twinned(const Cube& cube, std::uint32_t vertex) {
  return vertex != 0 && vertex + cube.vertices - 1 < cube.members;
}

std::uint32_t twin_rank(const Cube& cube, std::uint32_t vertex) {
  return vertex + cube.vertices - 1;
}

// The latest step before `step` in which `vertex` (non-zero) is high; none before step 0.
std::optional<std::uint64_t> last_high_before(const Cube& cube, std::uint32_t vertex,
                                              std::uint64_t step) {
  for (std::uint64_t back = 1; back <= cube.dimensions && back <= step; ++back) {
    if (high(cube, vertex, step - back)) return step - back;
  }
  return std::nullopt;
}

// A block arriving at a vertex in a hypercube step.
struct VertexReceipt {
  std::uint32_t from_vertex = 0;
  std::uint32_t block = 0;
};

// The hypercube schedule on an unbounded stream of blocks: block k leaves vertex 0 in step k
// towards vertex 2^(k mod l); in the next l-1 steps it doubles along the other dimensions
// (reaching every vertex whose bit k mod l is set), and in step k+l those vertices pass it
// across dimension k mod l to the rest. Blocks k >= blocks are stand-ins for the last block:
// after step blocks+l-2 each vertex holds exactly one of the stand-ins blocks-1..blocks+l-2
// (the one whose dimension is the vertex's first set bit in the order of the last l steps'
// dimensions), so clamping them delivers the last block exactly once and ends the pipeline
// in blocks+l-1 steps. Returns the (clamped) block `vertex` receives.
std::optional<VertexReceipt> vertex_receipt(const Cube& cube, std::uint32_t vertex,
                                            std::uint64_t step) {
  if (vertex == 0 || step >= cube.cube_steps) return std::nullopt;
  const std::uint32_t dimension = dimension_of(cube, step);
  const std::uint32_t neighbour = vertex ^ (std::uint32_t{1} << dimension);
  const auto signed_step = static_cast<std::int64_t>(step);
  std::int64_t virtual_block = 0;
  if (!high(cube, vertex, step)) {
    virtual_block = signed_step - cube.dimensions;  // the fill hop of an older block
  } else if (neighbour == 0) {
    virtual_block = signed_step;  // fresh from the sender
  } else {
    // The first set bit of the vertex in dimension order after this step's dimension names
    // the block whose doubling phase this is.
    std::uint32_t offset = 1;
    while (((vertex >> ((dimension + offset) % cube.dimensions)) & 1U) == 0) ++offset;
    virtual_block = signed_step + offset - cube.dimensions;
  }
  if (virtual_block < 0) return std::nullopt;
  const auto last_block = static_cast<std::int64_t>(cube.blocks) - 1;
  return VertexReceipt{neighbour, static_cast<std::uint32_t>(std::min(virtual_block, last_block))};
}

// Of a twinned vertex's two members, the one receiving from the neighbour vertex in `step`.
// The roles swap after every step in which the vertex is high: the member that received in a
// high step holds the block the vertex relays until its next high step, so it becomes the
// member that sends to neighbours.
std::uint32_t receiving_member(const Cube& cube, std::uint32_t vertex, std::uint64_t step) {
  if (!twinned(cube, vertex)) return vertex;
  const std::uint32_t rest_mask = (std::uint32_t{1} << (step % cube.dimensions)) - 1;
  const auto weight = static_cast<std::uint64_t>(std::popcount(vertex));
  const auto partial = static_cast<std::uint64_t>(std::popcount(vertex & rest_mask));
  const std::uint64_t flips = (step / cube.dimensions) * weight + partial;
  return flips % 2 == 0 ? vertex : twin_rank(cube, vertex);
}

std::uint32_t sending_member(const Cube& cube, std::uint32_t vertex, std::uint64_t step) {
  if (!twinned(cube, vertex)) return vertex;
  return receiving_member(cube, vertex, step) == vertex ? twin_rank(cube, vertex) : vertex;
}

// The block the receiving member of a twinned vertex hands to its twin in hypercube `step`:
// what it received in the previous step, or, in the first step after a role swap, what it
// received in its previous high step (which the twin has not seen yet).
std::optional<std::uint32_t> handed_block(const Cube& cube, std::uint32_t vertex,
                                          std::uint64_t step) {
  if (step == 0) return std::nullopt;
  std::uint64_t source_step = step - 1;
  if (high(cube, vertex, source_step)) {
    const auto previous = last_high_before(cube, vertex, source_step);
    if (!previous) return std::nullopt;
    source_step = *previous;
  }
  const auto receipt = vertex_receipt(cube, vertex, source_step);
  if (!receipt) return std::nullopt;
  return receipt->block;
}

// The extra last step of a group with twins: after the hypercube phase each twinned vertex
// has two blocks not yet handed over, one in each member; they swap them.
// `from_receiver` picks the direction: true = receiving member of the last hypercube step to
// its twin (the block received in that step), false = the twin back (the block received in
// the vertex's last high step before it).
std::optional<Transfer> final_exchange(const Cube& cube, std::uint32_t vertex,
                                       bool from_receiver) {
  const std::uint64_t last = cube.cube_steps - 1;
  const std::uint32_t receiver = receiving_member(cube, vertex, last);
  const std::uint32_t sender = sending_member(cube, vertex, last);
  std::optional<std::uint64_t> source_step = last;
  if (!from_receiver) source_step = last_high_before(cube, vertex, last);
  if (!source_step) return std::nullopt;
  const auto receipt = vertex_receipt(cube, vertex, *source_step);
  if (!receipt) return std::nullopt;
  if (from_receiver) return Transfer{receiver, sender, receipt->block};
  return Transfer{sender, receiver, receipt->block};
}

// The transfer `rank` makes in `step`.
std::optional<Transfer> member_outgoing(const Cube& cube, std::uint32_t rank,
                                        std::uint64_t step) {
  const std::uint32_t vertex = vertex_of(cube, rank);
  if (step == cube.cube_steps && twinned(cube, vertex)) {
    return final_exchange(cube, vertex, rank == receiving_member(cube, vertex, step - 1));
  }
  if (step >= cube.cube_steps) return std::nullopt;
  if (twinned(cube, vertex) && rank == receiving_member(cube, vertex, step)) {
    const auto block = handed_block(cube, vertex, step);
    if (!block) return std::nullopt;
    return Transfer{rank, sending_member(cube, vertex, step), *block};
  }
  const std::uint32_t neighbour = vertex ^ (std::uint32_t{1} << dimension_of(cube, step));
  const auto receipt = vertex_receipt(cube, neighbour, step);
  if (!receipt) return std::nullopt;
  return Transfer{rank, receiving_member(cube, neighbour, step), receipt->block};
}

std::optional<Transfer> member_incoming(const Cube& cube, std::uint32_t rank,
                                        std::uint64_t step) {
  const std::uint32_t vertex = vertex_of(cube, rank);
  if (step == cube.cube_steps && twinned(cube, vertex)) {
    return final_exchange(cube, vertex, rank != receiving_member(cube, vertex, step - 1));
  }
  if (step >= cube.cube_steps) return std::nullopt;
  if (twinned(cube, vertex) && rank == sending_member(cube, vertex, step)) {
    const auto block = handed_block(cube, vertex, step);
    if (!block) return std::nullopt;
    return Transfer{receiving_member(cube, vertex, step), rank, *block};
  }
  const auto receipt = vertex_receipt(cube, vertex, step);
  if (!receipt) return std::nullopt;
  return Transfer{sending_member(cube, receipt->from_vertex, step), rank, receipt->block};
}

}  // namespace

std::uint64_t binomial_total_steps(std::uint32_t members, std::uint32_t blocks) {
  if (members == 1) return 0;
  const Cube cube = make_cube(members, blocks);
  return cube.cube_steps + (cube.has_twins() ? 1 : 0);
}

std::optional<Transfer> binomial_outgoing(std::uint32_t members, std::uint32_t blocks,
                                          std::uint32_t rank, std::uint64_t step) {
  if (members == 1) return std::nullopt;
  const Cube cube = make_cube(members, blocks);
  return member_outgoing(cube, rank, step);
}

std::optional<Transfer> binomial_incoming(std::uint32_t members, std::uint32_t blocks,
                                          std::uint32_t rank, std::uint64_t step) {
  if (members == 1) return std::nullopt;
  const Cube cube = make_cube(members, blocks);
  return member_incoming(cube, rank, step);
}

}  // namespace squall::rdmc::detail
