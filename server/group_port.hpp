// GroupPort: what the replicated backend needs from the group — the daemon's core::GroupNode,
// or an in-process stand-in in tests (docs/consistency.md).
//
// Threads: post() from any thread; everything else only from the progress thread (inside a
// task given to post(), or a group callback), where the group's state lives.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "common/ids.hpp"
#include "common/status.hpp"

namespace squall::server {

class GroupPort {
 public:
  virtual ~GroupPort() = default;

  // Runs `task` on the progress thread. unavailable once the group stopped.
  virtual Status post(std::function<void()> task) = 0;

  // Queues `payload` in this node's group of `shard`. unavailable when this node does not
  // serve the shard or is changing views; would_block when the send queue is full.
  virtual Result<std::uint64_t> send(ShardId shard, std::span<const std::byte> payload) = 0;
  // Whether this node is a member of `shard` in its current view.
  virtual bool serves(ShardId shard) const = 0;
  // The current view's id (0 before the first view).
  virtual ViewId view_id() const = 0;
  // REST addresses ("host:port") of the other members of `shard` in the current view, in the
  // order they should be tried.
  virtual std::vector<std::string> rest_addresses(ShardId shard) const = 0;
};

}  // namespace squall::server
