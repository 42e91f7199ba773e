#include "sst/predicates.hpp"

#include <algorithm>

#include "common/assert.hpp"

namespace squall::sst {

PredicateId Predicates::add(PredicateKind kind, Predicate predicate, Trigger trigger) {
  SQUALL_ASSERT(predicate && trigger, "predicate and trigger must be callable");
  Entry entry{.id = next_id_++, .kind = kind, .predicate = std::move(predicate),
              .trigger = std::move(trigger)};
  PredicateId id = entry.id;
  (evaluating_ ? added_while_evaluating_ : entries_).push_back(std::move(entry));
  return id;
}

void Predicates::remove(PredicateId id) {
  for (auto* list : {&entries_, &added_while_evaluating_}) {
    for (Entry& entry : *list) {
      if (entry.id == id) entry.removed = true;
    }
  }
}

std::size_t Predicates::evaluate() {
  SQUALL_ASSERT(!evaluating_, "evaluate() is not reentrant");
  evaluating_ = true;
  std::size_t fired = 0;
  // Index loop: triggers may append to added_while_evaluating_, never to entries_.
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    Entry& entry = entries_[i];
    if (entry.removed) continue;
    bool value = entry.predicate();
    bool fire = value && (entry.kind != PredicateKind::transition || !entry.last_value);
    entry.last_value = value;
    if (!fire) continue;
    if (entry.kind == PredicateKind::one_shot) entry.removed = true;
    ++fired;
    // Safe to call in place: during evaluation entries_ never grows and removal only marks.
    entry.trigger();
  }
  evaluating_ = false;
  std::erase_if(entries_, [](const Entry& entry) { return entry.removed; });
  for (Entry& entry : added_while_evaluating_) {
    if (!entry.removed) entries_.push_back(std::move(entry));
  }
  added_while_evaluating_.clear();
  return fired;
}

std::size_t Predicates::size() const {
  return static_cast<std::size_t>(std::count_if(entries_.begin(), entries_.end(),
                                                [](const Entry& e) { return !e.removed; })) +
         added_while_evaluating_.size();
}

}  // namespace squall::sst
