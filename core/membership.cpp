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
  return {begin, voters.offset + sizeof(std::uint64_t) - begin};
}

bool majority_of(const QuorumCount& count, VoterStage stage) {
  SQUALL_ASSERT(count.live <= count.members && count.carried <= count.members &&
                    count.carried_live <= count.carried && count.carried_live <= count.live,
                "inconsistent quorum count");
  bool of_carried = count.carried_live * 2 > count.carried;
  bool of_all = count.live * 2 > count.members;
  switch (stage) {
    case VoterStage::carried:
      return of_carried;
    case VoterStage::joint:
      return of_carried && of_all;
    case VoterStage::all:
      return of_all;
  }
  return false;
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
  fields_.changes =
      schema_.array<std::uint64_t>("changes", kMaxChangesPerView * kWordsPerChange);
  fields_.received = schema_.array<std::uint64_t>("received", words);
  fields_.trims = schema_.array<std::uint64_t>("trims", words);
  fields_.num_changes = schema_.scalar<std::uint64_t>("num_changes");
  fields_.num_committed = schema_.scalar<std::uint64_t>("num_committed");
  fields_.wedged = schema_.scalar<std::uint64_t>("wedged");
  fields_.decision = schema_.scalar<std::uint64_t>("decision");
  fields_.voters = schema_.scalar<std::uint64_t>("voters");

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
      [this](std::size_t rank, const std::string&) { on_suspected(rank); },
      options_.first_heartbeat_timeout_ms);
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
       read(leader_rank(), fields_.num_changes) > 0 || leaving_ ||
       (!pending_joins_.empty() && leader_rank() == rank_))) {
    state_ = MembershipState::changing;
  }
  if (state_ == MembershipState::running) advance_voters();
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

std::array<std::uint64_t, kWordsPerChange> encode_change(const MembershipChange& change) {
  std::array<std::uint64_t, kWordsPerChange> words{change.member.id.value, 0, 0};
  if (!change.join) return words;
  SQUALL_ASSERT(validate_joiner(change.member).is_ok(), "joiner {} is not valid",
                change.member.id);
  const Member& member = change.member;
  words[0] |= kJoinFlag;
  words[1] = (std::uint64_t{*parse_ipv4(member.address.host)} << 32) |
             (std::uint64_t{member.address.port} << 16) | member.membership_port;
  if (!member.rest.host.empty()) {
    words[2] = (std::uint64_t{*parse_ipv4(member.rest.host)} << 32) |
               (std::uint64_t{member.rest.port} << 16) | 1U;
  }
  return words;
}

std::optional<MembershipChange> decode_change(
    std::span<const std::uint64_t, kWordsPerChange> words) {
  MembershipChange change;
  change.member.id = NodeId{static_cast<std::uint32_t>(words[0])};
  change.join = (words[0] & kJoinFlag) != 0;
  if ((words[0] & ~kJoinFlag) >> 32 != 0) return std::nullopt;
  if (!change.join) {
    if (words[1] != 0 || words[2] != 0) return std::nullopt;
    return change;
  }
  Member& member = change.member;
  member.address.host = format_ipv4(static_cast<std::uint32_t>(words[1] >> 32));
  member.address.port = static_cast<std::uint16_t>(words[1] >> 16);
  member.membership_port = static_cast<std::uint16_t>(words[1]);
  if ((words[2] & 0xFFFF) > 1) return std::nullopt;
  if ((words[2] & 1U) != 0) {
    member.rest.host = format_ipv4(static_cast<std::uint32_t>(words[2] >> 32));
    member.rest.port = static_cast<std::uint16_t>(words[2] >> 16);
  } else if (words[2] != 0) {
    return std::nullopt;
  }
  if (!validate_joiner(member).is_ok()) return std::nullopt;
  return change;
}

std::vector<MembershipChange> Membership::changes_of(std::size_t row) const {
  std::uint64_t count = read(row, fields_.num_changes);
  std::vector<MembershipChange> changes;
  if (count > kMaxChangesPerView) return changes;  // no correct member writes that
  for (std::size_t i = 0; i < count; ++i) {
    std::array<std::uint64_t, kWordsPerChange> words{};
    for (std::size_t w = 0; w < kWordsPerChange; ++w) {
      words[w] = table_->read(row, fields_.changes, i * kWordsPerChange + w);
    }
    std::optional<MembershipChange> change = decode_change(words);
    if (!change) break;  // a torn or foreign entry: the list ends before it
    changes.push_back(std::move(*change));
  }
  return changes;
}

std::size_t Membership::removals_in(std::uint64_t committed) const {
  std::vector<MembershipChange> changes = changes_of(rank_);
  std::size_t removals = 0;
  for (std::size_t i = 0; i < changes.size() && i < committed; ++i) {
    removals += changes[i].join ? 0 : 1;
  }
  return removals;
}

void Membership::suspect(NodeId member, const std::string& reason) {
  std::optional<std::size_t> rank = view_.rank_of(member);
  if (!rank || *rank == rank_ || detector_->suspected(*rank)) return;
  detector_->suspect(*rank, reason);
}

void Membership::request_removal(NodeId member, const std::string& reason) {
  if (member != view_.member(rank_).id) {
    suspect(member, "removal requested: " + reason);
    return;
  }
  if (leaving_) return;
  logger("core")->info("view {}: node {} leaves: {}", view_.id(), member, reason);
  leaving_ = true;
  if (leader_rank() != rank_) flag_self_leaving();
}

void Membership::flag_self_leaving() {
  // Our own entry of suspected[]: peers spread it like any suspicion, and the leader proposes
  // our removal. (The detector never suspects its own rank; this flag is written directly.)
  table_->write(detector_fields_.suspected, rank_, std::uint8_t{1});
  table_->push(detector_fields_.suspected.range());
}

void Membership::propose_joins(std::vector<Member> joiners) {
  SQUALL_ASSERT(joiners.size() <= kMaxChangesPerView, "{} joiners queued", joiners.size());
  pending_joins_ = std::move(joiners);
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
  std::vector<bool> live_set(view_.size());
  for (std::size_t rank = 0; rank < view_.size(); ++rank) live_set[rank] = live(rank);
  if (!quorum(live_set)) {
    std::size_t live_count = view_.size() - detector_->suspected_count();
    stop(fmt::format("minority: {} of {} members of view {} reachable (voter stage {})",
                     live_count, view_.size(), view_.id(),
                     static_cast<int>(voter_stage())));
  }
}

bool Membership::carried(std::size_t rank) const {
  const std::vector<NodeId>& joiners = options_.joiners;
  return std::find(joiners.begin(), joiners.end(), view_.member(rank).id) == joiners.end();
}

VoterStage Membership::voter_stage() const {
  if (options_.joiners.empty()) return VoterStage::all;
  std::uint64_t stage = read(rank_, fields_.voters);
  return stage >= 2 ? VoterStage::all : static_cast<VoterStage>(stage);
}

bool Membership::quorum(const std::vector<bool>& in_set) const {
  QuorumCount count;
  count.members = view_.size();
  for (std::size_t rank = 0; rank < view_.size(); ++rank) {
    bool is_carried = carried(rank);
    count.carried += is_carried ? 1 : 0;
    count.live += in_set[rank] ? 1 : 0;
    count.carried_live += is_carried && in_set[rank] ? 1 : 0;
  }
  return majority_of(count, voter_stage());
}

void Membership::advance_voters() {
  // Only while running: a member's stage is frozen once a change begins, so the stage a
  // decision is judged at is the one every other member later reads in its row.
  if (options_.joiners.empty()) return;
  std::uint64_t own = read(rank_, fields_.voters);
  std::uint64_t next = own;
  bool all_joint = true;
  for (std::size_t row = 0; row < view_.size(); ++row) {
    std::uint64_t stage = std::min<std::uint64_t>(read(row, fields_.voters), 2);
    all_joint = all_joint && stage >= 1;
    // A row at `all` proves that every row held `joint`; one at `joint` that the leader
    // proposed it.
    if (row != rank_ && live(row)) next = std::max(next, stage);
  }
  if (own == 0 && rank_ == leader_rank()) {
    bool heard_all = true;  // every joiner's first heartbeat has arrived
    for (std::size_t row = 0; row < view_.size(); ++row) {
      if (row != rank_ && !carried(row)) {
        heard_all = heard_all && table_->read(row, detector_fields_.heartbeat) != 0;
      }
    }
    if (heard_all) next = std::max<std::uint64_t>(next, 1);
  }
  if (next >= 1 && all_joint) next = 2;
  if (next == own) return;
  table_->write(fields_.voters, next);
  push_counters();
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

void Membership::write_changes(const std::vector<MembershipChange>& changes) {
  SQUALL_ASSERT(changes.size() <= kMaxChangesPerView, "{} changes", changes.size());
  for (std::size_t i = 0; i < changes.size(); ++i) {
    std::array<std::uint64_t, kWordsPerChange> words = encode_change(changes[i]);
    for (std::size_t w = 0; w < kWordsPerChange; ++w) {
      table_->write(fields_.changes, i * kWordsPerChange + w, words[w]);
    }
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
  std::vector<MembershipChange> mine = changes_of(rank_);
  std::vector<MembershipChange> theirs = changes_of(leader);
  if (theirs.size() > mine.size() && std::equal(mine.begin(), mine.end(), theirs.begin())) {
    if (!follow_changes(theirs, "the leader")) return;
    write_changes(theirs);
  }
  std::uint64_t committed = std::min<std::uint64_t>(read(leader, fields_.num_committed),
                                                     read(rank_, fields_.num_changes));
  if (committed > read(rank_, fields_.num_committed)) {
    table_->write(fields_.num_committed, committed);
    push_counters();
  }
}

bool Membership::follow_changes(const std::vector<MembershipChange>& changes,
                                const char* who) {
  for (const MembershipChange& change : changes) {
    if (change.join) continue;
    if (change.member.id == view_.member(rank_).id) {
      stop(fmt::format("removed from the view by {}'s proposal", who));
      return false;
    }
    suspect(change.member.id, fmt::format("proposed for removal by {}", who));
  }
  return true;
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
  std::vector<MembershipChange> longest = changes_of(rank_);
  std::uint64_t committed = read(rank_, fields_.num_committed);
  for (std::size_t row = 0; row < view_.size(); ++row) {
    if (row == rank_ || !live(row)) continue;
    std::vector<MembershipChange> changes = changes_of(row);
    if (changes.size() > longest.size()) longest = std::move(changes);
    committed = std::max(committed, read(row, fields_.num_committed));
  }
  logger("core")->info("view {}: node {} takes over as leader with {} changes ({} committed)",
                       view_.id(), view_.member(rank_).id, longest.size(), committed);
  if (!follow_changes(longest, "an earlier leader")) return;
  write_changes(longest);
  table_->write(fields_.num_committed, std::min<std::uint64_t>(committed, longest.size()));
  push_counters();
  leading_ = true;
}

void Membership::propose() {
  std::vector<MembershipChange> changes = changes_of(rank_);
  std::size_t before = changes.size();
  auto listed = [&changes](NodeId node) {
    return std::any_of(changes.begin(), changes.end(),
                       [node](const MembershipChange& change) { return change.member.id == node; });
  };
  std::vector<NodeId> removals = suspects();
  if (leaving_) removals.push_back(view_.member(rank_).id);
  for (NodeId node : removals) {
    if (listed(node)) continue;
    SQUALL_ASSERT(changes.size() < kMaxChangesPerView, "more than {} changes in a view",
                  kMaxChangesPerView);
    changes.push_back({Member{node, {}}, false});
  }
  std::size_t joins = static_cast<std::size_t>(std::count_if(
      changes.begin(), changes.end(), [](const MembershipChange& c) { return c.join; }));
  for (const Member& joiner : pending_joins_) {
    if (joins >= kMaxJoinsPerView || changes.size() >= kMaxChangesPerView) break;
    if (listed(joiner.id) || view_.contains(joiner.id)) continue;
    changes.push_back({joiner, true});
    ++joins;
  }
  if (changes.size() != before) write_changes(changes);
  // A leaving leader hands over: members copy its list, suspect it as listed, and the next
  // rank takes over with the list (Membership::take_over()).
  if (leaving_) stop("left the group: its own removal is proposed");
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
