#include <catch2/catch.hpp>

#include "sst/predicates.hpp"

using namespace squall::sst;

TEST_CASE("One-shot predicates fire once and are removed") {
  Predicates predicates;
  int value = 0;
  int fired = 0;
  predicates.add(PredicateKind::one_shot, [&]() { return value > 2; },
                 [&]() { ++fired; });
  for (value = 0; value < 10; ++value) predicates.evaluate();
  CHECK(fired == 1);
  CHECK(predicates.size() == 0);
}

TEST_CASE("Recurrent predicates fire on every evaluation that holds") {
  Predicates predicates;
  int value = 0;
  int fired = 0;
  predicates.add(PredicateKind::recurrent, [&]() { return value % 2 == 0; },
                 [&]() { ++fired; });
  for (value = 0; value < 10; ++value) predicates.evaluate();
  CHECK(fired == 5);
}

TEST_CASE("Transition predicates fire only when turning true") {
  Predicates predicates;
  bool state = false;
  int fired = 0;
  predicates.add(PredicateKind::transition, [&]() { return state; },
                 [&]() { ++fired; });
  for (bool next : {false, true, true, true, false, true, false, false, true}) {
    state = next;
    predicates.evaluate();
  }
  CHECK(fired == 3);
}

TEST_CASE("Triggers may add and remove predicates during evaluation") {
  Predicates predicates;
  int child_fired = 0;
  PredicateId self = 0;
  self = predicates.add(
      PredicateKind::recurrent, []() { return true; },
      [&]() {
        predicates.remove(self);
        predicates.add(PredicateKind::recurrent, []() { return true; },
                       [&]() { ++child_fired; });
      });
  CHECK(predicates.evaluate() == 1);  // the child waits for the next evaluation
  CHECK(child_fired == 0);
  CHECK(predicates.evaluate() == 1);
  CHECK(child_fired == 1);
  CHECK(predicates.size() == 1);
}
