// Views and the shard assignment.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "core/view.hpp"
#include "fabric/sim_random.hpp"

using namespace squall;
using namespace squall::core;

namespace {

std::vector<NodeId> ids(std::initializer_list<std::uint32_t> values) {
  std::vector<NodeId> result;
  for (std::uint32_t value : values) result.push_back(NodeId{value});
  return result;
}

std::vector<NodeId> range_ids(std::uint32_t count, std::uint32_t first = 1) {
  std::vector<NodeId> result;
  for (std::uint32_t i = 0; i < count; ++i) result.push_back(NodeId{first + i});
  return result;
}

std::vector<Member> members_of(const std::vector<NodeId>& nodes) {
  std::vector<Member> members;
  for (NodeId node : nodes) {
    members.push_back({node, {"10.0.0." + std::to_string(node.value), 7000}});
  }
  return members;
}

// Checks the structural guarantees of any assignment.
void check_assignment(const ShardAssignment& assignment, const std::vector<NodeId>& members,
                      const ShardLayout& layout) {
  REQUIRE(assignment.shards.size() == layout.shards);
  std::size_t target = std::min<std::size_t>(layout.replicas_per_shard, members.size());
  std::vector<ShardId> under;
  for (std::uint32_t shard = 0; shard < layout.shards; ++shard) {
    const auto& nodes = assignment.shards[shard];
    REQUIRE(nodes.size() == target);
    REQUIRE(std::set<NodeId>(nodes.begin(), nodes.end()).size() == nodes.size());
    for (NodeId node : nodes) {
      REQUIRE(std::find(members.begin(), members.end(), node) != members.end());
    }
    if (nodes.size() < layout.replicas_per_shard) under.push_back(ShardId{shard});
  }
  REQUIRE(assignment.under_replicated == under);
}

}  // namespace

TEST_CASE("Enough members: shards are disjoint, contiguous in rank order, rest are spares") {
  ShardLayout layout{.shards = 2, .replicas_per_shard = 3};
  auto members = range_ids(7);
  ShardAssignment assignment = assign_shards(members, layout, nullptr);
  REQUIRE(assignment.shards[0] == ids({1, 2, 3}));
  REQUIRE(assignment.shards[1] == ids({4, 5, 6}));
  REQUIRE(assignment.under_replicated.empty());
  check_assignment(assignment, members, layout);
}

TEST_CASE("Fewer members than shards x replicas: members serve several shards, balanced") {
  ShardLayout layout{.shards = 3, .replicas_per_shard = 3};
  auto three = range_ids(3);
  ShardAssignment all = assign_shards(three, layout, nullptr);
  for (const auto& shard : all.shards) REQUIRE(shard == three);
  REQUIRE(all.under_replicated.empty());

  auto five = range_ids(5);
  ShardLayout two{.shards = 2, .replicas_per_shard = 3};
  ShardAssignment assignment = assign_shards(five, two, nullptr);
  REQUIRE(assignment.shards[0] == ids({1, 2, 3}));
  REQUIRE(assignment.shards[1] == ids({4, 5, 1}));
  check_assignment(assignment, five, two);
}

TEST_CASE("Fewer members than replicas: every shard is reported under-replicated") {
  ShardLayout layout{.shards = 2, .replicas_per_shard = 3};
  auto members = range_ids(2);
  ShardAssignment assignment = assign_shards(members, layout, nullptr);
  REQUIRE(assignment.shards[0] == members);
  REQUIRE(assignment.shards[1] == members);
  REQUIRE(assignment.under_replicated == std::vector<ShardId>{ShardId{0}, ShardId{1}});
  check_assignment(assignment, members, layout);
}

TEST_CASE("A view change keeps survivors in place and fills holes with spares first") {
  ShardLayout layout{.shards = 2, .replicas_per_shard = 3};
  ShardAssignment first = assign_shards(range_ids(7), layout, nullptr);
  // Node 2 (shard 0) leaves; node 7 is the spare.
  auto survivors = ids({1, 3, 4, 5, 6, 7});
  ShardAssignment second = assign_shards(survivors, layout, &first);
  REQUIRE(second.shards[0] == ids({1, 3, 7}));
  REQUIRE(second.shards[1] == ids({4, 5, 6}));
  // Node 4 leaves too: no spare is left, so the least-loaded other member joins shard 1.
  auto fewer = ids({1, 3, 5, 6, 7});
  ShardAssignment third = assign_shards(fewer, layout, &second);
  REQUIRE(third.shards[0] == ids({1, 3, 7}));
  REQUIRE(third.shards[1] == ids({5, 6, 1}));
  REQUIRE(third.under_replicated.empty());
  // Down to two members: both shards under-replicated, never a crash.
  ShardAssignment fourth = assign_shards(ids({6, 7}), layout, &third);
  REQUIRE(fourth.shards[0] == ids({7, 6}));
  REQUIRE(fourth.shards[1] == ids({6, 7}));
  REQUIRE(fourth.under_replicated.size() == 2);
}

TEST_CASE("Shard assignment is deterministic and well-formed for random inputs") {
  fabric::SimRandom random(42);
  for (int round = 0; round < 2000; ++round) {
    ShardLayout layout{.shards = static_cast<std::uint32_t>(random.between(1, 8)),
                       .replicas_per_shard = static_cast<std::uint32_t>(random.between(1, 5))};
    std::vector<NodeId> members;
    std::set<std::uint32_t> used;
    std::size_t count = random.between(1, 20);
    while (members.size() < count) {
      auto id = static_cast<std::uint32_t>(random.between(1, 100));
      if (used.insert(id).second) members.push_back(NodeId{id});
    }
    ShardAssignment first = assign_shards(members, layout, nullptr);
    INFO("round " << round);
    check_assignment(first, members, layout);
    REQUIRE(assign_shards(members, layout, nullptr) == first);
    // Remove a random member and add a new one: survivors keep their shards.
    std::vector<NodeId> next = members;
    next.erase(next.begin() + static_cast<std::ptrdiff_t>(random.below(next.size())));
    next.push_back(NodeId{1000 + static_cast<std::uint32_t>(round)});
    ShardAssignment second = assign_shards(next, layout, &first);
    check_assignment(second, next, layout);
    for (std::uint32_t shard = 0; shard < layout.shards; ++shard) {
      for (NodeId node : first.shards[shard]) {
        bool survived = std::find(next.begin(), next.end(), node) != next.end();
        bool kept = std::find(second.shards[shard].begin(), second.shards[shard].end(),
                              node) != second.shards[shard].end();
        REQUIRE(survived == kept);
      }
    }
  }
}

TEST_CASE("View::make validates its input and answers rank and shard queries") {
  ShardLayout layout{.shards = 2, .replicas_per_shard = 2};
  auto made = View::make(ViewId{3}, members_of(ids({10, 20, 30, 40, 50})), layout);
  REQUIRE(made.is_ok());
  const View& view = *made;
  REQUIRE(view.id() == ViewId{3});
  REQUIRE(view.size() == 5);
  REQUIRE(view.leader() == NodeId{10});
  REQUIRE(view.rank_of(NodeId{30}) == 2);
  REQUIRE_FALSE(view.rank_of(NodeId{31}).has_value());
  REQUIRE(view.member(1).address.host == "10.0.0.20");
  REQUIRE(view.shard_members(ShardId{1}) == ids({30, 40}));
  REQUIRE(view.shards_of(NodeId{40}) == std::vector<ShardId>{ShardId{1}});
  REQUIRE(view.shards_of(NodeId{50}).empty());  // a spare
  REQUIRE(view.shard_rank(ShardId{1}, NodeId{40}) == 1);
  REQUIRE_FALSE(view.shard_rank(ShardId{0}, NodeId{40}).has_value());
  REQUIRE(view.under_replicated().empty());

  auto next = View::make(ViewId{4}, members_of(ids({10, 30, 40, 50})), layout, &view);
  REQUIRE(next.is_ok());
  REQUIRE(next->shard_members(ShardId{0}) == ids({10, 50}));
  REQUIRE(next->shard_members(ShardId{1}) == ids({30, 40}));

  REQUIRE(View::make(ViewId{1}, {}, layout).status().code() == Code::invalid_argument);
  REQUIRE(View::make(ViewId{1}, members_of(ids({1, 2, 1})), layout).status().code() ==
          Code::invalid_argument);
  REQUIRE(View::make(ViewId{1}, members_of(ids({1})), ShardLayout{0, 1}).status().code() ==
          Code::invalid_argument);
  REQUIRE(View::make(ViewId{1}, members_of(ids({1})), ShardLayout{1, 65}).status().code() ==
          Code::invalid_argument);
  REQUIRE(View::make(ViewId{3}, members_of(ids({1})), layout, &view).status().code() ==
          Code::invalid_argument);
  REQUIRE(View::make(ViewId{1}, members_of(range_ids(1025)), layout).status().code() ==
          Code::invalid_argument);
}
