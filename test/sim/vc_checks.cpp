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
  for (std::uint32_t shard = 0; shard < options.layout.shards; ++shard) {
    check_shard(ShardId{shard}, final_check, problems);
  }
}

namespace {

bool serves_from(const VcNode& node, ShardId shard, std::uint32_t view) {
  auto at = node.first_view_of_shard.find(shard.value);
  return at != node.first_view_of_shard.end() && at->second <= view;
}

// A replacement replica starts without state and without the shard's last timestamp, so in
// its first view its timestamps may differ; everything else must match.
bool same_ignoring_timestamps(const Sequence& a, const Sequence& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
    return x.version == y.version && x.sender == y.sender &&
           x.sender_index == y.sender_index && x.payload_hash == y.payload_hash;
  });
}

}  // namespace

void VcCluster::check_shard(ShardId shard, bool final_check, std::vector<std::string>& problems) {
  // The reference: a surviving original replica (none: every original replica died, and the
  // shard's history went with them — no state transfer yet).
  std::vector<VcNode*> alive = survivors();
  auto original = std::find_if(alive.begin(), alive.end(),
                               [shard](VcNode* node) { return serves_from(*node, shard, 1); });
  if (original == alive.end()) return;
  VcNode& reference = **original;
  std::uint32_t last_view = reference.installed_views.back().first;
  for (const auto& [view, members] : reference.installed_views) {
    Sequence expected = deliveries_of(reference.machine(shard), view);
    bool complete = view != last_view || final_check;
    for (auto& node : nodes) {
      if (node->crashed || node.get() == &reference || !serves_from(*node, shard, view)) {
        continue;
      }
      Sequence got = deliveries_of(node->machine(shard), view);
      bool replacement = !serves_from(*node, shard, 1);
      bool ok = false;
      if (complete && !node->stop_reason) {
        ok = replacement ? same_ignoring_timestamps(got, expected) : got == expected;
      } else {
        std::size_t common = std::min(got.size(), expected.size());
        Sequence got_prefix(got.begin(), got.begin() + static_cast<std::ptrdiff_t>(common));
        Sequence expected_prefix(expected.begin(),
                                 expected.begin() + static_cast<std::ptrdiff_t>(common));
        ok = replacement ? same_ignoring_timestamps(got_prefix, expected_prefix)
                         : got_prefix == expected_prefix;
      }
      if (!ok) {
        problems.push_back(fmt::format("shard {} view {}: node {} delivered {} updates, "
                                       "node {} {}, sequences differ", shard, view, node->id,
                                       got.size(), reference.id, expected.size()));
      }
    }
    if (final_check && view == last_view && last_view > 1 && expected.empty()) {
      problems.push_back(fmt::format("shard {}: no write delivered in the final view {}",
                                     shard, view));
    }
  }
  for (VcNode* node : alive) {
    if (!serves_from(*node, shard, 1)) continue;  // a replacement lacks the old history
    std::unordered_set<std::uint64_t> present;
    for (const auto& entry : node->machine(shard).log()) present.insert(entry.payload_hash);
    for (std::uint64_t hash : acked[shard.value]) {
      if (present.count(hash) == 0) {
        problems.push_back(fmt::format("shard {}: acknowledged update {:#x} lost at node {}",
                                       shard, hash, node->id));
        return;
      }
    }
  }
}

}  // namespace squall::sim
