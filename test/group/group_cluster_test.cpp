// Multi-process group tests over real libfabric (tcp on loopback): founding, joins, kill -9,
// SIGSTOP, restart with a data dir, graceful leave, a joiner of another cluster.
#include <catch2/catch.hpp>

#include <csignal>

#include "group_cluster.hpp"

namespace squall::testing {
namespace {

constexpr std::uint64_t kViewWaitMs = 30000;

void form_three(GroupCluster& cluster) {
  cluster.start(0);
  REQUIRE(cluster.await_view({0}, {0}, kViewWaitMs));
  cluster.start(1);
  cluster.start(2);
  REQUIRE(cluster.await_view({0, 1, 2}, {0, 1, 2}, kViewWaitMs));
  // Joiners count toward majorities once every member has heard them (docs/core.md).
  REQUIRE(cluster.await_all_voters({0, 1, 2}, kViewWaitMs));
}

// Every node's log line of `shard` reports the same entries and checksum.
void require_identical(const std::map<std::uint32_t, std::string>& logs, std::size_t entries) {
  std::string first = logs.begin()->second;
  INFO("first log: " << first);
  CHECK(first.find(" " + std::to_string(entries) + " ") != std::string::npos);
  for (const auto& [id, line] : logs) {
    INFO("node " << id);
    CHECK(line == first);
  }
}

TEST_CASE("three processes form a group and deliver identically", "[group_cluster]") {
  GroupCluster cluster;
  form_three(cluster);
  for (std::uint32_t id : {0U, 1U, 2U}) cluster.command(id, "send 0 200");
  require_identical(cluster.await_logs({0, 1, 2}, 0, 600, 60000), 600);
}

TEST_CASE("kill -9 of a member: survivors go on, the restarted node catches up",
          "[group_cluster]") {
  GroupCluster cluster;
  form_three(cluster);
  for (std::uint32_t id : {0U, 1U, 2U}) cluster.command(id, "send 0 100");
  cluster.await_logs({0, 1, 2}, 0, 300, 60000);
  cluster.kill(2, SIGKILL);
  REQUIRE(cluster.await_view({0, 1}, {0, 1}, kViewWaitMs));
  cluster.command(0, "send 0 150");
  cluster.command(1, "send 0 150");
  require_identical(cluster.await_logs({0, 1}, 0, 600, 60000), 600);
  cluster.start(2);  // same data dir: it has a log of 300 entries
  REQUIRE(cluster.await_view({0, 1, 2}, {0, 1, 2}, kViewWaitMs));
  cluster.command(2, "send 0 30");
  require_identical(cluster.await_logs({0, 1, 2}, 0, 630, 60000), 630);
}

TEST_CASE("kill -9 of the leader: the next member leads and admits joiners",
          "[group_cluster]") {
  GroupCluster cluster;
  form_three(cluster);
  cluster.kill(0, SIGKILL);
  REQUIRE(cluster.await_view({1, 2}, {1, 2}, kViewWaitMs));
  for (std::uint32_t id : {1U, 2U}) cluster.command(id, "send 0 50");
  require_identical(cluster.await_logs({1, 2}, 0, 100, 60000), 100);
  // Node 0 restarts with its data dir: its contact is itself, so it joins through the
  // members of the last view in its log, and is redirected to the new leader.
  cluster.start(0);
  REQUIRE(cluster.await_view({0, 1, 2}, {1, 2, 0}, kViewWaitMs));
  require_identical(cluster.await_logs({0, 1, 2}, 0, 100, 60000), 100);
}

TEST_CASE("a stopped (SIGSTOP) member is removed, after SIGCONT it stops for good",
          "[group_cluster]") {
  GroupCluster cluster;
  form_three(cluster);
  cluster.kill(1, SIGSTOP);
  REQUIRE(cluster.await_view({0, 2}, {0, 2}, kViewWaitMs));
  cluster.kill(1, SIGCONT);
  REQUIRE(cluster.await([&] { return cluster.state(1).stopped.has_value(); }, kViewWaitMs));
  cluster.command(0, "send 0 40");
  require_identical(cluster.await_logs({0, 2}, 0, 40, 60000), 40);
}

TEST_CASE("a graceful leave installs a view without the leaver", "[group_cluster]") {
  GroupCluster cluster;
  form_three(cluster);
  cluster.command(2, "leave");
  REQUIRE(cluster.await_view({0, 1}, {0, 1}, kViewWaitMs));
  REQUIRE(cluster.await(
      [&] {
        for (const auto& line : cluster.lines(2)) {
          if (line == "LEFT ok") return true;
        }
        return false;
      },
      kViewWaitMs));
}

TEST_CASE("a joiner of another cluster is refused and the group is undisturbed",
          "[group_cluster]") {
  GroupCluster cluster;
  form_three(cluster);
  cluster.start(3, "intruders");
  REQUIRE(cluster.await([&] { return cluster.state(3).stopped.has_value(); }, kViewWaitMs));
  CHECK(cluster.state(3).stopped->find("cluster") != std::string::npos);
  CHECK(cluster.state(0).members.size() == 3);
  CHECK(cluster.state(0).view == cluster.state(1).view);
  cluster.command(1, "send 0 20");
  require_identical(cluster.await_logs({0, 1, 2}, 0, 20, 60000), 20);
}

TEST_CASE("a joiner without the cluster secret is refused, clearly, on both sides",
          "[group_cluster]") {
  GroupCluster cluster;
  const std::string secret = "correct horse battery staple";
  cluster.start(0, "groupt", secret);
  REQUIRE(cluster.await_view({0}, {0}, kViewWaitMs));
  cluster.start(1, "groupt", secret);
  REQUIRE(cluster.await_view({0, 1}, {0, 1}, kViewWaitMs));
  cluster.start(2, "groupt", "a different secret, long enough");
  cluster.start(3);  // no secret at all
  for (std::uint32_t intruder : {2U, 3U}) {
    REQUIRE(cluster.await([&] { return cluster.state(intruder).stopped.has_value(); },
                          kViewWaitMs));
    INFO(*cluster.state(intruder).stopped);
    CHECK(cluster.state(intruder).stopped->find("authentication failed") != std::string::npos);
  }
  CHECK(cluster.state(0).members.size() == 2);
  cluster.command(1, "send 0 25");
  require_identical(cluster.await_logs({0, 1}, 0, 25, 60000), 25);
}

TEST_CASE("total restart: every node killed, a majority back from its disks, then the last",
          "[group_cluster]") {
  GroupCluster cluster;
  form_three(cluster);
  for (std::uint32_t id : {0U, 1U, 2U}) cluster.command(id, "send 0 100");
  require_identical(cluster.await_logs({0, 1, 2}, 0, 300, 60000), 300);
  // Ranks of the last view: the founder, the first joiner (both carried into it), the last
  // joiner. Until every row has heard the last joiner a quorum needs the carried members
  // (docs/core.md, "Majority rule and joiners"), so those two come back first.
  std::vector<std::uint32_t> ranks = cluster.state(0).members;
  REQUIRE(ranks.size() == 3);
  cluster.kill_all({0, 1, 2});
  cluster.start(ranks[1]);
  cluster.start(ranks[0]);
  REQUIRE(cluster.await_view({ranks[0], ranks[1]}, {ranks[0], ranks[1]}, kViewWaitMs));
  cluster.command(ranks[1], "send 0 40");
  require_identical(cluster.await_logs({ranks[0], ranks[1]}, 0, 340, 60000), 340);
  cluster.start(ranks[2]);
  REQUIRE(cluster.await_view({0, 1, 2}, {0, 1, 2}, kViewWaitMs));
  cluster.command(ranks[2], "send 0 10");
  require_identical(cluster.await_logs({0, 1, 2}, 0, 350, 60000), 350);
}

TEST_CASE("total restart waits for a majority: one node alone does not restart",
          "[group_cluster]") {
  GroupCluster cluster;
  form_three(cluster);
  cluster.command(0, "send 0 30");
  require_identical(cluster.await_logs({0, 1, 2}, 0, 30, 60000), 30);
  std::vector<std::uint32_t> ranks = cluster.state(0).members;
  REQUIRE(ranks.size() == 3);
  cluster.kill_all({0, 1, 2});
  cluster.start(ranks[0]);
  // Alone it must not install anything (it would split the brain if the others ran).
  CHECK_FALSE(cluster.await([&] { return cluster.state(ranks[0]).view != 0; }, 3000));
  cluster.start(ranks[1]);
  REQUIRE(cluster.await_view({ranks[0], ranks[1]}, {ranks[0], ranks[1]}, kViewWaitMs));
  require_identical(cluster.await_logs({ranks[0], ranks[1]}, 0, 30, 60000), 30);
}

}  // namespace
}  // namespace squall::testing
