#include "core/restart.hpp"

#include <algorithm>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "core/membership.hpp"

namespace squall::core {

namespace {

// The counted report of each member of `last` (by rank), the later one for a node reporting
// twice; nullptr where none.
std::vector<const RestartReport*> counted_reports(const View& last,
                                                  const std::vector<RestartReport>& reports) {
  std::vector<const RestartReport*> by_rank(last.size(), nullptr);
  for (const RestartReport& report : reports) {
    std::optional<std::size_t> rank = last.rank_of(report.member.id);
    if (!rank || report.last_view != last.id()) continue;
    by_rank[*rank] = &report;
  }
  return by_rank;
}

Status check_reports(const View& last, const std::vector<RestartReport>& reports) {
  for (const RestartReport& report : reports) {
    if (report.last_view > last.id()) {
      return Status(Code::precondition_failed,
                    fmt::format("node {} logged view {}, newer than view {}: the restart must "
                                "start from that view",
                                report.member.id, report.last_view, last.id()));
    }
    for (const auto& [shard, version] : report.applied) {
      if (shard.value >= last.layout().shards) {
        return invalid_argument(fmt::format("node {} reports shard {} of a {}-shard layout",
                                            report.member.id, shard, last.layout().shards));
      }
    }
  }
  return Status::ok();
}

// A restart quorum intersects every quorum a decision of `last` could have used, whatever
// its voter stage: a strict majority of `last` and of its carried members.
Status check_quorum(const View& last, const View* before_last,
                    const std::vector<const RestartReport*>& by_rank) {
  QuorumCount count;
  count.members = last.size();
  for (std::size_t rank = 0; rank < last.size(); ++rank) {
    bool carried = before_last == nullptr || before_last->contains(last.member(rank).id);
    bool reported = by_rank[rank] != nullptr;
    count.carried += carried ? 1 : 0;
    count.live += reported ? 1 : 0;
    count.carried_live += carried && reported ? 1 : 0;
  }
  if (majority_of(count, VoterStage::joint)) return Status::ok();
  return unavailable(fmt::format("{} of the {} members of view {} reported ({} of its {} "
                                 "carried members): need more than half of both",
                                 count.live, count.members, last.id(), count.carried_live,
                                 count.carried));
}

}  // namespace

Result<RestartPlan> plan_restart(const View& last, const std::vector<RestartReport>& reports,
                                 const View* before_last) {
  SQUALL_TRY(check_reports(last, reports));
  std::vector<const RestartReport*> by_rank = counted_reports(last, reports);
  SQUALL_TRY(check_quorum(last, before_last, by_rank));
  std::map<ShardId, NodeId> sources;
  std::vector<std::uint32_t> missing;
  for (std::uint32_t index = 0; index < last.layout().shards; ++index) {
    ShardId shard{index};
    std::optional<std::pair<Version, NodeId>> best;
    // In the shard's members' rank order of `last`: a tie keeps the lowest rank.
    for (std::size_t rank = 0; rank < last.size(); ++rank) {
      const RestartReport* report = by_rank[rank];
      if (report == nullptr || !last.shard_rank(shard, report->member.id)) continue;
      auto at = report->applied.find(shard);
      if (at == report->applied.end()) continue;
      if (!best || at->second > best->first) best = std::pair{at->second, report->member.id};
    }
    if (!best) {
      missing.push_back(index);
      continue;
    }
    sources.emplace(shard, best->second);
  }
  if (!missing.empty()) {
    return unavailable(fmt::format("no report yet from a replica of shard(s) {} of view {}",
                                   fmt::join(missing, ", "), last.id()));
  }
  std::vector<Member> members;
  for (const RestartReport* report : by_rank) {
    if (report != nullptr) members.push_back(report->member);
  }
  Result<View> view = View::make(ViewId{last.id().value + 1}, std::move(members),
                                 last.layout(), &last);
  if (!view) return view.status();
  return RestartPlan{std::move(*view), std::move(sources)};
}

}  // namespace squall::core
