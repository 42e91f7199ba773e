// VcCluster's total restart: every node crashes; some come back from their disks and restart
// the group from their logs (core/restart.hpp).
#include <algorithm>

#include <fmt/format.h>

#include "vc_cluster.hpp"

namespace squall::sim {

void VcCluster::crash_all() {
  for (auto& node : nodes) {
    if (!node->crashed) crash(node->id, fabric::CrashDetection::silent);
  }
}

Result<core::RestartPlan> VcCluster::restart_from_disks(const std::vector<NodeId>& back) {
  std::uint64_t now_us = network.now_us();
  std::optional<core::View> last;
  VcNode* leader = nullptr;
  std::vector<core::RestartReport> reports;
  for (NodeId id : back) {
    VcNode& node = *nodes.at(id.value - 1);
    SQUALL_ASSERT(node.crashed, "node {} is running", id);
    for (auto& [shard, machine] : node.machines) machine->crash_restart(now_us);
    std::optional<core::ViewRecord> record = node.log.last_view();
    if (!record) continue;  // never installed a view: it would join
    core::View logged = core::restore_view(*record).value();
    core::RestartReport report{node.member(), logged.id(), {}};
    for (ShardId shard : logged.shards_of(id)) {
      report.applied[shard] = node.machine(shard).applied_version();
    }
    reports.push_back(std::move(report));
    if (!last || logged.id() > last->id() ||
        (logged.id() == last->id() && *logged.rank_of(id) < *last->rank_of(leader->id))) {
      last = logged;
      leader = &node;
    }
  }
  if (!last) return unavailable("no node came back with a view");
  std::optional<core::ViewRecord> before_record = leader->log.view_before(last->id());
  std::optional<core::View> before;
  if (before_record) before = core::restore_view(*before_record).value();
  Result<core::RestartPlan> plan =
      core::plan_restart(*last, reports, before ? &*before : nullptr);
  if (!plan) return plan;
  restarted_from = last->id().value;
  ++restarts_;
  // Every member is up before any of them adds the others as peers.
  for (const core::Member& member : plan->view.members()) {
    VcNode& node = *nodes.at(member.id.value - 1);
    node.crashed = false;
    node.manager.reset();
    node.transports.clear();
  }
  for (const core::Member& member : plan->view.members()) {
    VcNode& node = *nodes.at(member.id.value - 1);
    node.stop_reason.reset();
    node.wants_join = false;
    ++node.incarnations;
    core::ViewManagerOptions restart_options = manager_options;
    restart_options.self = node.id;
    restart_options.previous = *last;
    restart_options.restart_sources = plan->sources;
    auto manager =
        core::ViewManager::create(plan->view, restart_options, node, node.hlc, node.log);
    if (!manager) {
      note(fmt::format("node {} cannot restart in view {}: {}", node.id, plan->view.id(),
                       manager.status().to_string()));
      continue;
    }
    node.manager = std::move(*manager);
    arm(static_cast<std::size_t>(node.id.value - 1));
  }
  return plan;
}

}  // namespace squall::sim
