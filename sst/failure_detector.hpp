// Heartbeats and failure suspicion over the table.
//
// The periodic push of our heartbeat counter is the heartbeat. A member is suspected when its
// counter has not advanced for failure_timeout_ms, when the transport reports it failed, or
// when any non-frozen member's row already suspects it (suspicion spreads). Suspecting marks
// suspected[rank] in our row, pushes it, freezes the row, and calls the callback once.
// Time comes in through tick(now_us); the detector never reads a clock.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sst/table.hpp"

namespace squall::sst {

struct FailureDetectorFields {
  Scalar<std::uint64_t> heartbeat;
  Array<std::uint8_t> suspected;  // one flag per member rank
};

// Adds the detector's fields to a schema under construction.
FailureDetectorFields add_failure_detector_fields(Schema& schema, std::size_t members);

class FailureDetector {
 public:
  using SuspicionCallback = std::function<void(std::size_t rank, const std::string& reason)>;

  // `first_heartbeat_timeout_ms` (0: failure_timeout_ms) bounds the wait for a peer's FIRST
  // heartbeat: members install a view at different moments (a joiner sets up its transport
  // after the others), so silence before a peer was ever heard is judged more leniently.
  FailureDetector(Table& table, FailureDetectorFields fields, std::uint64_t heartbeat_ms,
                  std::uint64_t failure_timeout_ms, SuspicionCallback on_suspect,
                  std::uint64_t first_heartbeat_timeout_ms = 0);

  // Beats when a heartbeat period has passed, checks every peer's progress, spreads
  // suspicion. Call at least every heartbeat period.
  void tick(std::uint64_t now_us);
  // The transport reported the peer dead (write failure, lost connection).
  void peer_failed(NodeId peer, const std::string& reason);
  void suspect(std::size_t rank, const std::string& reason);
  bool suspected(std::size_t rank) const;
  std::size_t suspected_count() const;

 private:
  void beat(std::uint64_t now_us);
  void check_progress(std::uint64_t now_us);
  void spread_suspicion();

  Table& table_;
  FailureDetectorFields fields_;
  std::uint64_t heartbeat_us_;
  std::uint64_t failure_timeout_us_;
  std::uint64_t first_heartbeat_timeout_us_;
  SuspicionCallback on_suspect_;
  bool started_ = false;
  std::uint64_t last_beat_us_ = 0;
  std::vector<std::uint64_t> last_seen_;       // per rank: last observed heartbeat value
  std::vector<std::uint64_t> last_change_us_;  // per rank: when it last advanced
};

}  // namespace squall::sst
