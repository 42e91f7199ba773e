// SimChaos: a random fault schedule for a SimNetwork, drawn from the network's own PRNG so the
// seed decides the faults along with everything else.
//
// Once started, it acts every [min_gap_us, max_gap_us]: it picks crash, restart, pause or
// partition by weight and a victim, within the bounds below; pauses and partitions end after
// [min_fault_us, max_fault_us]. After stop_after_us of simulated time it stops injecting and
// ends every pause and partition (crashed nodes stay crashed), so a test can check safety under
// faults and then liveness after healing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "fabric/sim_network.hpp"

namespace squall::fabric {

struct ChaosOptions {
  std::uint64_t min_gap_us = 1'000;
  std::uint64_t max_gap_us = 20'000;
  std::uint32_t crash_weight = 1;
  std::uint32_t pause_weight = 2;
  std::uint32_t partition_weight = 2;
  // Restarts one of the nodes this object crashed (SimNetwork::restart, then on_restart).
  std::uint32_t restart_weight = 0;
  std::size_t max_crashed = 1;         // down at one time (without restarts: in total)
  std::size_t max_paused = 1;          // at one time
  std::size_t max_partitioned_pairs = 2;  // at one time
  std::uint64_t min_fault_us = 500;
  std::uint64_t max_fault_us = 30'000;
  // Simulated time (from start()) after which no fault starts and all pauses/partitions end.
  // 0 = never.
  std::uint64_t stop_after_us = 0;

  Status validate() const;
};

struct ChaosStats {
  std::uint64_t crashes = 0;
  std::uint64_t pauses = 0;
  std::uint64_t partitions = 0;
  std::uint64_t restarts = 0;
};

class SimChaos {
 public:
  // `network` must outlive this object. Asserts options.validate().
  SimChaos(SimNetwork& network, ChaosOptions options);
  ~SimChaos();
  SimChaos(const SimChaos&) = delete;
  SimChaos& operator=(const SimChaos&) = delete;

  // Called right after a node is crashed (e.g. to let the harness drop that node's state).
  std::function<void(NodeId)> on_crash;
  // Called right after a node is restarted: the harness re-registers its regions, re-adds its
  // peers and restarts its timers.
  std::function<void(NodeId)> on_restart;

  // Schedules the first action. Only nodes present in the network at each action are chosen.
  void start();
  // Cancels further actions and ends every pause and partition now.
  void calm();
  bool is_calm() const { return calm_; }
  const ChaosStats& stats() const { return stats_; }

 private:
  struct ActiveFault {
    std::uint64_t serial = 0;
    TimerId end_timer = 0;
    bool is_pause = false;
    NodeId first;
    NodeId second;
  };

  void schedule_next();
  void act();
  void try_crash();
  void try_restart();
  void try_pause();
  void try_partition();
  std::uint64_t draw_fault_us();
  void end_fault(std::uint64_t serial);
  void finish(const ActiveFault& fault);

  SimNetwork& network_;
  ChaosOptions options_;
  ChaosStats stats_;
  std::uint64_t stop_at_us_ = 0;
  TimerId next_action_ = 0;
  TimerId calm_timer_ = 0;
  bool calm_ = false;
  std::vector<NodeId> crashed_;  // crashed by this object and not restarted
  std::uint64_t next_serial_ = 1;
  std::vector<ActiveFault> active_;  // pauses and partitions this object will end
};

}  // namespace squall::fabric
