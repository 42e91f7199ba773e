// PersistenceFrontier: the highest version persisted on every live member of a shard, and the
// callbacks waiting for it.
//
// The ordered group computes the minimum of the members' published persisted versions each
// step and offers it here; the frontier takes the maximum of what it had and the offer, so it
// never moves back (a member leaving the minimum can only raise it). Waiters register a
// version and are called, in version order, from fire() once the frontier reaches it — never
// from inside wait(), so a caller holding state across wait() is not re-entered.
// Not thread-safe: the progress thread owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>

#include "common/status.hpp"
#include "common/version.hpp"

namespace squall::core {

class PersistenceFrontier {
 public:
  // Called with ok once the frontier reached the version, or with the reason it never will
  // (aborted: shutdown or view change, see abort_all()).
  using Waiter = std::function<void(const Status&)>;

  // `floor`: the frontier carried over from the previous view. `max_waiters` bounds wait().
  PersistenceFrontier(Version floor, std::size_t max_waiters);

  Version value() const { return value_; }
  // Raises the frontier to `candidate` if that is higher; true if it moved.
  bool offer(Version candidate);
  // Registers `waiter` for `version`. would_block when max_waiters are registered.
  Status wait(Version version, Waiter waiter);
  // Calls and removes every waiter whose version the frontier has reached; returns how many.
  std::size_t fire();
  // Calls and removes every waiter with `reason` (not ok).
  void abort_all(const Status& reason);
  std::size_t waiters() const { return waiters_.size(); }

 private:
  Version value_;
  std::size_t max_waiters_;
  std::multimap<Version, Waiter> waiters_;
};

}  // namespace squall::core
