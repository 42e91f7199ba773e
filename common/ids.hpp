// Strong identifier types: a NodeId cannot be passed where a ShardId is expected.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

#include <fmt/format.h>

namespace squall {

template <typename Tag, typename Rep>
struct StrongId {
  Rep value = 0;

  constexpr StrongId() = default;
  constexpr explicit StrongId(Rep v) : value(v) {}
  constexpr auto operator<=>(const StrongId&) const = default;
};

struct NodeIdTag {};
struct ViewIdTag {};
struct ShardIdTag {};

// A node's identity, from its configuration; stable across restarts.
using NodeId = StrongId<NodeIdTag, std::uint32_t>;
// The number of a view in the group's sequence of views; 0 is the first view.
using ViewId = StrongId<ViewIdTag, std::uint32_t>;
// A shard of the key space, 0..shards-1.
using ShardId = StrongId<ShardIdTag, std::uint32_t>;

}  // namespace squall

template <typename Tag, typename Rep>
struct std::hash<squall::StrongId<Tag, Rep>> {
  std::size_t operator()(const squall::StrongId<Tag, Rep>& id) const noexcept {
    return std::hash<Rep>{}(id.value);
  }
};

template <typename Tag, typename Rep>
struct fmt::formatter<squall::StrongId<Tag, Rep>> : fmt::formatter<Rep> {
  template <typename FormatContext>
  auto format(const squall::StrongId<Tag, Rep>& id, FormatContext& ctx) const {
    return fmt::formatter<Rep>::format(id.value, ctx);
  }
};
