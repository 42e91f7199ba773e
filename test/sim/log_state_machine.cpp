#include "log_state_machine.hpp"

#include <algorithm>

namespace squall::sim {

std::uint64_t hash_bytes(std::span<const std::byte> bytes, std::uint64_t seed) {
  std::uint64_t hash = 0xcbf2'9ce4'8422'2325ULL ^ seed;
  for (std::byte b : bytes) {
    hash ^= static_cast<std::uint64_t>(b);
    hash *= 0x0000'0100'0000'01b3ULL;
  }
  return hash;
}

LogStateMachine::LogStateMachine(fabric::SimRandom* random, std::uint64_t persist_min_us,
                                 std::uint64_t persist_max_us)
    : random_(random), persist_min_us_(persist_min_us), persist_max_us_(persist_max_us) {}

void LogStateMachine::append(const core::LoggedUpdate& update, std::uint64_t sender_index,
                             bool transferred) {
  SQUALL_ASSERT(update.version > applied_, "version {:#x} applied after {:#x}", update.version,
                applied_);
  std::uint64_t delay_us = random_ != nullptr
                               ? random_->between(persist_min_us_, persist_max_us_)
                               : 0;
  std::uint64_t due_us = now_us_ + delay_us;
  if (!log_.empty()) due_us = std::max(due_us, log_.back().durable_at_us);
  std::uint64_t payload_hash = hash_bytes(update.payload);
  checksum_ = hash_bytes(std::as_bytes(std::span(&payload_hash, 1)), checksum_ ^ update.version);
  log_.push_back({update.version, update.timestamp, update.sender, sender_index, payload_hash,
                  update.payload, due_us, transferred, checksum_});
  applied_ = update.version;
}

Status LogStateMachine::apply(const core::DeliveredUpdate& update) {
  if (refuse_version && *refuse_version == update.version) {
    return io_error("simulated log failure");
  }
  core::LoggedUpdate logged{update.version, update.timestamp, update.sender,
                            Bytes(update.payload.begin(), update.payload.end())};
  append(logged, update.sender_index, false);
  if (on_apply) on_apply(update);
  return Status::ok();
}

Version LogStateMachine::persisted_version() {
  while (durable_entries_ < log_.size() && log_[durable_entries_].durable_at_us <= now_us_) {
    persisted_ = log_[durable_entries_].version;
    ++durable_entries_;
  }
  return persisted_;
}

void LogStateMachine::compact(std::size_t keep) {
  if (log_.size() <= keep) return;
  std::size_t drop = std::min(log_.size() - keep, durable_entries_);
  if (drop == 0) return;
  base_version_ = log_[drop - 1].version;
  base_checksum_ = log_[drop - 1].checksum_after;
  base_timestamp_ = log_[drop - 1].timestamp;
  log_.erase(log_.begin(), log_.begin() + static_cast<std::ptrdiff_t>(drop));
  durable_entries_ -= drop;
}

void LogStateMachine::crash_restart(std::uint64_t now_us) {
  now_us_ = now_us;
  (void)persisted_version();  // reaps what became durable by now
  log_.resize(durable_entries_);
  applied_ = log_.empty() ? base_version_ : log_.back().version;
  checksum_ = log_.empty() ? base_checksum_ : log_.back().checksum_after;
  persisted_ = applied_;
}

Result<core::Checkpoint> LogStateMachine::make_checkpoint() {
  core::Checkpoint checkpoint;
  checkpoint.version = applied_;
  checkpoint.timestamp = log_.empty() ? base_timestamp_ : log_.back().timestamp;
  ByteWriter writer(checkpoint.state);
  writer.put(checksum_);
  return checkpoint;
}

Result<std::vector<core::LoggedUpdate>> LogStateMachine::read_log(Version after,
                                                                  std::size_t max_bytes) {
  if (after < base_version_) return Status(Code::out_of_range, "log starts later");
  std::vector<core::LoggedUpdate> updates;
  std::size_t bytes = 0;
  for (const Entry& entry : log_) {
    if (entry.version <= after) continue;
    if (!updates.empty() && bytes + entry.payload.size() > max_bytes) break;
    bytes += entry.payload.size();
    updates.push_back({entry.version, entry.timestamp, entry.sender, entry.payload});
  }
  return updates;
}

Status LogStateMachine::install(const core::Checkpoint& checkpoint,
                                std::span<const core::LoggedUpdate> suffix) {
  ByteReader reader(checkpoint.state);
  std::uint64_t checksum = 0;
  if (!reader.get(checksum) || reader.remaining() != 0) return corruption("bad checkpoint");
  log_.clear();
  durable_entries_ = 0;
  checksum_ = checksum;
  base_checksum_ = checksum;
  base_timestamp_ = checkpoint.timestamp;
  applied_ = checkpoint.version;
  base_version_ = checkpoint.version;
  persisted_ = checkpoint.version;  // a checkpoint is installed from durable state
  ++installs_;
  for (const core::LoggedUpdate& update : suffix) append(update, 0, true);
  return Status::ok();
}

}  // namespace squall::sim
