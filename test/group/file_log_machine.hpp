// FileLogMachine: the replicated state machine of the multi-process group tests — a log of
// delivered payloads kept in a file (fsync'd before persisted_version() reports it), with a
// running checksum over (version, timestamp, payload) so processes can compare their logs.
//
// File: records of version:u64 timestamp:u64 sender:u32 length:u32 payload; a torn tail is
// dropped at open. A checkpoint is the whole log (small in tests); install() rewrites the
// file. Threads: the node's progress thread calls everything; fdatasync runs on a sync thread
// of its own (the progress thread must never wait for the disk: heartbeats would stall).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
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
  void sync_loop();

  std::string path_;
  int fd_ = -1;
  std::vector<core::LoggedUpdate> log_;
  Version applied_ = 0;
  Version persisted_ = 0;
  std::uint64_t checksum_ = 0;
  // Sync thread hand-over: the version written when a sync was asked for, the one made
  // durable by the last completed sync.
  std::mutex mutex_;
  std::condition_variable wake_;
  Version sync_target_ = 0;
  Version synced_ = 0;
  bool stopping_ = false;
  std::thread syncer_;
};

}  // namespace squall::testing
