#include "fabric/sim_chaos.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

namespace squall::fabric {

Status ChaosOptions::validate() const {
  if (min_gap_us == 0 || min_gap_us > max_gap_us) {
    return invalid_argument(
        fmt::format("need 0 < min_gap_us ({}) <= max_gap_us ({})", min_gap_us, max_gap_us));
  }
  if (min_fault_us > max_fault_us) {
    return invalid_argument(fmt::format("min_fault_us {} > max_fault_us {}", min_fault_us,
                                        max_fault_us));
  }
  if (std::uint64_t{crash_weight} + pause_weight + partition_weight + restart_weight == 0) {
    return invalid_argument("every fault weight is 0");
  }
  return Status::ok();
}

SimChaos::SimChaos(SimNetwork& network, ChaosOptions options)
    : network_(network), options_(options) {
  const Status status = options_.validate();
  SQUALL_ASSERT(status.is_ok(), "invalid ChaosOptions: {}", status.to_string());
}

SimChaos::~SimChaos() {
  // Timers capture `this`: none may outlive the object.
  network_.cancel(next_action_);
  network_.cancel(calm_timer_);
  for (const ActiveFault& fault : active_) network_.cancel(fault.end_timer);
}

void SimChaos::start() {
  SQUALL_ASSERT(next_action_ == 0 && !calm_, "SimChaos started twice");
  stop_at_us_ = options_.stop_after_us == 0 ? UINT64_MAX
                                            : network_.now_us() + options_.stop_after_us;
  if (options_.stop_after_us != 0) {
    calm_timer_ = network_.schedule_at(stop_at_us_, [this] {
      calm_timer_ = 0;
      calm();
    });
  }
  schedule_next();
}

void SimChaos::schedule_next() {
  const std::uint64_t gap_us = network_.random().between(options_.min_gap_us, options_.max_gap_us);
  next_action_ = network_.schedule_after(gap_us, [this] { act(); });
}

void SimChaos::act() {
  next_action_ = 0;
  if (network_.now_us() >= stop_at_us_) {
    calm();
    return;
  }
  const std::uint64_t crash_end = options_.crash_weight;
  const std::uint64_t restart_end = crash_end + options_.restart_weight;
  const std::uint64_t pause_end = restart_end + options_.pause_weight;
  const std::uint64_t pick = network_.random().below(pause_end + options_.partition_weight);
  if (pick < crash_end) {
    try_crash();
  } else if (pick < restart_end) {
    try_restart();
  } else if (pick < pause_end) {
    try_pause();
  } else {
    try_partition();
  }
  schedule_next();
}

void SimChaos::calm() {
  if (calm_) return;
  calm_ = true;
  network_.cancel(next_action_);
  network_.cancel(calm_timer_);
  next_action_ = 0;
  calm_timer_ = 0;
  std::vector<ActiveFault> ending = std::move(active_);
  active_.clear();
  for (const ActiveFault& fault : ending) {
    network_.cancel(fault.end_timer);
    finish(fault);
  }
}

std::uint64_t SimChaos::draw_fault_us() {
  return network_.random().between(options_.min_fault_us, options_.max_fault_us);
}

void SimChaos::try_crash() {
  std::size_t down = 0;
  for (const NodeId id : network_.nodes()) down += network_.is_crashed(id) ? 1 : 0;
  if (down >= options_.max_crashed) return;
  std::vector<NodeId> candidates;
  for (const NodeId id : network_.nodes()) {
    if (!network_.is_crashed(id)) candidates.push_back(id);
  }
  if (candidates.size() <= 1) return;  // never crash the last node standing
  const NodeId victim = candidates[network_.random().below(candidates.size())];
  crashed_.push_back(victim);
  ++stats_.crashes;
  network_.crash(victim);
  if (on_crash) on_crash(victim);
}

void SimChaos::try_restart() {
  if (crashed_.empty()) return;
  const std::size_t pick = network_.random().below(crashed_.size());
  const NodeId revived = crashed_[pick];
  crashed_.erase(crashed_.begin() + static_cast<std::ptrdiff_t>(pick));
  if (!network_.is_crashed(revived)) return;  // someone else restarted it
  ++stats_.restarts;
  network_.restart(revived);
  if (on_restart) on_restart(revived);
}

void SimChaos::try_pause() {
  const auto paused_now = static_cast<std::size_t>(std::count_if(
      active_.begin(), active_.end(), [](const ActiveFault& fault) { return fault.is_pause; }));
  if (paused_now >= options_.max_paused) return;
  std::vector<NodeId> candidates;
  for (const NodeId id : network_.nodes()) {
    if (network_.is_running(id)) candidates.push_back(id);
  }
  if (candidates.empty()) return;
  ActiveFault fault;
  fault.serial = next_serial_++;
  fault.is_pause = true;
  fault.first = candidates[network_.random().below(candidates.size())];
  network_.pause(fault.first);
  const std::uint64_t serial = fault.serial;
  fault.end_timer = network_.schedule_after(draw_fault_us(), [this, serial] { end_fault(serial); });
  active_.push_back(fault);
  ++stats_.pauses;
}

void SimChaos::try_partition() {
  const auto cut_now = static_cast<std::size_t>(std::count_if(
      active_.begin(), active_.end(), [](const ActiveFault& fault) { return !fault.is_pause; }));
  if (cut_now >= options_.max_partitioned_pairs) return;
  const std::vector<NodeId> ids = network_.nodes();
  std::vector<std::pair<NodeId, NodeId>> candidates;
  for (std::size_t a = 0; a < ids.size(); ++a) {
    for (std::size_t b = a + 1; b < ids.size(); ++b) {
      if (!network_.is_partitioned(ids[a], ids[b])) candidates.emplace_back(ids[a], ids[b]);
    }
  }
  if (candidates.empty()) return;
  const auto [first, second] = candidates[network_.random().below(candidates.size())];
  ActiveFault fault;
  fault.serial = next_serial_++;
  fault.first = first;
  fault.second = second;
  network_.partition(first, second);
  const std::uint64_t serial = fault.serial;
  fault.end_timer = network_.schedule_after(draw_fault_us(), [this, serial] { end_fault(serial); });
  active_.push_back(fault);
  ++stats_.partitions;
}

void SimChaos::end_fault(std::uint64_t serial) {
  const auto found = std::find_if(active_.begin(), active_.end(),
                                  [&](const ActiveFault& fault) { return fault.serial == serial; });
  SQUALL_ASSERT(found != active_.end(), "unknown chaos fault {}", serial);
  const ActiveFault fault = *found;
  active_.erase(found);
  finish(fault);
}

void SimChaos::finish(const ActiveFault& fault) {
  if (fault.is_pause) {
    network_.resume(fault.first);  // no-op if the node crashed meanwhile
  } else {
    network_.heal(fault.first, fault.second);
  }
}

}  // namespace squall::fabric
