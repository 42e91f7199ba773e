#include "core/persistence_frontier.hpp"

#include <utility>
#include <vector>

#include <fmt/format.h>

namespace squall::core {

PersistenceFrontier::PersistenceFrontier(Version floor, std::size_t max_waiters)
    : value_(floor), max_waiters_(max_waiters) {
  SQUALL_ASSERT(max_waiters > 0, "a frontier needs room for at least one waiter");
}

bool PersistenceFrontier::offer(Version candidate) {
  if (candidate <= value_) return false;
  value_ = candidate;
  return true;
}

Status PersistenceFrontier::wait(Version version, Waiter waiter) {
  SQUALL_ASSERT(static_cast<bool>(waiter), "a waiter must be callable");
  if (waiters_.size() >= max_waiters_) {
    return {Code::would_block,
            fmt::format("{} persistence waiters registered (the limit)", waiters_.size())};
  }
  waiters_.emplace(version, std::move(waiter));
  return Status::ok();
}

std::size_t PersistenceFrontier::fire() {
  // Detach first: a waiter may register new waiters.
  std::vector<Waiter> ready;
  while (!waiters_.empty() && waiters_.begin()->first <= value_) {
    ready.push_back(std::move(waiters_.begin()->second));
    waiters_.erase(waiters_.begin());
  }
  for (Waiter& waiter : ready) waiter(Status::ok());
  return ready.size();
}

void PersistenceFrontier::abort_all(const Status& reason) {
  SQUALL_ASSERT(!reason.is_ok(), "aborting waiters needs a reason");
  std::multimap<Version, Waiter> aborted;
  aborted.swap(waiters_);
  for (auto& [version, waiter] : aborted) waiter(reason);
}

}  // namespace squall::core
