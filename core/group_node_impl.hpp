// GroupNode's internals (core/group_node.hpp), shared by group_node.cpp (progress thread,
// views, transports) and group_node_join.cpp (founding, joining, the membership service).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "common/hlc.hpp"
#include "core/group_node.hpp"
#include "core/membership_service.hpp"
#include "core/restart.hpp"
#include "core/view_change.hpp"
#include "core/view_log.hpp"
#include "fabric/bootstrap_listener.hpp"
#include "fabric/libfabric.hpp"

namespace squall::core {

// Region ids on a view's transport: shard groups use 2s+1 (SST) and 2s+2 (RDMC).
inline constexpr fabric::RegionId kMembershipRegion = 1'000'000;

struct GroupNode::Impl final : ViewHost {
  Impl(const config::Config& config, StateMachineFactory machines, GroupNodeCallbacks callbacks);
  ~Impl() override;

  // ViewHost (progress thread).
  Result<fabric::Transport*> transport_for(const View& view) override;
  StateMachine& state_machine(ShardId shard) override { return machines_(shard); }
  void configure(OrderedGroupOptions& options) override;
  void installed(const View& view) override;
  void retire(ViewId view) override;
  void stopped(const std::string& reason) override;
  void persisted(ShardId shard, Version frontier) override;

  Status open();
  void run();  // the progress thread's body
  void run_tasks();
  void publish_status(bool force);
  void halt(const std::string& reason);
  Status install_first(const View& view, std::optional<View> previous,
                       std::map<ShardId, NodeId> restart_sources = {});
  ViewManagerOptions manager_options() const;
  std::uint32_t connect_timeout_ms() const;

  // group_node_join.cpp
  Status start_membership_service();
  void begin();  // found, restart alone, or join (on the joiner thread)
  void join_loop();
  bool is_contact_self() const;
  std::vector<fabric::PeerAddress> join_candidates() const;
  void on_request(MembershipMessage request, MembershipService::Reply reply);
  void on_join(const JoinRequest& request, const MembershipService::Reply& reply);
  void on_leave(const LeaveRequest& request, const MembershipService::Reply& reply);
  void answer_joiners(const View& view);
  bool answer_if_not_leader(const std::string& cluster, const MembershipService::Reply& reply);
  void accept_join(const JoinAccepted& accepted);
  bool propose_leave(std::optional<fabric::PeerAddress>& target,
                     std::chrono::steady_clock::time_point deadline);
  Status post_task(std::function<void()> task);

  // group_node_restart.cpp
  Result<RestartRequest> own_restart_request(const ViewRecord& last);
  void restart_loop(const ViewRecord& last);
  bool restart_call(fabric::PeerAddress target, const RestartRequest& request);
  void on_restart(const RestartRequest& request, const MembershipService::Reply& reply);
  JoinAccepted restart_acceptance() const;
  void try_lead_restart();
  void set_waiting(std::string why);
  // Which shards this node's replicas hold the state of, per view (<data_dir>/ready): a
  // replica still receiving a state transfer must not represent its shard in a restart.
  void record_readiness();
  std::vector<ShardId> ready_shards_for(const View& last) const;
  void post_halt(const std::string& reason);

  config::Config config_;
  StateMachineFactory machines_;
  GroupNodeCallbacks callbacks_;
  Member self_;
  std::string secret_;  // the cluster secret (empty: none configured)
  SystemClock system_clock_;
  HybridLogicalClock clock_;
  std::unique_ptr<FileViewLog> log_;
  std::shared_ptr<fabric::BootstrapListener> listener_;
  std::unique_ptr<MembershipService> service_;

  // Progress thread state.
  std::map<std::uint32_t, std::unique_ptr<fabric::LibfabricTransport>> transports_;  // by view
  std::vector<std::uint32_t> to_close_;  // retired views whose transports go after the step
  std::unique_ptr<ViewManager> manager_;
  std::optional<View> previous_view_;   // the view before the current one, if known
  std::optional<View> current_view_;    // copy of the installed view (joiners are answered)
  std::map<std::uint32_t, MembershipService::Reply> pending_joins_;  // by joiner id
  bool stopped_ = false;
  // Total restart (progress thread): the last view of the log, the reports received (this
  // node's too), and — once decided by this node as the restart leader — the restart view.
  std::optional<View> restart_last_;
  std::map<std::uint32_t, RestartReport> restart_reports_;
  std::optional<View> restart_view_;
  std::map<ShardId, NodeId> restart_sources_;
  std::string restart_waiting_for_ = "no report yet";  // guarded by mutex_
  std::uint32_t ready_view_ = 0;  // what <data_dir>/ready says now
  std::vector<ShardId> ready_shards_;
  std::string stop_reason_;

  // Threads and hand-over.
  std::thread progress_;
  std::thread joiner_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;  // tasks_, status_
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  GroupStatus status_;
  std::uint64_t last_status_us_ = 0;
};

}  // namespace squall::core
