// The membership state machine alone, on the simulated fabric: one Membership per node (no
// shard groups; each node reports made-up final received counts when it wedges). Checks that
// survivors reach one decision — the same removals and the same trims, equal to the minimum
// over survivors — after crashes of members and of leaders, and that partitions stop the
// minority side.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include "core/membership.hpp"
#include "fabric/sim_network.hpp"
#include "test/seeds.hpp"

using namespace squall;
using namespace squall::core;

namespace {

constexpr fabric::RegionId kRegion = 7;

struct Node {
  NodeId id;
  fabric::SimTransport* transport = nullptr;
  MemoryViewLog log;
  std::unique_ptr<Membership> membership;
  // What this node reports as received, per shard it serves.
  std::vector<std::vector<std::uint64_t>> received;
};

class Harness {
 public:
  // `joiners`: members new in this view (they vote by stage: core::VoterStage).
  Harness(std::uint64_t seed, std::size_t node_count, ShardLayout layout,
          bool majority_rule = true, std::vector<NodeId> joiners = {})
      : network(options(seed)) {
    std::vector<Member> members;
    for (std::size_t i = 0; i < node_count; ++i) {
      members.push_back({NodeId{static_cast<std::uint32_t>(i + 1)}, {"sim", 0}});
    }
    view.emplace(View::make(ViewId{1}, members, layout).value());
    for (std::size_t i = 0; i < node_count; ++i) {
      auto node = std::make_unique<Node>();
      node->id = members[i].id;
      node->transport = &network.add_node(node->id);
      MembershipOptions membership_options;
      membership_options.region = kRegion;
      membership_options.heartbeat_ms = 1;
      membership_options.failure_timeout_ms = 20;
      membership_options.majority_rule = majority_rule;
      membership_options.joiners = joiners;
      node->membership =
          Membership::create(*view, node->id, membership_options, *node->transport, node->log)
              .value();
      for (ShardId shard : view->shards_of(node->id)) {
        std::vector<std::uint64_t> counts(view->shard_members(shard).size());
        for (auto& count : counts) count = network.random().between(0, 50);
        node->received.push_back(counts);
      }
      nodes.push_back(std::move(node));
    }
    for (auto& a : nodes) {
      for (auto& b : nodes) {
        if (a != b) REQUIRE(a->transport->add_peer(b->id, {}).is_ok());
      }
    }
    for (std::size_t i = 0; i < node_count; ++i) arm(i);
  }

  static fabric::SimOptions options(std::uint64_t seed) {
    fabric::SimOptions sim;
    sim.seed = seed;
    sim.min_delay_us = 5;
    sim.max_delay_us = 40;
    sim.torn_write_per_million = 20'000;
    sim.partition_timeout_us = 30'000;
    return sim;
  }

  void arm(std::size_t index) {
    network.schedule_after(
        50,
        [this, index] {
          tick(*nodes[index]);
          arm(index);
        },
        nodes[index]->id);
  }

  void tick(Node& node) {
    std::vector<fabric::Event> events;
    node.transport->poll(events, 1024);
    for (const auto& event : events) (void)node.membership->handle(event);
    if (node.membership->state() == MembershipState::changing &&
        !node.membership->reported_wedged()) {
      node.membership->report_wedged(node.received);
    }
    node.membership->step(network.now_us());
  }

  // The trims the survivors' reports imply.
  std::vector<std::vector<std::uint64_t>> expected_trims(const std::vector<NodeId>& removed) {
    std::vector<std::vector<std::uint64_t>> trims(view->layout().shards);
    for (std::uint32_t shard = 0; shard < trims.size(); ++shard) {
      const auto& members = view->shard_members(ShardId{shard});
      trims[shard].assign(members.size(), UINT64_MAX);
      bool any = false;
      for (const auto& node : nodes) {
        if (std::find(removed.begin(), removed.end(), node->id) != removed.end()) continue;
        auto shards = view->shards_of(node->id);
        auto at = std::find(shards.begin(), shards.end(), ShardId{shard});
        if (at == shards.end()) continue;
        any = true;
        const auto& counts = node->received[static_cast<std::size_t>(at - shards.begin())];
        for (std::size_t s = 0; s < counts.size(); ++s) {
          trims[shard][s] = std::min(trims[shard][s], counts[s]);
        }
      }
      if (!any) std::fill(trims[shard].begin(), trims[shard].end(), 0);
    }
    return trims;
  }

  fabric::SimNetwork network;
  std::optional<View> view;
  std::vector<std::unique_ptr<Node>> nodes;
};

// Every node not in `dead` decided, all the same: removals that are dead nodes (a node that
// died after the decision is removed by the next view change, not this one), the trims of
// the remaining members' reports; and each logged the trims of its shards.
void require_agreement(Harness& harness, const std::vector<NodeId>& dead) {
  std::optional<ViewChangeDecision> first;
  for (const auto& node : harness.nodes) {
    if (std::find(dead.begin(), dead.end(), node->id) != dead.end()) continue;
    INFO("node " << node->id.value << " state "
                 << static_cast<int>(node->membership->state()) << " "
                 << node->membership->stop_reason());
    REQUIRE(node->membership->state() == MembershipState::decided);
    const ViewChangeDecision& decision = *node->membership->decision();
    if (!first) {
      first = decision;
      REQUIRE_FALSE(decision.removed.empty());
      for (NodeId removed : decision.removed) {
        REQUIRE(std::find(dead.begin(), dead.end(), removed) != dead.end());
      }
      REQUIRE(decision.trims == harness.expected_trims(decision.removed));
    } else {
      REQUIRE(decision.removed == first->removed);
      REQUIRE(decision.trims == first->trims);
    }
    for (ShardId shard : harness.view->shards_of(node->id)) {
      bool logged = false;
      for (const auto& trim : node->log.trims_of(ViewId{1})) {
        logged = logged || (trim.shard == shard && trim.trim == decision.trims[shard.value]);
      }
      REQUIRE(logged);
    }
  }
}

}  // namespace

TEST_CASE("membership: a crashed member is removed and survivors agree on the trim") {
  Harness harness(11, 5, {.shards = 2, .replicas_per_shard = 3});
  harness.network.run_for(5'000);
  harness.network.crash(NodeId{4});
  harness.network.run_for(200'000);
  require_agreement(harness, {NodeId{4}});
}

TEST_CASE("membership: a crashed leader is replaced by the next rank") {
  Harness harness(12, 4, {.shards = 1, .replicas_per_shard = 4});
  harness.network.run_for(5'000);
  harness.network.crash(NodeId{1}, fabric::CrashDetection::silent);
  harness.network.run_for(300'000);
  require_agreement(harness, {NodeId{1}});
}

TEST_CASE("membership: the leader and the next rank crash during the change") {
  Harness harness(13, 7, {.shards = 3, .replicas_per_shard = 2});
  harness.network.run_for(5'000);
  harness.network.crash(NodeId{6});
  harness.network.run_for(21'000);  // the change is under way
  harness.network.crash(NodeId{1});
  harness.network.run_for(3'000);
  harness.network.crash(NodeId{2}, fabric::CrashDetection::silent);
  harness.network.run_for(400'000);
  require_agreement(harness, {NodeId{1}, NodeId{2}, NodeId{6}});
}

TEST_CASE("membership: a partition stops the minority and the majority decides") {
  Harness harness(14, 5, {.shards = 1, .replicas_per_shard = 5});
  harness.network.run_for(5'000);
  std::vector<std::vector<NodeId>> sides{{NodeId{1}, NodeId{2}}, {NodeId{3}, NodeId{4},
                                                                   NodeId{5}}};
  harness.network.partition_groups(sides);
  harness.network.run_for(300'000);
  for (std::size_t i = 0; i < 2; ++i) {
    INFO("node " << i + 1);
    REQUIRE(harness.nodes[i]->membership->state() == MembershipState::stopped);
    REQUIRE_FALSE(harness.nodes[i]->membership->decision().has_value());
  }
  std::vector<NodeId> minority{NodeId{1}, NodeId{2}};
  require_agreement(harness, minority);
}

TEST_CASE("membership: an even split stops everyone (no majority anywhere)") {
  Harness harness(15, 4, {.shards = 1, .replicas_per_shard = 2});
  harness.network.run_for(5'000);
  std::vector<std::vector<NodeId>> sides{{NodeId{1}, NodeId{2}}, {NodeId{3}, NodeId{4}}};
  harness.network.partition_groups(sides);
  harness.network.run_for(300'000);
  for (const auto& node : harness.nodes) {
    REQUIRE(node->membership->state() == MembershipState::stopped);
    REQUIRE(node->log.records().empty());
  }
}

TEST_CASE("membership: with the majority rule off, both halves of a split go on") {
  Harness harness(16, 4, {.shards = 1, .replicas_per_shard = 4}, false);
  harness.network.run_for(5'000);
  std::vector<std::vector<NodeId>> sides{{NodeId{1}, NodeId{2}}, {NodeId{3}, NodeId{4}}};
  harness.network.partition_groups(sides);
  harness.network.run_for(300'000);
  for (const auto& node : harness.nodes) {
    REQUIRE(node->membership->state() == MembershipState::decided);
    REQUIRE(node->membership->decision()->next_members.size() == 2);
  }
  // Each side removed the other: split brain, which is why the rule is on by default.
  REQUIRE(harness.nodes[0]->membership->decision()->next_members[0].id == NodeId{1});
  REQUIRE(harness.nodes[2]->membership->decision()->next_members[0].id == NodeId{3});
}

TEST_CASE("membership: random minority crashes at random times, many seeds") {
  std::uint64_t first = 1;
  std::uint64_t last = testing::seed_count(300);
  if (const char* only = std::getenv("SQUALL_SIM_SEED")) first = last = std::stoull(only);
  for (std::uint64_t seed = first; seed <= last; ++seed) {
    fabric::SimRandom random(seed * 7919);
    std::size_t nodes = random.between(3, 7);
    ShardLayout layout{.shards = static_cast<std::uint32_t>(random.between(1, 3)),
                       .replicas_per_shard = static_cast<std::uint32_t>(random.between(1, 4))};
    Harness harness(seed, nodes, layout);
    std::size_t crashes = random.between(1, (nodes - 1) / 2);
    std::vector<NodeId> dead;
    harness.network.run_for(random.between(1'000, 10'000));
    while (dead.size() < crashes) {
      NodeId victim{static_cast<std::uint32_t>(random.between(1, nodes))};
      if (std::find(dead.begin(), dead.end(), victim) != dead.end()) continue;
      dead.push_back(victim);
      harness.network.crash(victim, random.below(2) == 0 ? fabric::CrashDetection::reset
                                                         : fabric::CrashDetection::silent);
      harness.network.run_for(random.between(0, 40'000));
    }
    harness.network.run_for(400'000);
    INFO("seed " << seed << " nodes " << nodes << " crashes " << crashes
                 << " replay: SQUALL_SIM_SEED=" << seed);
    require_agreement(harness, dead);
  }
}

// ---- Joiners and the majority rule (docs/core.md, "Majority rule and joiners") ----

TEST_CASE("majority_of: any two quorums of one view intersect at every allowed stage pair") {
  // Two disjoint sets A and B of a view with `carried` carried members and `joiners` joiners,
  // judged at stages that can coexist in one view (never `all` with `carried`): at most one
  // is a quorum. Exhaustive over views of up to 9 members.
  using Stage = VoterStage;
  const Stage stages[] = {Stage::carried, Stage::joint, Stage::all};
  std::size_t pairs_checked = 0;
  for (std::size_t members = 1; members <= 9; ++members) {
    for (std::size_t carried = 1; carried <= members; ++carried) {
      std::size_t joiners = members - carried;
      for (Stage a_stage : stages) {
        for (Stage b_stage : stages) {
          bool coexist = !((a_stage == Stage::all && b_stage == Stage::carried) ||
                           (a_stage == Stage::carried && b_stage == Stage::all));
          if (!coexist) continue;
          for (std::size_t a_carried = 0; a_carried <= carried; ++a_carried) {
            for (std::size_t b_carried = 0; a_carried + b_carried <= carried; ++b_carried) {
              for (std::size_t a_joiners = 0; a_joiners <= joiners; ++a_joiners) {
                for (std::size_t b_joiners = 0; a_joiners + b_joiners <= joiners; ++b_joiners) {
                  QuorumCount a{members, a_carried + a_joiners, carried, a_carried};
                  QuorumCount b{members, b_carried + b_joiners, carried, b_carried};
                  INFO(members << " members, " << carried << " carried, stages "
                               << static_cast<int>(a_stage) << "/" << static_cast<int>(b_stage)
                               << ", A " << a_carried << "+" << a_joiners << ", B "
                               << b_carried << "+" << b_joiners);
                  REQUIRE_FALSE((majority_of(a, a_stage) && majority_of(b, b_stage)));
                  ++pairs_checked;
                }
              }
            }
          }
        }
      }
    }
  }
  REQUIRE(pairs_checked > 10'000);
}

TEST_CASE("majority_of: `all` and `carried` together could split, so they never coexist") {
  // Why a member may not count the joiners it has heard from on its own: with carried
  // {1,2,3} and joiners {4,5}, side {1,4,5} (heard them) and side {2,3} (never did) would
  // both have a majority. The protocol reaches `all` only once every member holds `joint`.
  QuorumCount a{5, 3, 3, 1};  // {1,4,5}
  QuorumCount b{5, 2, 3, 2};  // {2,3}
  REQUIRE(majority_of(a, VoterStage::all));
  REQUIRE(majority_of(b, VoterStage::carried));
  REQUIRE_FALSE(majority_of(a, VoterStage::joint));
}

TEST_CASE("majority_of: the survivors of the previous view go on while joiners are silent") {
  // 4 carried + 2 joiners never heard from; the leader dies: 3 of 4 carried remain.
  QuorumCount survivors{6, 3, 4, 3};
  REQUIRE(majority_of(survivors, VoterStage::carried));
  REQUIRE_FALSE(majority_of(survivors, VoterStage::joint));
  REQUIRE_FALSE(majority_of(survivors, VoterStage::all));
  // Once the joiners vote, a founder's loss after a start-up burst (1 carried + 6 joiners)
  // leaves 6 of 7.
  QuorumCount burst{7, 6, 1, 0};
  REQUIRE(majority_of(burst, VoterStage::all));
  REQUIRE_FALSE(majority_of(burst, VoterStage::carried));
  // A view without joiners: every member is carried; the stages agree.
  for (std::size_t live = 0; live <= 5; ++live) {
    QuorumCount plain{5, live, 5, live};
    REQUIRE(majority_of(plain, VoterStage::all) == (live >= 3));
    REQUIRE(majority_of(plain, VoterStage::carried) == (live >= 3));
    REQUIRE(majority_of(plain, VoterStage::joint) == (live >= 3));
  }
}

TEST_CASE("membership: joiners that never start do not stop the survivors (leader crash)") {
  // Regression (joins and leaves under faults, seed 10): the leader admits joiners 4 and 5,
  // dies before they get their view; 2 and 3 (2 of the 3 carried members) must go on.
  Harness harness(21, 5, {.shards = 1, .replicas_per_shard = 3}, true, {NodeId{4}, NodeId{5}});
  harness.network.crash(NodeId{4}, fabric::CrashDetection::silent);
  harness.network.crash(NodeId{5}, fabric::CrashDetection::silent);
  harness.network.run_for(5'000);
  harness.network.crash(NodeId{1}, fabric::CrashDetection::silent);
  harness.network.run_for(300'000);
  require_agreement(harness, {NodeId{1}, NodeId{4}, NodeId{5}});
  REQUIRE(harness.nodes[1]->membership->voter_stage() == VoterStage::carried);
}

TEST_CASE("membership: joiners heard by everyone vote, losing two of five is survived") {
  Harness harness(22, 5, {.shards = 2, .replicas_per_shard = 2}, true, {NodeId{4}, NodeId{5}});
  harness.network.run_for(10'000);
  for (const auto& node : harness.nodes) {
    REQUIRE(node->membership->voter_stage() == VoterStage::all);
  }
  // Two of the three carried members fail: a carried-only rule would stop everyone.
  harness.network.crash(NodeId{1}, fabric::CrashDetection::silent);
  harness.network.crash(NodeId{2});
  harness.network.run_for(300'000);
  require_agreement(harness, {NodeId{1}, NodeId{2}});
}

TEST_CASE("membership: a split when joiners start on one side only: one side goes on") {
  // Joiners 4 and 5 reach the leader but never the other carried members: the leader's side
  // {1,4,5} is a majority of the view but not of the carried members; {2,3} is the reverse.
  // Exactly one of them may decide: the carried majority, as the joiners never voted.
  Harness harness(23, 5, {.shards = 1, .replicas_per_shard = 5}, true, {NodeId{4}, NodeId{5}});
  std::vector<std::vector<NodeId>> sides{{NodeId{1}, NodeId{4}, NodeId{5}},
                                         {NodeId{2}, NodeId{3}}};
  harness.network.partition_groups(sides);
  harness.network.run_for(300'000);
  for (NodeId id : sides[0]) {
    INFO("node " << id.value);
    REQUIRE(harness.nodes[id.value - 1]->membership->state() == MembershipState::stopped);
    REQUIRE_FALSE(harness.nodes[id.value - 1]->membership->decision().has_value());
  }
  require_agreement(harness, sides[0]);
}
