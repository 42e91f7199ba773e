// VcCluster's log invariants: per view, every survivor of a shard delivered the same
// sequence; stopped members a prefix of it; versions strictly increase in every log; no
// acknowledged update is missing anywhere; writes continue in the final view.
#include <algorithm>
#include <map>
#include <unordered_set>

#include <fmt/format.h>

#include "vc_cluster.hpp"

namespace squall::sim {

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

using Entry = LogStateMachine::Entry;

bool same_update(const Entry& a, const Entry& b) {
  return a.version == b.version && a.timestamp == b.timestamp && a.sender == b.sender &&
         a.payload_hash == b.payload_hash &&
         (a.transferred || b.transferred || a.sender_index == b.sender_index);
}

// Entries of `log` with versions in (after, up_to].
std::size_t count_between(const std::vector<Entry>& log, Version after, Version up_to) {
  return static_cast<std::size_t>(std::count_if(log.begin(), log.end(), [&](const Entry& e) {
    return e.version > after && e.version <= up_to;
  }));
}

}  // namespace

// The shard's history is the log of the most advanced replica that serves it now with its
// state; every other replica's log (stopped ones included) must agree with it wherever both
// hold a version, and a serving replica's log must be gap-free: exactly the history's
// versions between its checkpoint base and its last version (a delivery before its state
// arrived would leave a gap or a wrong entry). At the end, serving replicas hold the same
// state (version and checksum). Acknowledged updates survive wherever a replica of the view
// that acknowledged them survives.
void VcCluster::check_shard(ShardId shard, bool final_check, std::vector<std::string>& problems) {
  std::vector<VcNode*> serving;
  for (VcNode* node : survivors()) {
    if (node->manager->view().shard_rank(shard, node->id) && node->manager->shard_ready(shard)) {
      serving.push_back(node);
    }
  }
  if (serving.empty()) return;
  VcNode* reference = *std::max_element(serving.begin(), serving.end(), [shard](auto* a, auto* b) {
    return a->machine(shard).applied_version() < b->machine(shard).applied_version();
  });
  const LogStateMachine& history = reference->machine(shard);
  std::map<Version, const Entry*> by_version;
  for (const Entry& entry : history.log()) by_version.emplace(entry.version, &entry);
  // A replica that found no source continued without the history: older logs differ.
  bool lost = std::any_of(nodes.begin(), nodes.end(), [shard](const auto& node) {
    return node->manager && node->manager->history_lost(shard);
  });
  for (auto& node : nodes) {
    if (node->crashed || !node->machines.contains(shard.value)) continue;
    if (lost && std::find(serving.begin(), serving.end(), node.get()) == serving.end()) continue;
    const LogStateMachine& mine = node->machine(shard);
    for (const Entry& entry : mine.log()) {
      if (entry.version <= history.base_version() || entry.version > history.applied_version()) {
        continue;
      }
      auto at = by_version.find(entry.version);
      if (at == by_version.end() || !same_update(entry, *at->second)) {
        problems.push_back(fmt::format("shard {}: node {} holds version {:#x} unlike node {}",
                                       shard, node->id, entry.version, reference->id));
        break;
      }
    }
  }
  for (VcNode* node : serving) {
    const LogStateMachine& mine = node->machine(shard);
    Version from = std::max(mine.base_version(), history.base_version());
    Version to = mine.applied_version();
    if (count_between(mine.log(), from, to) != count_between(history.log(), from, to)) {
      problems.push_back(fmt::format("shard {}: node {} has a gap in ({:#x}, {:#x}]", shard,
                                     node->id, from, to));
    }
    if (final_check && (mine.applied_version() != history.applied_version() ||
                        mine.checksum() != history.checksum())) {
      problems.push_back(fmt::format("shard {}: node {} ends at {:#x}, node {} at {:#x} (or "
                                     "checksums differ)", shard, node->id,
                                     mine.applied_version(), reference->id,
                                     history.applied_version()));
    }
  }
  std::uint64_t alive_mask = 0;
  for (VcNode* node : survivors()) alive_mask |= 1ULL << node->id.value;
  for (VcNode* node : serving) {
    const LogStateMachine& mine = node->machine(shard);
    std::unordered_set<std::uint64_t> present;
    for (const Entry& entry : mine.log()) present.insert(entry.payload_hash);
    for (const auto& [hash, acknowledged] : acked[shard.value]) {
      auto [version, members] = acknowledged;
      if ((members & alive_mask) == 0 || version <= mine.base_version()) continue;
      if (version <= mine.applied_version() || final_check) {
        if (!present.contains(hash)) {
          problems.push_back(fmt::format("shard {}: acknowledged update {:#x} ({:#x}) lost at "
                                         "node {}", shard, hash, version, node->id));
          return;
        }
      }
    }
  }
  if (final_check) {
    std::uint32_t last_view = reference->installed_views.back().first;
    bool any = std::any_of(history.log().begin(), history.log().end(),
                           [&](const Entry& e) { return (e.version >> 32) == last_view; });
    if (!any && last_view > 1) {
      problems.push_back(fmt::format("shard {}: no write delivered in the final view {}",
                                     shard, last_view));
    }
  }
}

}  // namespace squall::sim
