// VcCluster's log invariants: per view, every survivor of a shard delivered the same
// sequence; stopped members a prefix of it; versions strictly increase in every log; no
// acknowledged update is missing anywhere; writes continue in the final view.
#include <algorithm>
#include <unordered_set>

#include <fmt/format.h>

#include "vc_cluster.hpp"

namespace squall::sim {

namespace {

using Sequence = std::vector<VcDelivery>;

Sequence deliveries_of(const LogStateMachine& machine, std::uint32_t view) {
  Sequence out;
  for (const auto& entry : machine.log()) {
    if ((entry.version >> 32) != view) continue;
    out.push_back({entry.version, entry.timestamp, entry.sender, entry.sender_index,
                   entry.payload_hash});
  }
  return out;
}

bool is_prefix(const Sequence& shorter, const Sequence& longer) {
  return shorter.size() <= longer.size() &&
         std::equal(shorter.begin(), shorter.end(), longer.begin());
}

}  // namespace

void VcCluster::check_logs(bool final_check, std::vector<std::string>& problems) {
  for (auto& node : nodes) {
    for (const auto& [shard, machine] : node->machines) {
      Version previous = 0;
      for (const auto& entry : machine->log()) {
        if (entry.version <= previous) {
          problems.push_back(fmt::format("node {} shard {}: version {:#x} after {:#x}",
                                         node->id, shard, entry.version, previous));
          break;
        }
        previous = entry.version;
      }
    }
  }
  std::vector<VcNode*> alive = survivors();
  if (alive.empty()) return;
  VcNode& reference = *alive.front();
  std::uint32_t last_view = reference.installed_views.back().first;
  for (std::uint32_t shard = 0; shard < options.layout.shards; ++shard) {
    for (const auto& [view, members] : reference.installed_views) {
      Sequence expected = deliveries_of(reference.machine(ShardId{shard}), view);
      bool complete = view != last_view || final_check;
      for (auto& node : nodes) {
        if (node->crashed || node.get() == &reference) continue;
        Sequence got = deliveries_of(node->machine(ShardId{shard}), view);
        bool ok = (complete && !node->stop_reason) ? got == expected
                                                   : is_prefix(got, expected) ||
                                                         is_prefix(expected, got);
        if (!ok) {
          problems.push_back(fmt::format("shard {} view {}: node {} delivered {} updates, "
                                         "node {} {}, sequences differ", shard, view,
                                         node->id, got.size(), reference.id,
                                         expected.size()));
        }
      }
      if (final_check && view == last_view && last_view > 1 && expected.empty()) {
        problems.push_back(fmt::format("shard {}: no write delivered in the final view {}",
                                       shard, view));
      }
    }
    for (VcNode* node : alive) {
      std::unordered_set<std::uint64_t> present;
      for (const auto& entry : node->machine(ShardId{shard}).log()) {
        present.insert(entry.payload_hash);
      }
      for (std::uint64_t hash : acked[shard]) {
        if (present.count(hash) == 0) {
          problems.push_back(fmt::format("shard {}: acknowledged update {:#x} lost at node {}",
                                         shard, hash, node->id));
          return;
        }
      }
    }
  }
}

}  // namespace squall::sim
