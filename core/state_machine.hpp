// StateMachine: what a replicated service (the KV store) implements to be driven by a shard's
// total order.
//
// Contract, for one replica of one shard:
// - apply() receives every update of the shard exactly once, in version order. Versions and
//   timestamps strictly increase; every replica receives the same updates with the same
//   version, timestamp, sender and payload (docs/core.md, "Versions and timestamps").
//   apply() must be deterministic: the same sequence of updates leaves every replica in the
//   same state, and any decision taken in it (a failed precondition, for instance) is part of
//   that state, not an error.
// - Persistence is asynchronous: apply() may return before the update is durable.
//   persisted_version() reports how far it got; the group publishes that in the shard's SST
//   and the minimum over the shard is the global persistence frontier.
// - Checkpoints and log suffixes are the state-transfer interface (used when a member joins
//   or restarts; that protocol is built on top of these calls).
// Every method is called from the node's progress thread; none may block for long.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/bytes.hpp"
#include "common/hlc.hpp"
#include "common/ids.hpp"
#include "common/status.hpp"
#include "common/version.hpp"

namespace squall::core {

// One update in the shard's total order, as handed to apply().
struct DeliveredUpdate {
  Version version = 0;           // (view id << 32) | delivered-data counter (1-based)
  HlcTimestamp timestamp = 0;    // sender's HLC reading, made monotone (docs/core.md)
  NodeId sender;                 // the member that multicast it
  std::uint64_t sender_index = 0;  // its position among the sender's data messages this view
  std::span<const std::byte> payload;  // valid only during apply()
};

// An update as kept in a replica's log, for state transfer.
struct LoggedUpdate {
  Version version = 0;
  HlcTimestamp timestamp = 0;
  NodeId sender;
  Bytes payload;
  bool operator==(const LoggedUpdate&) const = default;
};

// A replica's state as of `version`, in a form only the same StateMachine type understands.
struct Checkpoint {
  Version version = 0;         // the last update the state includes (0: empty state)
  HlcTimestamp timestamp = 0;  // that update's timestamp
  Bytes state;
};

class StateMachine {
 public:
  virtual ~StateMachine() = default;
  StateMachine() = default;
  StateMachine(const StateMachine&) = delete;
  StateMachine& operator=(const StateMachine&) = delete;

  // Applies the next update of the total order. A non-ok status means this replica cannot
  // follow the order any more (its log is unusable, say): the group stops delivering, wedges
  // and reports the status to its owner, who must take the replica out of the shard.
  virtual Status apply(const DeliveredUpdate& update) = 0;

  // The highest version v such that every update applied with a version <= v is durable
  // (0 before the first). Never decreases. Polled once per progress step: cheap, no blocking;
  // it may reap completed persistence work.
  virtual Version persisted_version() = 0;

  // The last version applied or installed (0 for an empty state).
  virtual Version applied_version() const = 0;

  // A checkpoint of the current state (as of applied_version()).
  virtual Result<Checkpoint> make_checkpoint() = 0;

  // Logged updates with versions > `after`, ascending, up to about `max_bytes` of payload
  // (at least one if any exists). out_of_range if the log no longer reaches back to `after`.
  virtual Result<std::vector<LoggedUpdate>> read_log(Version after, std::size_t max_bytes) = 0;

  // Replaces the state by `checkpoint` followed by `suffix` (ascending, all versions above
  // the checkpoint's). Afterwards applied_version() is the last version installed.
  virtual Status install(const Checkpoint& checkpoint, std::span<const LoggedUpdate> suffix) = 0;
};

}  // namespace squall::core
