// Predicates over the table with triggers, evaluated by one loop.
//
// Kinds: one_shot fires the first time its predicate holds, then is removed; recurrent fires
// every evaluation in which it holds; transition fires when it turns from false to true
// (it starts as false). Triggers run inside evaluate(); they must be short and must not block.
// They may add or remove predicates: additions take part from the next evaluation, removals
// take effect at once.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace squall::sst {

enum class PredicateKind : std::uint8_t { one_shot, recurrent, transition };

using PredicateId = std::uint64_t;

class Predicates {
 public:
  // Predicates and triggers capture the table (and whatever else they read) themselves.
  using Predicate = std::function<bool()>;
  using Trigger = std::function<void()>;

  PredicateId add(PredicateKind kind, Predicate predicate, Trigger trigger);
  void remove(PredicateId id);
  // Runs every live predicate once, in insertion order; returns how many triggers fired.
  std::size_t evaluate();
  std::size_t size() const;

 private:
  struct Entry {
    PredicateId id = 0;
    PredicateKind kind = PredicateKind::recurrent;
    Predicate predicate;
    Trigger trigger;
    bool last_value = false;
    bool removed = false;
  };

  std::vector<Entry> entries_;
  std::vector<Entry> added_while_evaluating_;
  bool evaluating_ = false;
  PredicateId next_id_ = 1;
};

}  // namespace squall::sst
