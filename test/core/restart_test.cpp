// plan_restart (core/restart.hpp): exhaustive over small views — every subset of reporters,
// every layout that fits — against a direct restatement of the rule; and the edge cases
// (newer views, stale and foreign reports, duplicates, joiners of the last view).
#include <catch2/catch.hpp>

#include <string>

#include <fmt/format.h>

#include "core/restart.hpp"
#include "fabric/sim_random.hpp"

using namespace squall;
using namespace squall::core;

namespace {

Member member(std::uint32_t id, std::uint16_t port = 7000) {
  return {NodeId{id}, {fmt::format("10.0.0.{}", id), static_cast<std::uint16_t>(port + id)},
          0, {}};
}

View make_view(std::uint32_t id, std::size_t members, ShardLayout layout,
               const View* previous = nullptr) {
  std::vector<Member> list;
  for (std::uint32_t i = 1; i <= members; ++i) list.push_back(member(i));
  return View::make(ViewId{id}, list, layout, previous).value();
}

RestartReport report(const View& view, NodeId node, fabric::SimRandom& random) {
  RestartReport out{member(node.value, 7100), view.id(), {}};
  for (ShardId shard : view.shards_of(node)) out.applied[shard] = random.between(0, 3);
  return out;
}

}  // namespace

TEST_CASE("plan_restart: every subset of reporters of small views, every layout") {
  fabric::SimRandom random(42);
  std::size_t plans = 0;
  std::size_t waits = 0;
  for (std::size_t size = 1; size <= 6; ++size) {
    for (std::uint32_t shards = 1; shards <= 3; ++shards) {
      for (std::uint32_t replicas = 1; replicas <= size; ++replicas) {
        View last = make_view(5, size, {.shards = shards, .replicas_per_shard = replicas});
        for (std::uint32_t mask = 0; mask < (1U << size); ++mask) {
          std::vector<RestartReport> reports;
          for (std::uint32_t rank = 0; rank < size; ++rank) {
            if ((mask & (1U << rank)) != 0) {
              reports.push_back(report(last, last.member(rank).id, random));
            }
          }
          bool majority = reports.size() * 2 > size;
          bool represented = true;
          for (std::uint32_t shard = 0; shard < shards; ++shard) {
            bool any = false;
            for (NodeId node : last.shard_members(ShardId{shard})) {
              any = any || (mask & (1U << *last.rank_of(node))) != 0;
            }
            represented = represented && any;
          }
          INFO(size << " members, " << shards << " x " << replicas << ", reporters " << mask);
          Result<RestartPlan> plan = plan_restart(last, reports);
          if (!majority || !represented) {
            REQUIRE(plan.status().code() == Code::unavailable);
            ++waits;
            continue;
          }
          REQUIRE(plan.is_ok());
          ++plans;
          REQUIRE(plan->view.id() == ViewId{6});
          REQUIRE(plan->view.size() == reports.size());
          for (std::size_t i = 0; i < reports.size(); ++i) {
            REQUIRE(plan->view.member(i) == reports[i].member);  // rank order, new records
          }
          REQUIRE(plan->sources.size() == shards);
          for (std::uint32_t index = 0; index < shards; ++index) {
            ShardId shard{index};
            NodeId source = plan->sources.at(shard);
            // Survivors keep their shards, so the source serves the shard in both views.
            REQUIRE(last.shard_rank(shard, source));
            REQUIRE(plan->view.shard_rank(shard, source));
            Version best = 0;
            NodeId expected{0};
            bool found = false;
            for (const RestartReport& r : reports) {  // rank order: first maximum wins
              auto at = r.applied.find(shard);
              if (at == r.applied.end()) continue;
              if (!found || at->second > best) {
                best = at->second;
                expected = r.member.id;
                found = true;
              }
            }
            REQUIRE(source == expected);
          }
          for (const RestartReport& r : reports) {  // survivors keep (at least) their shards
            for (ShardId shard : last.shards_of(r.member.id)) {
              REQUIRE(plan->view.shard_rank(shard, r.member.id).has_value());
            }
          }
        }
      }
    }
  }
  REQUIRE(plans > 500);
  REQUIRE(waits > 500);
}

TEST_CASE("plan_restart: a newer view among the reports means another leader") {
  fabric::SimRandom random(1);
  View last = make_view(3, 3, {.shards = 1, .replicas_per_shard = 3});
  std::vector<RestartReport> reports{report(last, NodeId{1}, random),
                                     report(last, NodeId{2}, random)};
  REQUIRE(plan_restart(last, reports).is_ok());
  reports.push_back(report(last, NodeId{3}, random));
  reports.back().last_view = ViewId{4};
  Result<RestartPlan> plan = plan_restart(last, reports);
  REQUIRE(plan.status().code() == Code::precondition_failed);
  REQUIRE(plan.status().message().find("node 3") != std::string::npos);
  REQUIRE(plan.status().message().find("view 4") != std::string::npos);
}

TEST_CASE("plan_restart: stale and foreign reports are not counted, a repeat replaces") {
  fabric::SimRandom random(2);
  View last = make_view(7, 3, {.shards = 1, .replicas_per_shard = 3});
  std::vector<RestartReport> reports{report(last, NodeId{1}, random)};
  RestartReport stale = report(last, NodeId{2}, random);
  stale.last_view = ViewId{6};  // it never installed view 7
  RestartReport foreign{member(9), ViewId{7}, {{ShardId{0}, 100}}};
  reports.push_back(stale);
  reports.push_back(foreign);
  Result<RestartPlan> plan = plan_restart(last, reports);
  REQUIRE(plan.status().code() == Code::unavailable);
  REQUIRE(plan.status().message().find("1 of the 3") != std::string::npos);
  RestartReport second = report(last, NodeId{3}, random);
  second.applied[ShardId{0}] = 5;
  reports.push_back(second);
  second.applied[ShardId{0}] = 9;
  second.member.address.port = 6000;
  reports.push_back(second);
  plan = plan_restart(last, reports);
  REQUIRE(plan.is_ok());
  REQUIRE(plan->view.size() == 2);
  REQUIRE(plan->view.member(1).address.port == 6000);
  REQUIRE(plan->sources.at(ShardId{0}) == NodeId{3});
}

TEST_CASE("plan_restart: a shard without a reporting replica is waited for, and named") {
  fabric::SimRandom random(3);
  // 2 shards x 2 over 4 members: {1,2} and {3,4}.
  View last = make_view(2, 4, {.shards = 2, .replicas_per_shard = 2});
  std::vector<RestartReport> reports{report(last, NodeId{1}, random),
                                     report(last, NodeId{2}, random)};
  reports.push_back(report(last, NodeId{3}, random));
  reports.back().applied.clear();  // says nothing of shard 1: not a representative
  Result<RestartPlan> plan = plan_restart(last, reports);
  REQUIRE(plan.status().code() == Code::unavailable);
  REQUIRE(plan.status().message().find("shard(s) 1") != std::string::npos);
  reports.push_back(report(last, NodeId{4}, random));
  REQUIRE(plan_restart(last, reports).is_ok());
  reports.back().applied[ShardId{7}] = 1;
  REQUIRE(plan_restart(last, reports).status().code() == Code::invalid_argument);
}

TEST_CASE("plan_restart: with joiners in the last view, a majority of the carried is needed") {
  fabric::SimRandom random(4);
  ShardLayout layout{.shards = 1, .replicas_per_shard = 6};
  View before = make_view(1, 2, layout);     // {1,2}
  View last = make_view(2, 6, layout, &before);  // {1,2} carried, {3,4,5,6} joined
  std::vector<RestartReport> reports;
  for (std::uint32_t id = 3; id <= 6; ++id) reports.push_back(report(last, NodeId{id}, random));
  // 4 of 6 is a majority of the view, but none of the carried members: {1,2} may have
  // decided a view 3 alone while the joiners were silent.
  REQUIRE(plan_restart(last, reports).is_ok());  // without the view before: plain majority
  Result<RestartPlan> plan = plan_restart(last, reports, &before);
  REQUIRE(plan.status().code() == Code::unavailable);
  REQUIRE(plan.status().message().find("0 of its 2 carried") != std::string::npos);
  reports.push_back(report(last, NodeId{1}, random));
  REQUIRE(plan_restart(last, reports, &before).status().code() == Code::unavailable);
  reports.push_back(report(last, NodeId{2}, random));
  REQUIRE(plan_restart(last, reports, &before).is_ok());
}
