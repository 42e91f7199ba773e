// FileLogMachine: the replicated state machine of the multi-process group tests — a log of
// delivered payloads kept in a file (fsync'd before persisted_version() reports it), with a
// running checksum over (version, timestamp, payload) so processes can compare their logs.
//
// File: records of version:u64 timestamp:u64 sender:u32 length:u32 payload; a torn tail is
// dropped at open. A checkpoint is the whole log (small in tests); install() rewrites the
// file. Thread: the node's progress thread only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/state_machine.hpp"

namespace squall::testing {

class FileLogMachine final : public core::StateMachine {
 public:
  // Opens (creating) `path` and reloads what it holds.
  explicit FileLogMachine(std::string path);
  ~FileLogMachine() override;

  Status apply(const core::DeliveredUpdate& update) override;
  Version persisted_version() override;
  Version applied_version() const override { return applied_; }
  Result<core::Checkpoint> make_checkpoint() override;
  Result<std::vector<core::LoggedUpdate>> read_log(Version after,
                                                   std::size_t max_bytes) override;
  Status install(const core::Checkpoint& checkpoint,
                 std::span<const core::LoggedUpdate> suffix) override;

  std::uint64_t checksum() const { return checksum_; }
  std::size_t size() const { return log_.size(); }
  const std::vector<core::LoggedUpdate>& log() const { return log_; }

 private:
  void reload();
  void append(const core::LoggedUpdate& update);
  void rewrite();

  std::string path_;
  int fd_ = -1;
  std::vector<core::LoggedUpdate> log_;
  Version applied_ = 0;
  Version persisted_ = 0;
  std::uint64_t checksum_ = 0;
  bool dirty_ = false;
};

}  // namespace squall::testing
