// View: one configuration of the group — its id, its members in rank order, and which members
// serve which shard.
//
// A view is immutable once made. Ranks are positions in the member list (rank 0 leads). The
// shard assignment is a pure function of (members, layout, previous view's assignment), so
// every member computes the same one without talking:
// - survivors of the previous view keep their shards and their order inside each shard
//   (stability: a view change moves as little state as possible);
// - each shard is then filled, in shard order, up to min(replicas_per_shard, members) with the
//   least-loaded members not yet in it (members serving no shard first, ties by rank). With
//   at least shards x replicas members the shards are disjoint and the rest are spares; with
//   fewer, members serve several shards (a 3-node cluster with 3 shards: every node serves
//   every shard);
// - a shard left with fewer than replicas_per_shard members is listed as under-replicated.
//   That is reported, never a crash: the caller decides whether the view is adequate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/ids.hpp"
#include "common/status.hpp"
#include "fabric/transport.hpp"

namespace squall::core {

// Limits on what a view may hold (configuration ranges: docs/configuration.md).
inline constexpr std::size_t kMaxViewMembers = 1024;
inline constexpr std::uint32_t kMaxShards = 1024;
inline constexpr std::uint32_t kMaxReplicasPerShard = 64;

struct Member {
  NodeId id;
  fabric::PeerAddress address;       // fabric bootstrap endpoint (host, port)
  std::uint16_t membership_port = 0;  // TCP membership service on address.host; 0 = none
  fabric::PeerAddress rest{};        // REST endpoint (host, port); empty host = none
  bool operator==(const Member& other) const {
    return id == other.id && address.host == other.address.host &&
           address.port == other.address.port && membership_port == other.membership_port &&
           rest.host == other.rest.host && rest.port == other.rest.port;
  }
};

// The IPv4 literal `host` ("a.b.c.d", canonical: no leading zeros, each part <= 255) as a
// 32-bit number (a in the high byte); nullopt for anything else.
std::optional<std::uint32_t> parse_ipv4(std::string_view host);
std::string format_ipv4(std::uint32_t address);

// A member that can join (any id, 0 included): address.host a canonical IPv4 literal and
// address.port non-zero, rest either empty (host "" and port 0) or an IPv4 literal with a
// non-zero port. Joins travel in fixed-size SST words (docs/core.md, "Joins"), hence IPv4
// literals only. invalid_argument with the reason otherwise.
Status validate_joiner(const Member& member);

struct ShardLayout {
  std::uint32_t shards = 1;
  std::uint32_t replicas_per_shard = 3;
  bool operator==(const ShardLayout&) const = default;
  // invalid_argument unless 1 <= shards <= kMaxShards and 1 <= replicas <= kMaxReplicas.
  Status validate() const;
};

struct ShardAssignment {
  // shards[i]: the members serving shard i, in the shard's sender-rank order.
  std::vector<std::vector<NodeId>> shards;
  // Shards with fewer than replicas_per_shard members, ascending.
  std::vector<ShardId> under_replicated;
  bool operator==(const ShardAssignment&) const = default;
};

// The assignment of `members` (rank order, distinct) under `layout`, continuing `previous`
// (the previous view's assignment; nullptr for the first view). Pure and deterministic.
// REQUIRES: layout.validate() ok, members non-empty and distinct.
ShardAssignment assign_shards(std::span<const NodeId> members, const ShardLayout& layout,
                              const ShardAssignment* previous);

class View {
 public:
  // Errors (invalid_argument): no members, more than kMaxViewMembers, a duplicate NodeId, a
  // bad layout, or `previous` with an id not below `id`.
  static Result<View> make(ViewId id, std::vector<Member> members, ShardLayout layout,
                           const View* previous = nullptr);
  // A view with a recorded assignment (from a ViewRecord: a joiner cannot recompute it, the
  // assignment depends on the history). Besides make()'s checks, the assignment must fit the
  // layout: one list per shard, each of distinct members of the view, at most
  // replicas_per_shard long and, unless every member serves the shard, exactly
  // min(replicas_per_shard, members) long; under_replicated must list exactly the short
  // shards. invalid_argument otherwise.
  static Result<View> restore(ViewId id, std::vector<Member> members, ShardLayout layout,
                              ShardAssignment assignment);

  ViewId id() const { return id_; }
  const std::vector<Member>& members() const { return members_; }
  std::size_t size() const { return members_.size(); }
  const Member& member(std::size_t rank) const { return members_.at(rank); }
  std::optional<std::size_t> rank_of(NodeId node) const;
  bool contains(NodeId node) const { return rank_of(node).has_value(); }
  // The member of rank 0: it proposes view changes.
  NodeId leader() const { return members_.front().id; }

  const ShardLayout& layout() const { return layout_; }
  const ShardAssignment& assignment() const { return assignment_; }
  // Members of `shard` in sender-rank order. REQUIRES: shard < layout().shards.
  const std::vector<NodeId>& shard_members(ShardId shard) const;
  // Shards `node` serves, ascending (empty for a spare or a non-member).
  std::vector<ShardId> shards_of(NodeId node) const;
  // `node`'s sender rank inside `shard`, if it serves it.
  std::optional<std::size_t> shard_rank(ShardId shard, NodeId node) const;
  const std::vector<ShardId>& under_replicated() const { return assignment_.under_replicated; }

 private:
  View(ViewId id, std::vector<Member> members, ShardLayout layout, ShardAssignment assignment)
      : id_(id),
        members_(std::move(members)),
        layout_(layout),
        assignment_(std::move(assignment)) {}

  ViewId id_;
  std::vector<Member> members_;
  ShardLayout layout_;
  ShardAssignment assignment_;
};

}  // namespace squall::core
