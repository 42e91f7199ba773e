#include "core/view.hpp"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

namespace squall::core {

Status ShardLayout::validate() const {
  if (shards < 1 || shards > kMaxShards) {
    return invalid_argument(fmt::format("shards {} outside 1..{}", shards, kMaxShards));
  }
  if (replicas_per_shard < 1 || replicas_per_shard > kMaxReplicasPerShard) {
    return invalid_argument(fmt::format("replicas_per_shard {} outside 1..{}",
                                        replicas_per_shard, kMaxReplicasPerShard));
  }
  return Status::ok();
}

namespace {

// Survivors of `previous` keep their shards, in their previous order, up to `target` each.
std::vector<std::vector<NodeId>> surviving_shards(std::span<const NodeId> members,
                                                  std::uint32_t shards, std::size_t target,
                                                  const ShardAssignment* previous) {
  std::vector<std::vector<NodeId>> result(shards);
  if (previous == nullptr) return result;
  std::unordered_set<NodeId> present(members.begin(), members.end());
  std::size_t kept_shards = std::min<std::size_t>(shards, previous->shards.size());
  for (std::size_t shard = 0; shard < kept_shards; ++shard) {
    for (NodeId node : previous->shards[shard]) {
      if (result[shard].size() < target && present.contains(node)) {
        result[shard].push_back(node);
      }
    }
  }
  return result;
}

// The least-loaded member (ties: lowest rank) not in `shard`. REQUIRES: one exists.
std::size_t pick_candidate(std::span<const NodeId> members, const std::vector<NodeId>& shard,
                           const std::vector<std::size_t>& load) {
  std::size_t best = members.size();
  for (std::size_t rank = 0; rank < members.size(); ++rank) {
    if (std::find(shard.begin(), shard.end(), members[rank]) != shard.end()) continue;
    if (best == members.size() || load[rank] < load[best]) best = rank;
  }
  SQUALL_ASSERT(best < members.size(), "no candidate left for a shard of {}", shard.size());
  return best;
}

}  // namespace

ShardAssignment assign_shards(std::span<const NodeId> members, const ShardLayout& layout,
                              const ShardAssignment* previous) {
  SQUALL_ASSERT(layout.validate().is_ok(), "invalid layout");
  SQUALL_ASSERT(!members.empty(), "a view has at least one member");
  std::size_t target = std::min<std::size_t>(layout.replicas_per_shard, members.size());
  ShardAssignment assignment;
  assignment.shards = surviving_shards(members, layout.shards, target, previous);

  std::unordered_map<NodeId, std::size_t> rank_by_node;
  for (std::size_t rank = 0; rank < members.size(); ++rank) rank_by_node[members[rank]] = rank;
  std::vector<std::size_t> load(members.size(), 0);
  for (const auto& shard : assignment.shards) {
    for (NodeId node : shard) ++load[rank_by_node.at(node)];
  }
  for (auto& shard : assignment.shards) {
    while (shard.size() < target) {
      std::size_t rank = pick_candidate(members, shard, load);
      shard.push_back(members[rank]);
      ++load[rank];
    }
  }
  for (std::uint32_t shard = 0; shard < layout.shards; ++shard) {
    if (assignment.shards[shard].size() < layout.replicas_per_shard) {
      assignment.under_replicated.push_back(ShardId{shard});
    }
  }
  return assignment;
}

std::optional<std::uint32_t> parse_ipv4(std::string_view host) {
  std::uint32_t address = 0;
  std::size_t position = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (position >= host.size() || host[position] != '.') return std::nullopt;
      ++position;
    }
    std::size_t start = position;
    std::uint32_t value = 0;
    while (position < host.size() && host[position] >= '0' && host[position] <= '9' &&
           position - start < 3) {
      value = value * 10 + static_cast<std::uint32_t>(host[position] - '0');
      ++position;
    }
    std::size_t digits = position - start;
    if (digits == 0 || value > 255 || (digits > 1 && host[start] == '0')) return std::nullopt;
    address = (address << 8) | value;
  }
  if (position != host.size()) return std::nullopt;
  return address;
}

std::string format_ipv4(std::uint32_t address) {
  return fmt::format("{}.{}.{}.{}", address >> 24, (address >> 16) & 0xFF, (address >> 8) & 0xFF,
                     address & 0xFF);
}

Status validate_joiner(const Member& member) {
  if (!parse_ipv4(member.address.host)) {
    return invalid_argument(fmt::format("node {}: host '{}' is not an IPv4 literal", member.id,
                                        member.address.host));
  }
  if (member.address.port == 0) {
    return invalid_argument(fmt::format("node {}: fabric port 0", member.id));
  }
  if (member.rest.host.empty()) {
    if (member.rest.port != 0) {
      return invalid_argument(fmt::format("node {}: REST port without a host", member.id));
    }
    return Status::ok();
  }
  if (!parse_ipv4(member.rest.host) || member.rest.port == 0) {
    return invalid_argument(fmt::format("node {}: REST endpoint '{}:{}' is not an IPv4 literal "
                                        "and a non-zero port", member.id, member.rest.host,
                                        member.rest.port));
  }
  return Status::ok();
}

namespace {

// make()'s checks of the member list; the ids in rank order.
Result<std::vector<NodeId>> member_ids(ViewId id, const std::vector<Member>& members) {
  if (members.empty()) return invalid_argument("a view needs at least one member");
  if (members.size() > kMaxViewMembers) {
    return invalid_argument(
        fmt::format("{} members exceed the limit of {}", members.size(), kMaxViewMembers));
  }
  std::vector<NodeId> ids;
  std::unordered_set<NodeId> seen;
  for (const Member& member : members) {
    if (!seen.insert(member.id).second) {
      return invalid_argument(fmt::format("node {} appears twice in view {}", member.id, id));
    }
    ids.push_back(member.id);
  }
  return ids;
}

Status check_assignment(const std::vector<NodeId>& ids, const ShardLayout& layout,
                        const ShardAssignment& assignment) {
  if (assignment.shards.size() != layout.shards) {
    return invalid_argument(fmt::format("assignment of {} shards for a layout of {}",
                                        assignment.shards.size(), layout.shards));
  }
  std::unordered_set<NodeId> members(ids.begin(), ids.end());
  std::size_t target = std::min<std::size_t>(layout.replicas_per_shard, ids.size());
  std::vector<ShardId> short_shards;
  for (std::uint32_t shard = 0; shard < layout.shards; ++shard) {
    const std::vector<NodeId>& nodes = assignment.shards[shard];
    std::unordered_set<NodeId> seen;
    for (NodeId node : nodes) {
      if (!members.contains(node) || !seen.insert(node).second) {
        return invalid_argument(fmt::format("shard {}: node {} is not a member or is listed "
                                            "twice", shard, node));
      }
    }
    if (nodes.size() != target) {
      return invalid_argument(fmt::format("shard {} has {} members, expected {}", shard,
                                          nodes.size(), target));
    }
    if (nodes.size() < layout.replicas_per_shard) short_shards.push_back(ShardId{shard});
  }
  if (short_shards != assignment.under_replicated) {
    return invalid_argument("under-replicated shards do not match the assignment");
  }
  return Status::ok();
}

}  // namespace

Result<View> View::restore(ViewId id, std::vector<Member> members, ShardLayout layout,
                           ShardAssignment assignment) {
  SQUALL_TRY(layout.validate());
  Result<std::vector<NodeId>> ids = member_ids(id, members);
  if (!ids) return ids.status();
  SQUALL_TRY(check_assignment(*ids, layout, assignment));
  return View(id, std::move(members), layout, std::move(assignment));
}

Result<View> View::make(ViewId id, std::vector<Member> members, ShardLayout layout,
                        const View* previous) {
  SQUALL_TRY(layout.validate());
  Result<std::vector<NodeId>> ids = member_ids(id, members);
  if (!ids) return ids.status();
  if (previous != nullptr && previous->id() >= id) {
    return invalid_argument(
        fmt::format("view {} cannot follow view {}", id, previous->id()));
  }
  const ShardAssignment* before = previous != nullptr ? &previous->assignment() : nullptr;
  ShardAssignment assignment = assign_shards(*ids, layout, before);
  return View(id, std::move(members), layout, std::move(assignment));
}

std::optional<std::size_t> View::rank_of(NodeId node) const {
  for (std::size_t rank = 0; rank < members_.size(); ++rank) {
    if (members_[rank].id == node) return rank;
  }
  return std::nullopt;
}

const std::vector<NodeId>& View::shard_members(ShardId shard) const {
  SQUALL_ASSERT(shard.value < assignment_.shards.size(), "shard {} outside {} shards", shard,
                assignment_.shards.size());
  return assignment_.shards[shard.value];
}

std::vector<ShardId> View::shards_of(NodeId node) const {
  std::vector<ShardId> result;
  for (std::uint32_t shard = 0; shard < assignment_.shards.size(); ++shard) {
    const auto& nodes = assignment_.shards[shard];
    if (std::find(nodes.begin(), nodes.end(), node) != nodes.end()) {
      result.push_back(ShardId{shard});
    }
  }
  return result;
}

std::optional<std::size_t> View::shard_rank(ShardId shard, NodeId node) const {
  const auto& nodes = shard_members(shard);
  auto it = std::find(nodes.begin(), nodes.end(), node);
  if (it == nodes.end()) return std::nullopt;
  return static_cast<std::size_t>(it - nodes.begin());
}

}  // namespace squall::core
