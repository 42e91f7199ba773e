// Membership: the view-change protocol of one view at one member (docs/core.md, "View
// change").
//
// A deterministic state machine on one SST table over every member of the view (rows in rank
// order), driven by the node's progress loop: handle(event) and step(now_us); it never reads a
// clock, never blocks; its only I/O is the table's pushes and appends to the ViewLog.
//
// - Failure detection is the SST one: heartbeats and suspected[], suspicion spreads.
// - The leader (lowest-ranked member this member does not suspect) proposes removals: it
//   appends every member it suspects to the bounded `changes` list of its row. Members copy
//   the leader's list and counts into their own rows (that copy is the acknowledgement) and
//   suspect everyone listed. The leader commits a prefix once every unsuspected member has
//   acknowledged it.
// - Once any change is pending the owner wedges its shard groups and reports their final
//   received counts (report_wedged()).
// - When every change the leader knows of is committed and every survivor has reported, the
//   leader computes the ragged trim of every shard (per sender, the minimum over the
//   survivors serving the shard), logs it durably, and publishes the *decision*: the committed
//   count c and the trims. The next view is the current one without the first c changes.
//   Members copy the decision (data first, then its count, in separate pushes) before using
//   it. A decision is final: a later leader adopts any decision it finds in a live row.
// - A leader that fails is replaced by the next-ranked member once every member it does not
//   suspect suspects all lower ranks; it adopts the longest change list and any decision.
// - Majority rule (on by default): no decision is made for, and no member installs, a view
//   that would keep half of this view or less; a member that suspects half of the view or more
//   can never be part of a majority and stops for good.
// Not thread-safe: the node's progress thread calls everything.
#pragma once

#include <cstddef>
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

// Removals proposed in one view at most (a bounded list in each row).
inline constexpr std::size_t kMaxChangesPerView = 64;
// Words of per-shard counts in a row (shards x largest shard); bounds the row size.
inline constexpr std::size_t kMaxMembershipCountWords = 8192;

struct MembershipOptions {
  fabric::RegionId region = 0;       // the membership table's region (same id on every member)
  std::uint16_t transport_tag = 0xFFFF;  // unique per transport (shard groups use shard ids)
  std::uint64_t heartbeat_ms = 100;
  std::uint64_t failure_timeout_ms = 1000;
  bool majority_rule = true;         // refuse views without a majority of this one
  // Members this node already suspected in the previous view and that are still in this one:
  // suspected from the start.
  std::vector<NodeId> initial_suspects;

  Status validate() const;
};

// The outcome of a view change: removals (the first `committed` changes) and the trims.
struct ViewChangeDecision {
  std::uint64_t committed = 0;
  std::vector<NodeId> removed;                 // in change order
  std::vector<Member> next_members;            // survivors, rank order kept
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
    sst::RowRange counters() const;            // num_changes .. decision, contiguous
  };

  Membership(const View& view, std::size_t rank, MembershipOptions options,
             fabric::Transport& transport, ViewLog& log);
  Status init();

  std::uint64_t read(std::size_t row, sst::Scalar<std::uint64_t> field) const;
  std::vector<NodeId> changes_of(std::size_t row) const;
  bool live(std::size_t rank) const;
  void on_suspected(std::size_t rank);
  void stop(std::string reason);
  void check_minority();
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
  void write_changes(const std::vector<NodeId>& changes);
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
};

}  // namespace squall::core
