#include "sst/failure_detector.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "common/log.hpp"

namespace squall::sst {

FailureDetectorFields add_failure_detector_fields(Schema& schema, std::size_t members) {
  return {schema.scalar<std::uint64_t>("heartbeat"),
          schema.array<std::uint8_t>("suspected", members)};
}

FailureDetector::FailureDetector(Table& table, FailureDetectorFields fields,
                                 std::uint64_t heartbeat_ms, std::uint64_t failure_timeout_ms,
                                 SuspicionCallback on_suspect,
                                 std::uint64_t first_heartbeat_timeout_ms)
    : table_(table),
      fields_(fields),
      heartbeat_us_(heartbeat_ms * 1000),
      failure_timeout_us_(failure_timeout_ms * 1000),
      first_heartbeat_timeout_us_(
          std::max(first_heartbeat_timeout_ms, failure_timeout_ms) * 1000),
      on_suspect_(std::move(on_suspect)),
      last_seen_(table.size(), 0),
      last_change_us_(table.size(), 0) {
  SQUALL_ASSERT(fields_.suspected.count >= table.size(), "suspected[] shorter than the table");
  SQUALL_ASSERT(failure_timeout_ms > heartbeat_ms, "failure timeout must exceed heartbeat");
}

void FailureDetector::tick(std::uint64_t now_us) {
  if (!started_) {
    // Every peer gets a full timeout from our first tick before it can be suspected.
    started_ = true;
    std::fill(last_change_us_.begin(), last_change_us_.end(), now_us);
    beat(now_us);
  } else if (now_us - last_beat_us_ >= heartbeat_us_) {
    beat(now_us);
  }
  spread_suspicion();
  check_progress(now_us);
}

void FailureDetector::beat(std::uint64_t now_us) {
  last_beat_us_ = now_us;
  table_.write(fields_.heartbeat, table_.read(table_.my_rank(), fields_.heartbeat) + 1);
  table_.push(fields_.heartbeat.range());
}

void FailureDetector::check_progress(std::uint64_t now_us) {
  for (std::size_t rank = 0; rank < table_.size(); ++rank) {
    if (rank == table_.my_rank() || suspected(rank)) continue;
    std::uint64_t observed = table_.read(rank, fields_.heartbeat);
    if (observed != last_seen_[rank]) {
      last_seen_[rank] = observed;
      last_change_us_[rank] = now_us;
    } else if (now_us - last_change_us_[rank] >
               (observed == 0 ? first_heartbeat_timeout_us_ : failure_timeout_us_)) {
      suspect(rank, fmt::format("no heartbeat for {} ms", (now_us - last_change_us_[rank]) / 1000));
    }
  }
}

void FailureDetector::spread_suspicion() {
  for (std::size_t row = 0; row < table_.size(); ++row) {
    if (row == table_.my_rank() || table_.frozen(row)) continue;
    for (std::size_t rank = 0; rank < table_.size(); ++rank) {
      if (rank == table_.my_rank() || suspected(rank)) continue;
      if (table_.read(row, fields_.suspected, rank) != 0) {
        suspect(rank, fmt::format("suspected by node {}", table_.member(row)));
      }
    }
  }
}

void FailureDetector::peer_failed(NodeId peer, const std::string& reason) {
  auto rank = table_.rank_of(peer);
  if (rank && *rank != table_.my_rank() && !suspected(*rank)) {
    suspect(*rank, "transport: " + reason);
  }
}

void FailureDetector::suspect(std::size_t rank, const std::string& reason) {
  SQUALL_ASSERT(rank != table_.my_rank(), "a member never suspects itself");
  if (suspected(rank)) return;
  logger("sst")->warn("suspecting node {} (rank {}): {}", table_.member(rank), rank, reason);
  table_.write(fields_.suspected, rank, std::uint8_t{1});
  table_.freeze(rank);
  table_.push(fields_.suspected.range());
  on_suspect_(rank, reason);
}

bool FailureDetector::suspected(std::size_t rank) const {
  return table_.read(table_.my_rank(), fields_.suspected, rank) != 0;
}

std::size_t FailureDetector::suspected_count() const {
  std::size_t count = 0;
  for (std::size_t rank = 0; rank < table_.size(); ++rank) count += suspected(rank) ? 1 : 0;
  return count;
}

}  // namespace squall::sst
