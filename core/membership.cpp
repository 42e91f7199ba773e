#include "core/membership.hpp"

#include <algorithm>
#include <new>

#include <fmt/format.h>

#include "common/assert.hpp"
#include "common/log.hpp"

namespace squall::core {

namespace {

constexpr std::size_t kRegionAlignBytes = 4096;

void free_region(std::byte* memory) {
  ::operator delete[](memory, std::align_val_t{kRegionAlignBytes});
}

}  // namespace

Status MembershipOptions::validate() const {
  if (heartbeat_ms < 1 || failure_timeout_ms <= heartbeat_ms) {
    return invalid_argument(fmt::format("need 1 <= heartbeat_ms ({}) < failure_timeout_ms ({})",
                                        heartbeat_ms, failure_timeout_ms));
  }
  return Status::ok();
}

sst::RowRange Membership::Fields::counters() const {
  std::size_t begin = num_changes.offset;
  return {begin, decision.offset + sizeof(std::uint64_t) - begin};
}

Result<std::unique_ptr<Membership>> Membership::create(const View& view, NodeId self,
                                                       MembershipOptions options,
                                                       fabric::Transport& transport,
                                                       ViewLog& log) {
  SQUALL_TRY(options.validate());
  std::optional<std::size_t> rank = view.rank_of(self);
  if (!rank) return invalid_argument(fmt::format("node {} is not in view {}", self, view.id()));
  std::unique_ptr<Membership> membership(
      new Membership(view, *rank, std::move(options), transport, log));
  SQUALL_TRY(membership->init());
  return membership;
}

Membership::Membership(const View& view, std::size_t rank, MembershipOptions options,
                       fabric::Transport& transport, ViewLog& log)
    : view_(view),
      rank_(rank),
      options_(std::move(options)),
      transport_(transport),
      log_(log),
      memory_(nullptr, free_region),
      tagged_transport_(transport, options_.transport_tag) {}

Membership::~Membership() = default;

Status Membership::init() {
  for (std::uint32_t shard = 0; shard < view_.layout().shards; ++shard) {
    shard_width_ = std::max(shard_width_, view_.shard_members(ShardId{shard}).size());
  }
  std::size_t words = view_.layout().shards * shard_width_;
  if (words > kMaxMembershipCountWords) {
    return invalid_argument(fmt::format("{} shards x {} members exceed the membership row "
                                        "bound of {} counts", view_.layout().shards,
                                        shard_width_, kMaxMembershipCountWords));
  }
  std::size_t members = view_.size();
  detector_fields_ = sst::add_failure_detector_fields(schema_, members);
  // Data before the counters that publish it (a newly connected peer gets fields in order).
  fields_.changes = schema_.array<std::uint64_t>("changes", kMaxChangesPerView);
  fields_.received = schema_.array<std::uint64_t>("received", words);
  fields_.trims = schema_.array<std::uint64_t>("trims", words);
  fields_.num_changes = schema_.scalar<std::uint64_t>("num_changes");
  fields_.num_committed = schema_.scalar<std::uint64_t>("num_committed");
  fields_.wedged = schema_.scalar<std::uint64_t>("wedged");
  fields_.decision = schema_.scalar<std::uint64_t>("decision");

  std::size_t bytes = sst::Table::memory_bytes(schema_, members);
  memory_.reset(static_cast<std::byte*>(
      ::operator new[](bytes, std::align_val_t{kRegionAlignBytes})));
  std::span<std::byte> memory(memory_.get(), bytes);
  SQUALL_TRY(transport_.register_region(options_.region, memory));
  std::vector<NodeId> ids;
  for (const Member& member : view_.members()) ids.push_back(member.id);
  table_ = std::make_unique<sst::Table>(schema_, ids, rank_, memory, tagged_transport_,
                                        options_.region);
  detector_ = std::make_unique<sst::FailureDetector>(
      *table_, detector_fields_, options_.heartbeat_ms, options_.failure_timeout_ms,
      [this](std::size_t rank, const std::string&) { on_suspected(rank); });
  table_->set_overflow_callback([this](std::size_t rank) {
    detector_->suspect(rank, "its membership pushes stopped draining");
  });
  leading_ = rank_ == 0;
  for (NodeId node : options_.initial_suspects) suspect(node, "suspected in the previous view");
  return Status::ok();
}

bool Membership::handle(const fabric::Event& event) {
  return handle_sst_event(event, tagged_transport_, *table_, *detector_);
}

void Membership::step(std::uint64_t now_us) {
  detector_->tick(now_us);
  // Suspicion spreads, so a proposal normally arrives with its suspicion; the leader's list is
  // checked too so that a proposal alone is enough.
  if (state_ == MembershipState::running &&
      (detector_->suspected_count() > 0 || read(rank_, fields_.num_changes) > 0 ||
       read(leader_rank(), fields_.num_changes) > 0)) {
    state_ = MembershipState::changing;
  }
  if (state_ == MembershipState::changing) check_minority();
  if (state_ == MembershipState::changing) {
    std::size_t leader = leader_rank();
    if (leader == rank_) {
      lead();
    } else {
      leading_ = false;
      follow(leader);
    }
  }
  table_->flush();
}

std::uint64_t Membership::read(std::size_t row, sst::Scalar<std::uint64_t> field) const {
  return table_->read(row, field);
}

bool Membership::live(std::size_t rank) const {
  return rank == rank_ || !detector_->suspected(rank);
}

bool Membership::suspected(NodeId member) const {
  std::optional<std::size_t> rank = view_.rank_of(member);
  return rank && *rank != rank_ && detector_->suspected(*rank);
}

std::vector<NodeId> Membership::suspects() const {
  std::vector<NodeId> out;
  for (std::size_t rank = 0; rank < view_.size(); ++rank) {
    if (!live(rank)) out.push_back(view_.member(rank).id);
  }
  return out;
}

std::size_t Membership::leader_rank() const {
  for (std::size_t rank = 0; rank < view_.size(); ++rank) {
    if (live(rank)) return rank;
  }
  return rank_;
}

std::vector<NodeId> Membership::changes_of(std::size_t row) const {
  std::uint64_t count = read(row, fields_.num_changes);
  std::vector<NodeId> changes;
  if (count > kMaxChangesPerView) return changes;  // malformed: treated as empty (asserted)
  for (std::size_t i = 0; i < count; ++i) {
    changes.emplace_back(static_cast<std::uint32_t>(table_->read(row, fields_.changes, i)));
  }
  return changes;
}

void Membership::suspect(NodeId member, const std::string& reason) {
  std::optional<std::size_t> rank = view_.rank_of(member);
  if (!rank || *rank == rank_ || detector_->suspected(*rank)) return;
  detector_->suspect(*rank, reason);
}

void Membership::on_suspected(std::size_t rank) {
  logger("core")->info("view {}: node {} suspects node {}", view_.id(),
                       view_.member(rank_).id, view_.member(rank).id);
  if (state_ == MembershipState::running) state_ = MembershipState::changing;
}

void Membership::stop(std::string reason) {
  if (state_ == MembershipState::stopped) return;
  logger("core")->warn("view {}: node {} stops: {}", view_.id(), view_.member(rank_).id,
                       reason);
  state_ = MembershipState::stopped;
  stop_reason_ = std::move(reason);
}

void Membership::check_minority() {
  if (!options_.majority_rule) return;
  std::size_t live_count = view_.size() - detector_->suspected_count();
  if (live_count * 2 <= view_.size()) {
    stop(fmt::format("minority: {} of {} members of view {} reachable", live_count,
                     view_.size(), view_.id()));
  }
}

void Membership::report_wedged(std::span<const std::vector<std::uint64_t>> received) {
  SQUALL_ASSERT(!reported_, "report_wedged twice");
  std::vector<ShardId> shards = view_.shards_of(view_.member(rank_).id);
  SQUALL_ASSERT(received.size() == shards.size(), "{} counts for {} shards", received.size(),
                shards.size());
  for (std::size_t i = 0; i < shards.size(); ++i) {
    SQUALL_ASSERT(received[i].size() == view_.shard_members(shards[i]).size(),
                  "received counts of shard {} have the wrong size", shards[i]);
    for (std::size_t sender = 0; sender < received[i].size(); ++sender) {
      table_->write(fields_.received, shards[i].value * shard_width_ + sender,
                    received[i][sender]);
    }
  }
  table_->push(fields_.received.range());
  table_->write(fields_.wedged, std::uint64_t{1});
  push_counters();
  reported_ = true;
}

void Membership::push_counters() { table_->push(fields_.counters()); }

void Membership::write_changes(const std::vector<NodeId>& changes) {
  SQUALL_ASSERT(changes.size() <= kMaxChangesPerView, "{} changes", changes.size());
  for (std::size_t i = 0; i < changes.size(); ++i) {
    table_->write(fields_.changes, i, std::uint64_t{changes[i].value});
  }
  table_->push(fields_.changes.range());
  table_->write(fields_.num_changes, std::uint64_t{changes.size()});
  push_counters();
}

void Membership::follow(std::size_t leader) {
  if (read(leader, fields_.decision) != 0) {
    accept_decision(leader);
    return;
  }
  std::vector<NodeId> mine = changes_of(rank_);
  std::vector<NodeId> theirs = changes_of(leader);
  if (theirs.size() > mine.size() && std::equal(mine.begin(), mine.end(), theirs.begin())) {
    for (NodeId node : theirs) {
      if (node == view_.member(rank_).id) {
        stop("removed from the view by the leader's proposal");
        return;
      }
      suspect(node, "proposed for removal by the leader");
    }
    write_changes(theirs);
  }
  std::uint64_t committed = std::min<std::uint64_t>(read(leader, fields_.num_committed),
                                                     read(rank_, fields_.num_changes));
  if (committed > read(rank_, fields_.num_committed)) {
    table_->write(fields_.num_committed, committed);
    push_counters();
  }
}

void Membership::lead() {
  if (!leading_) take_over();
  if (!leading_) return;
  if (adopt_decision()) return;
  propose();
  commit();
  decide();
}

void Membership::take_over() {
  // Every member we do not suspect must suspect all lower ranks: then every copy any of them
  // made of an earlier leader's rows has reached us (pushes from one member arrive in order,
  // and its suspicion was pushed after its copies).
  for (std::size_t row = 0; row < view_.size(); ++row) {
    if (row == rank_ || !live(row)) continue;
    for (std::size_t lower = 0; lower < rank_; ++lower) {
      if (table_->read(row, detector_fields_.suspected, lower) == 0) return;
    }
  }
  std::vector<NodeId> longest = changes_of(rank_);
  std::uint64_t committed = read(rank_, fields_.num_committed);
  for (std::size_t row = 0; row < view_.size(); ++row) {
    if (row == rank_ || !live(row)) continue;
    std::vector<NodeId> changes = changes_of(row);
    if (changes.size() > longest.size()) longest = std::move(changes);
    committed = std::max(committed, read(row, fields_.num_committed));
  }
  logger("core")->info("view {}: node {} takes over as leader with {} changes ({} committed)",
                       view_.id(), view_.member(rank_).id, longest.size(), committed);
  if (std::find(longest.begin(), longest.end(), view_.member(rank_).id) != longest.end()) {
    stop("removed from the view by an earlier leader's proposal");
    return;
  }
  for (NodeId node : longest) suspect(node, "proposed for removal by an earlier leader");
  write_changes(longest);
  table_->write(fields_.num_committed, std::min<std::uint64_t>(committed, longest.size()));
  push_counters();
  leading_ = true;
}

void Membership::propose() {
  std::vector<NodeId> changes = changes_of(rank_);
  std::size_t before = changes.size();
  for (NodeId node : suspects()) {
    if (std::find(changes.begin(), changes.end(), node) != changes.end()) continue;
    SQUALL_ASSERT(changes.size() < kMaxChangesPerView, "more than {} changes in a view",
                  kMaxChangesPerView);
    changes.push_back(node);
  }
  if (changes.size() != before) write_changes(changes);
}

void Membership::commit() {
  std::uint64_t proposed = read(rank_, fields_.num_changes);
  if (read(rank_, fields_.num_committed) == proposed) return;
  for (std::size_t row = 0; row < view_.size(); ++row) {
    if (row == rank_ || !live(row)) continue;
    if (read(row, fields_.num_changes) < proposed) return;
  }
  table_->write(fields_.num_committed, proposed);
  push_counters();
}

}  // namespace squall::core
