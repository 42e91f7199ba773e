// The decision half of Membership: the leader's ragged trim and its adoption by members and
// by later leaders (core/membership.hpp).
#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "common/assert.hpp"
#include "common/log.hpp"
#include "core/membership.hpp"

namespace squall::core {

bool Membership::adopt_decision() {
  for (std::size_t row = 0; row < view_.size(); ++row) {
    if (row == rank_ || !live(row) || read(row, fields_.decision) == 0) continue;
    accept_decision(row);
    return true;
  }
  return false;
}

void Membership::decide() {
  std::uint64_t committed = read(rank_, fields_.num_committed);
  if (committed == 0 || committed != read(rank_, fields_.num_changes) || !reported_) return;
  for (std::size_t row = 0; row < view_.size(); ++row) {
    if (row == rank_ || !live(row)) continue;
    if (read(row, fields_.wedged) == 0 || read(row, fields_.num_changes) < committed) return;
  }
  // Suspicions adopted in this very step may have left us without a majority: the next
  // step's check stops us instead. Joiners count by this member's voter stage.
  std::size_t removals = removals_in(committed);
  std::vector<bool> kept(view_.size());
  for (std::size_t rank = 0; rank < view_.size(); ++rank) kept[rank] = live(rank);
  if (options_.majority_rule && !quorum(kept)) return;
  SQUALL_ASSERT(suspects().size() == removals, "deciding with {} suspects and {} removals",
                suspects().size(), removals);
  std::vector<std::vector<std::uint64_t>> trims = compute_trims(committed);
  // Durable before published: a total restart must find every trim anyone applied.
  for (std::uint32_t shard = 0; shard < trims.size(); ++shard) {
    Status status = log_.append(TrimRecord{view_.id(), ShardId{shard}, trims[shard]});
    if (!status.is_ok()) {
      stop("cannot log the ragged trim: " + status.to_string());
      return;
    }
  }
  for (std::uint32_t shard = 0; shard < trims.size(); ++shard) {
    for (std::size_t sender = 0; sender < trims[shard].size(); ++sender) {
      table_->write(fields_.trims, shard * shard_width_ + sender, trims[shard][sender]);
    }
  }
  table_->push(fields_.trims.range());
  table_->write(fields_.decision, committed);
  push_counters();
  logger("core")->info("view {}: leader {} decided: {} changes ({} removals)", view_.id(),
                       view_.member(rank_).id, committed, removals);
  build_decision(committed, std::move(trims));
}

std::vector<std::vector<std::uint64_t>> Membership::compute_trims(std::uint64_t committed) const {
  std::vector<NodeId> changes;  // the removals among the committed changes
  std::vector<MembershipChange> listed = changes_of(rank_);
  for (std::size_t i = 0; i < listed.size() && i < committed; ++i) {
    if (!listed[i].join) changes.push_back(listed[i].member.id);
  }
  std::vector<std::vector<std::uint64_t>> trims(view_.layout().shards);
  for (std::uint32_t shard = 0; shard < trims.size(); ++shard) {
    const std::vector<NodeId>& members = view_.shard_members(ShardId{shard});
    std::vector<std::uint64_t>& trim = trims[shard];
    trim.assign(members.size(), std::numeric_limits<std::uint64_t>::max());
    bool any = false;
    for (NodeId member : members) {
      if (std::find(changes.begin(), changes.end(), member) != changes.end()) continue;
      std::size_t row = *view_.rank_of(member);
      any = true;
      for (std::size_t sender = 0; sender < members.size(); ++sender) {
        trim[sender] = std::min(
            trim[sender], table_->read(row, fields_.received, shard * shard_width_ + sender));
      }
    }
    if (!any) std::fill(trim.begin(), trim.end(), 0);  // no survivor: nobody delivers
  }
  return trims;
}

void Membership::accept_decision(std::size_t row) {
  std::uint64_t committed = read(row, fields_.decision);
  std::vector<MembershipChange> changes = changes_of(row);
  // The counts travel in one push that may land in pieces; they only grow, so a decision
  // ahead of its change count is simply not complete yet.
  if (committed > changes.size()) return;
  std::vector<std::vector<std::uint64_t>> trims(view_.layout().shards);
  for (std::uint32_t shard = 0; shard < trims.size(); ++shard) {
    trims[shard].resize(view_.shard_members(ShardId{shard}).size());
    for (std::size_t sender = 0; sender < trims[shard].size(); ++sender) {
      trims[shard][sender] = table_->read(row, fields_.trims, shard * shard_width_ + sender);
      table_->write(fields_.trims, shard * shard_width_ + sender, trims[shard][sender]);
    }
  }
  // Our copy (changes, trims, then the counts) is pushed before anything we push later, so a
  // leader taking over after us finds it (Membership::take_over()).
  for (std::size_t i = 0; i < changes.size(); ++i) {
    std::array<std::uint64_t, kWordsPerChange> words = encode_change(changes[i]);
    for (std::size_t w = 0; w < kWordsPerChange; ++w) {
      table_->write(fields_.changes, i * kWordsPerChange + w, words[w]);
    }
  }
  table_->push(fields_.changes.range());
  table_->push(fields_.trims.range());
  table_->write(fields_.num_changes, std::uint64_t{changes.size()});
  table_->write(fields_.num_committed, committed);
  table_->write(fields_.decision, committed);
  push_counters();
  NodeId self = view_.member(rank_).id;
  for (ShardId shard : view_.shards_of(self)) {
    Status status = log_.append(TrimRecord{view_.id(), shard, trims[shard.value]});
    if (!status.is_ok()) {
      stop("cannot log the ragged trim: " + status.to_string());
      return;
    }
  }
  build_decision(committed, std::move(trims));
}

void Membership::build_decision(std::uint64_t committed,
                                std::vector<std::vector<std::uint64_t>> trims) {
  ViewChangeDecision decision;
  decision.committed = committed;
  std::vector<MembershipChange> changes = changes_of(rank_);
  SQUALL_ASSERT(changes.size() >= committed, "{} changes for a decision of {}", changes.size(),
                committed);
  for (std::size_t i = 0; i < committed; ++i) {
    if (changes[i].join) {
      decision.joined.push_back(changes[i].member);
    } else {
      decision.removed.push_back(changes[i].member.id);
    }
  }
  for (const Member& member : view_.members()) {
    if (std::find(decision.removed.begin(), decision.removed.end(), member.id) ==
        decision.removed.end()) {
      decision.next_members.push_back(member);
    }
  }
  std::size_t survivors = decision.next_members.size();
  std::vector<bool> kept(view_.size());
  for (std::size_t rank = 0; rank < view_.size(); ++rank) {
    kept[rank] = std::find(decision.removed.begin(), decision.removed.end(),
                           view_.member(rank).id) == decision.removed.end();
  }
  decision.next_members.insert(decision.next_members.end(), decision.joined.begin(),
                               decision.joined.end());
  decision.trims = std::move(trims);
  NodeId self = view_.member(rank_).id;
  bool removed = std::find(decision.removed.begin(), decision.removed.end(), self) !=
                 decision.removed.end();
  decision_ = std::move(decision);
  if (removed) {
    stop("removed from the next view");
  } else if (options_.majority_rule && !quorum(kept)) {
    stop(fmt::format("the next view would keep {} of {} members (no majority at voter stage "
                     "{})", survivors, view_.size(), static_cast<int>(voter_stage())));
  } else {
    state_ = MembershipState::decided;
  }
}

bool Membership::decision_spread() const {
  if (!decision_) return false;
  for (const Member& member : decision_->next_members) {
    std::optional<std::size_t> rank = view_.rank_of(member.id);
    if (!rank) continue;  // a joiner: not in this view's table
    std::size_t row = *rank;
    if (row == rank_ || !live(row)) continue;
    if (read(row, fields_.decision) != decision_->committed) return false;
  }
  return true;
}

}  // namespace squall::core
