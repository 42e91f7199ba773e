#include "workload.hpp"

#include <algorithm>

namespace squall::sim {

Workload::Workload(Cluster& cluster, WorkloadOptions options)
    : cluster_(cluster), options_(options), start_us_(cluster.network.now_us()) {
  fabric::SimRandom& random = cluster.network.random();
  plans_.resize(cluster.replicas.size());
  for (SenderPlan& plan : plans_) {
    if (random.below(100) < options_.idle_percent) continue;
    plan.profile = random.below(2) == 0 ? Profile::steady : Profile::bursty;
    plan.period_us = random.between(10, 2'000);
    plan.next_us = start_us_ + random.below(options_.duration_us / 2 + 1);
  }
  cluster.on_tick = [this](Replica& replica) { on_tick(replica); };
}

std::size_t Workload::active_senders() const {
  return static_cast<std::size_t>(std::count_if(plans_.begin(), plans_.end(), [](const auto& p) {
    return p.profile != Profile::idle;
  }));
}

Bytes Workload::random_bytes(std::size_t size) {
  fabric::SimRandom& random = cluster_.network.random();
  Bytes payload(size);
  std::uint64_t word = 0;
  for (std::size_t i = 0; i < size; ++i) {
    if (i % 8 == 0) word = random.next_u64();
    payload[i] = static_cast<std::byte>(word >> (8 * (i % 8)));
  }
  return payload;
}

Bytes Workload::make_payload(const core::OrderedGroupOptions& group) {
  fabric::SimRandom& random = cluster_.network.random();
  std::size_t small = group.max_small_payload_bytes();
  if (group.large && random.below(100) < options_.large_percent) {
    auto largest = static_cast<std::size_t>(group.max_payload_bytes());
    return random_bytes(random.below(3) == 0 ? largest : random.between(small + 1, largest));
  }
  switch (random.below(8)) {
    case 0: return random_bytes(0);
    case 1: return random_bytes(small);
    default: return random_bytes(random.below(small + 1));
  }
}

void Workload::on_tick(Replica& replica) {
  std::size_t index = static_cast<std::size_t>(
      std::find_if(cluster_.replicas.begin(), cluster_.replicas.end(),
                   [&](const auto& r) { return r.get() == &replica; }) -
      cluster_.replicas.begin());
  SenderPlan& plan = plans_[index];
  std::uint64_t now_us = cluster_.network.now_us();
  if (plan.profile == Profile::idle || now_us < plan.next_us ||
      now_us >= start_us_ + options_.duration_us ||
      plan.generated >= options_.max_messages_per_sender) {
    return;
  }
  fabric::SimRandom& random = cluster_.network.random();
  std::size_t count = plan.profile == Profile::steady ? 1 : random.between(1, options_.max_burst);
  count = std::min(count, options_.max_messages_per_sender - plan.generated);
  for (std::size_t i = 0; i < count; ++i) {
    replica.backlog.push_back(make_payload(replica.group->options()));
  }
  plan.generated += count;
  generated_ += count;
  std::uint64_t gap_us = plan.profile == Profile::steady ? plan.period_us
                                                          : random.between(1, 4 * plan.period_us);
  plan.next_us = now_us + gap_us;
}

}  // namespace squall::sim
