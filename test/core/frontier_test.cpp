// The persistence frontier and its waiters.
#include <catch2/catch.hpp>

#include "core/persistence_frontier.hpp"

using namespace squall;
using namespace squall::core;

TEST_CASE("The frontier only moves forward") {
  PersistenceFrontier frontier(10, 4);
  REQUIRE(frontier.value() == 10);
  REQUIRE_FALSE(frontier.offer(5));
  REQUIRE(frontier.value() == 10);
  REQUIRE(frontier.offer(12));
  REQUIRE_FALSE(frontier.offer(12));
  REQUIRE(frontier.value() == 12);
}

TEST_CASE("Waiters fire in version order once reached, never inside wait()") {
  PersistenceFrontier frontier(0, 8);
  std::vector<int> fired;
  REQUIRE(frontier.wait(3, [&](const Status& s) { REQUIRE(s.is_ok()); fired.push_back(3); })
              .is_ok());
  REQUIRE(frontier.wait(1, [&](const Status& s) { REQUIRE(s.is_ok()); fired.push_back(1); })
              .is_ok());
  REQUIRE(frontier.wait(0, [&](const Status&) { fired.push_back(0); }).is_ok());
  REQUIRE(fired.empty());  // even version 0, already reached, waits for fire()
  REQUIRE(frontier.fire() == 1);
  REQUIRE(frontier.offer(2));
  REQUIRE(frontier.fire() == 1);
  REQUIRE(fired == std::vector<int>{0, 1});
  REQUIRE(frontier.offer(7));
  // A waiter registering another waiter from its callback is fine.
  REQUIRE(frontier.wait(4, [&](const Status&) {
    fired.push_back(4);
    REQUIRE(frontier.wait(100, [&](const Status&) { fired.push_back(100); }).is_ok());
  }).is_ok());
  REQUIRE(frontier.fire() == 2);
  REQUIRE(fired == std::vector<int>{0, 1, 3, 4});
  REQUIRE(frontier.waiters() == 1);
}

TEST_CASE("Waiters are bounded and can be aborted with a reason") {
  PersistenceFrontier frontier(0, 2);
  std::vector<Code> outcomes;
  auto record = [&](const Status& s) { outcomes.push_back(s.code()); };
  REQUIRE(frontier.wait(5, record).is_ok());
  REQUIRE(frontier.wait(6, record).is_ok());
  REQUIRE(frontier.wait(7, record).code() == Code::would_block);
  frontier.abort_all(Status(Code::aborted, "view change"));
  REQUIRE(outcomes == std::vector<Code>{Code::aborted, Code::aborted});
  REQUIRE(frontier.waiters() == 0);
  REQUIRE(frontier.wait(7, record).is_ok());
}
