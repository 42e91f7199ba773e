// Membership: the view-change protocol of one view at one member (docs/core.md, "View
// change").
//
// A deterministic state machine on one SST table over every member of the view (rows in rank
// order), driven by the node's progress loop: handle(event) and step(now_us); it never reads a
// clock, never blocks; its only I/O is the table's pushes and appends to the ViewLog.
//
// - Failure detection is the SST one: heartbeats and suspected[], suspicion spreads.
// - The leader (lowest-ranked member this member does not suspect) proposes changes: it
//   appends every member it suspects (a removal) and every joiner its owner queued
//   (propose_joins(); a join carries the joiner's record in three fixed-size words) to the
//   bounded `changes` list of its row. Members copy
//   the leader's list and counts into their own rows (that copy is the acknowledgement) and
//   suspect everyone listed. The leader commits a prefix once every unsuspected member has
//   acknowledged it.
// - Once any change is pending the owner wedges its shard groups and reports their final
//   received counts (report_wedged()).
// - When every change the leader knows of is committed and every survivor has reported, the
//   leader computes the ragged trim of every shard (per sender, the minimum over the
//   survivors serving the shard), logs it durably, and publishes the *decision*: the committed
//   count c and the trims. The next view is the current one without the removals among the
//   first c changes, plus their joiners appended in change order (survivors keep their ranks).
//   The majority rule counts this view's members by voter stage (below).
//   Members copy the decision (data first, then its count, in separate pushes) before using
//   it. A decision is final: a later leader adopts any decision it finds in a live row.
// - A leader that fails is replaced by the next-ranked member once every member it does not
//   suspect suspects all lower ranks; it adopts the longest change list and any decision.
// - Majority rule (on by default): no decision is made for, and no member installs, a view
//   whose survivors are not a quorum of this one; a member whose unsuspected members are not a
//   quorum can never be part of one and stops for good. Joiners of this view vote only once
//   every member knows they started (VoterStage, majority_of(); docs/core.md, "Majority rule
//   and joiners"): a joiner that never received its view cannot stop the survivors.
// Not thread-safe: the node's progress thread calls everything.
#pragma once

#include <cstddef>
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/ids.hpp"
#include "common/status.hpp"
#include "core/tagged_transport.hpp"
#include "core/view.hpp"
#include "core/view_log.hpp"
#include "fabric/transport.hpp"
#include "sst/failure_detector.hpp"
#include "sst/table.hpp"

namespace squall::core {

// Changes (removals and joins) proposed in one view at most (a bounded list in each row).
inline constexpr std::size_t kMaxChangesPerView = 64;
// Joins among them at most, so that removals always have room.
inline constexpr std::size_t kMaxJoinsPerView = 16;
// SST words per change: word 0 = node id | kJoinFlag; for a join, word 1 = IPv4 (32) |
// fabric port (16) | membership port (16), word 2 = REST IPv4 (32) | REST port (16) | REST
// present (bit 0). Removals leave words 1 and 2 zero.
inline constexpr std::size_t kWordsPerChange = 3;
inline constexpr std::uint64_t kJoinFlag = 1ULL << 63;

// One proposed change. A removal names a member of the view (only member.id is meaningful).
struct MembershipChange {
  Member member;
  bool join = false;
  bool operator==(const MembershipChange&) const = default;
};

// The three SST words of a change. REQUIRES: a join's member passes validate_joiner().
std::array<std::uint64_t, kWordsPerChange> encode_change(const MembershipChange& change);
// nullopt for words no correct member writes (unknown flag bits, a join with a bad record).
std::optional<MembershipChange> decode_change(std::span<const std::uint64_t, kWordsPerChange>
                                                  words);
// Words of per-shard counts in a row (shards x largest shard); bounds the row size.
inline constexpr std::size_t kMaxMembershipCountWords = 8192;

// Who votes in a view with joiners (members that were not in the previous view). A member's
// stage is an SST counter of its row: it only grows, and it is frozen once the member leaves
// the running state, so every rule a member applies during a change uses one stage.
//   carried: the joiners have not all been heard from: only carried members (those of the
//            previous view) vote.
//   joint:   the leader heard every joiner (their first heartbeat) and proposed that they
//            vote; this member copied the proposal but does not know that every member did:
//            a quorum must be a majority of the carried members AND of the whole view.
//   all:     every member of the view copied the proposal: a majority of the whole view.
// Why this is safe: any two quorums of one view intersect. Stages `all` and `carried` never
// meet in one view (`all` is only reached once every row, so every member, holds `joint`), and
// every other pair of stages shares a majority of the same set. Do not renumber (SST values).
enum class VoterStage : std::uint8_t { carried = 0, joint = 1, all = 2 };

struct QuorumCount {
  std::size_t members = 0;       // of the view
  std::size_t live = 0;          // members in the set judged
  std::size_t carried = 0;       // members that were in the previous view
  std::size_t carried_live = 0;  // carried members in the set judged
};

// Whether the set counted is a quorum of the view at `stage` (strict majorities).
bool majority_of(const QuorumCount& count, VoterStage stage);

struct MembershipOptions {
  fabric::RegionId region = 0;       // the membership table's region (same id on every member)
  std::uint16_t transport_tag = 0xFFFF;  // unique per transport (shard groups use shard ids)
  std::uint64_t heartbeat_ms = 100;
  std::uint64_t failure_timeout_ms = 1000;
  // Wait for a member's first heartbeat (sst::FailureDetector); 0 = failure_timeout_ms.
  std::uint64_t first_heartbeat_timeout_ms = 0;
  bool majority_rule = true;         // refuse views without a majority of this one
  // Members this node already suspected in the previous view and that are still in this one:
  // suspected from the start.
  std::vector<NodeId> initial_suspects;
  // Members of this view that were not in the previous one (its joiners). Empty: every member
  // votes from the start (the first view, a restart view, a view without joiners).
  std::vector<NodeId> joiners;

  Status validate() const;
};

// The outcome of a view change: removals and joins (the first `committed` changes) and the
// trims.
struct ViewChangeDecision {
  std::uint64_t committed = 0;
  std::vector<NodeId> removed;                 // in change order
  std::vector<Member> joined;                  // in change order
  std::vector<Member> next_members;            // survivors (rank order kept), then joined
  std::vector<std::vector<std::uint64_t>> trims;  // per shard, per sender rank of the shard
};

enum class MembershipState : std::uint8_t {
  running,   // no change pending
  changing,  // a suspicion or a proposal exists: shard groups must wedge
  decided,   // decision() holds the next view's members and the trims
  stopped,   // removed from the next view, or on the minority side: never serves again
};

class Membership {
 public:
  // Builds the table and registers its memory with `transport` (before its first add_peer());
  // `log` receives the leader's trims before they are published. `view` and `log` must
  // outlive the membership.
  static Result<std::unique_ptr<Membership>> create(const View& view, NodeId self,
                                                    MembershipOptions options,
                                                    fabric::Transport& transport,
                                                    ViewLog& log);
  ~Membership();
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // peer_connected / peer_failed are acted on and return false (others need them); true for a
  // completion of one of this table's pushes.
  bool handle(const fabric::Event& event);
  void step(std::uint64_t now_us);

  // A shard group (or anything else) suspects `member`.
  void suspect(NodeId member, const std::string& reason);
  // Removal on request (graceful leave, administrator): another member is proposed for
  // removal like a suspect. This member itself: as leader it proposes its own removal,
  // otherwise it flags itself suspected in its row (which spreads); either way it stops once
  // its removal is proposed.
  void request_removal(NodeId member, const std::string& reason);
  // The joiners the owner queued (valid, not members, distinct): the leader appends those not
  // yet listed to its proposal while it has not decided (at most kMaxJoinsPerView per view;
  // the rest wait for the next view). Replaces the previous list; ignored unless leading.
  void propose_joins(std::vector<Member> joiners);
  // The owner wedged every shard group it serves; received[i] is the final received_slots() of
  // its i-th shard (ascending shard order of view.shards_of(self)). Once per view.
  void report_wedged(std::span<const std::vector<std::uint64_t>> received);
  bool reported_wedged() const { return reported_; }

  MembershipState state() const { return state_; }
  const std::optional<ViewChangeDecision>& decision() const { return decision_; }
  const std::string& stop_reason() const { return stop_reason_; }
  // The leader this member follows (lowest-ranked unsuspected).
  std::size_t leader_rank() const;
  bool suspected(NodeId member) const;
  std::vector<NodeId> suspects() const;
  // This member's voter stage (`all` in a view without joiners).
  VoterStage voter_stage() const;
  // Whether every survivor of the decision has copied it (or is suspected): the old view's
  // table can be retired without stranding anyone.
  bool decision_spread() const;
  const View& view() const { return view_; }

 private:
  struct Fields {
    sst::Array<std::uint64_t> changes;         // node ids proposed for removal
    sst::Array<std::uint64_t> received;        // [shard][sender rank] final counts
    sst::Array<std::uint64_t> trims;           // [shard][sender rank] the decision's trims
    sst::Scalar<std::uint64_t> num_changes;
    sst::Scalar<std::uint64_t> num_committed;
    sst::Scalar<std::uint64_t> wedged;         // 1 once `received` is final
    sst::Scalar<std::uint64_t> decision;       // committed count of the decision, 0 = none
    sst::Scalar<std::uint64_t> voters;         // VoterStage
    sst::RowRange counters() const;            // num_changes .. voters, contiguous
  };

  Membership(const View& view, std::size_t rank, MembershipOptions options,
             fabric::Transport& transport, ViewLog& log);
  Status init();

  std::uint64_t read(std::size_t row, sst::Scalar<std::uint64_t> field) const;
  std::vector<MembershipChange> changes_of(std::size_t row) const;
  std::size_t removals_in(std::uint64_t committed) const;
  bool live(std::size_t rank) const;
  void on_suspected(std::size_t rank);
  void stop(std::string reason);
  void check_minority();
  // Whether the members with in_set[rank] form a quorum at this member's stage.
  bool quorum(const std::vector<bool>& in_set) const;
  void advance_voters();
  bool carried(std::size_t rank) const;
  void follow(std::size_t leader);
  void lead();
  void take_over();
  void propose();
  void commit();
  void decide();
  bool adopt_decision();
  void accept_decision(std::size_t row);
  void build_decision(std::uint64_t committed, std::vector<std::vector<std::uint64_t>> trims);
  std::vector<std::vector<std::uint64_t>> compute_trims(std::uint64_t committed) const;
  void write_changes(const std::vector<MembershipChange>& changes);
  bool follow_changes(const std::vector<MembershipChange>& changes, const char* who);
  void flag_self_leaving();
  void push_counters();

  const View& view_;
  std::size_t rank_;
  MembershipOptions options_;
  fabric::Transport& transport_;
  ViewLog& log_;
  std::size_t shard_width_ = 1;  // largest shard of the view

  sst::Schema schema_;
  sst::FailureDetectorFields detector_fields_;
  Fields fields_;
  std::unique_ptr<std::byte[], void (*)(std::byte*)> memory_;
  TaggedTransport tagged_transport_;
  std::unique_ptr<sst::Table> table_;
  std::unique_ptr<sst::FailureDetector> detector_;

  MembershipState state_ = MembershipState::running;
  std::optional<ViewChangeDecision> decision_;
  std::string stop_reason_;
  bool reported_ = false;
  bool leading_ = false;  // took over (or is rank 0): proposes and commits
  bool leaving_ = false;  // request_removal(self)
  std::vector<Member> pending_joins_;
};

}  // namespace squall::core
