// Total restart: every member of a view V stopped (a power cut, kill -9 of all); nodes come
// back with their view logs and their replicas' logs, and the restart leader (the node's
// membership service, docs/membership.md) collects their reports. plan_restart() decides
// whether the reports suffice and, if so, the restart view and, per shard, the member every
// other member catches up from (docs/core.md, "Total restart").
//
// Every member of the restart view R then calls ViewManager::create(R, options) with
// options.previous = V and options.restart_sources = plan.sources.
//
// Pure and deterministic: no I/O, no clock.
#pragma once

#include <map>
#include <vector>

#include "common/ids.hpp"
#include "common/status.hpp"
#include "common/version.hpp"
#include "core/view.hpp"

namespace squall::core {

// What a restarting node reports: its member record now (addresses may have changed), the
// last view in its view log, and per shard it served in that view the last version its state
// machine holds (durably: after a restart, what survived).
struct RestartReport {
  Member member;
  ViewId last_view;
  std::map<ShardId, Version> applied;
};

struct RestartPlan {
  // View::make(last.id + 1, the counted reporters in last's rank order with their reported
  // records, last.layout(), &last): survivors keep their shards.
  View view;
  // Per shard of the layout: the reporter with the longest log of the shard among those that
  // served it in `last` (ties: the lowest rank in `last`).
  std::map<ShardId, NodeId> sources;
};

// The restart plan from `last` (the view every counted reporter logged last) and `reports`.
// `before_last` is the view logged before `last` (ViewLog::view_before(last.id())), nullptr
// when `last` is a first view: it tells the members `last` carried over from the one before,
// which the quorum needs (docs/core.md, "Majority rule and joiners").
//
// Counted: reports of members of `last` whose last view is `last` (for a node reporting twice,
// its last report). Reports of older views and of non-members are ignored: those nodes join
// the restarted group later like any restarted node.
//
// Errors:
// - precondition_failed: a report names a view newer than `last`: the restart must start
//   from that view, under another leader (the message names the reporter and the view).
// - unavailable: the counted reporters are not yet a strict majority both of `last` and of
//   its carried members, or a shard has no counted reporter that served it in `last`; the
//   message says what is missing.
// - invalid_argument: a report for a shard outside the layout.
Result<RestartPlan> plan_restart(const View& last, const std::vector<RestartReport>& reports,
                                 const View* before_last = nullptr);

}  // namespace squall::core
