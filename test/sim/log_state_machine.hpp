// LogStateMachine: the replicated state machine of the simulations — a log of the delivered
// payloads with a running checksum, persisted asynchronously after a random delay.
//
// Persistence models group commit: each applied update becomes durable at
//   max(due time of the previous update, apply time + random delay in [min, max]),
// so durability advances as a prefix, like an fsync covering everything written before it.
// Time comes from set_now(); the PRNG is the simulation's.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "core/state_machine.hpp"
#include "fabric/sim_random.hpp"

namespace squall::sim {

// FNV-1a over the bytes, chained from `seed`.
std::uint64_t hash_bytes(std::span<const std::byte> bytes, std::uint64_t seed = 0);

class LogStateMachine final : public core::StateMachine {
 public:
  struct Entry {
    Version version = 0;
    HlcTimestamp timestamp = 0;
    NodeId sender;
    std::uint64_t sender_index = 0;
    std::uint64_t payload_hash = 0;
    Bytes payload;
    std::uint64_t durable_at_us = 0;
    bool transferred = false;  // installed by state transfer (sender_index unknown: 0)
    std::uint64_t checksum_after = 0;  // the running checksum once this entry was applied
  };

  // `random` may be null: then updates are durable at once.
  LogStateMachine(fabric::SimRandom* random, std::uint64_t persist_min_us,
                  std::uint64_t persist_max_us);

  // Called after each apply with the update (for invariant checkers).
  std::function<void(const core::DeliveredUpdate&)> on_apply;
  // Makes apply() refuse this version (for tests of the failure path).
  std::optional<Version> refuse_version;

  void set_now(std::uint64_t now_us) { now_us_ = now_us; }
  // Retention: drops durable entries beyond the last `keep` (read_log then no longer reaches
  // back to them: state transfer must use a checkpoint).
  void compact(std::size_t keep);
  // A crash and restart of the process: what was not durable at `now_us` is gone (the log,
  // the applied version and the checksum go back to the durable prefix).
  void crash_restart(std::uint64_t now_us);

  Status apply(const core::DeliveredUpdate& update) override;
  Version persisted_version() override;
  Version applied_version() const override { return applied_; }
  Result<core::Checkpoint> make_checkpoint() override;
  Result<std::vector<core::LoggedUpdate>> read_log(Version after,
                                                   std::size_t max_bytes) override;
  Status install(const core::Checkpoint& checkpoint,
                 std::span<const core::LoggedUpdate> suffix) override;

  const std::vector<Entry>& log() const { return log_; }
  std::uint64_t checksum() const { return checksum_; }
  // Versions up to this one came from an installed checkpoint (not in log()).
  Version base_version() const { return base_version_; }
  std::uint64_t installs() const { return installs_; }

 private:
  void append(const core::LoggedUpdate& update, std::uint64_t sender_index, bool transferred);

  fabric::SimRandom* random_;
  std::uint64_t persist_min_us_;
  std::uint64_t persist_max_us_;
  std::uint64_t now_us_ = 0;
  std::vector<Entry> log_;
  std::size_t durable_entries_ = 0;
  Version persisted_ = 0;
  Version applied_ = 0;
  Version base_version_ = 0;
  std::uint64_t base_checksum_ = 0;   // the checksum at base_version_
  HlcTimestamp base_timestamp_ = 0;   // the timestamp of base_version_
  std::uint64_t checksum_ = 0;
  std::uint64_t installs_ = 0;
};

}  // namespace squall::sim
