// The membership service's messages: what a joining, leaving or restarting node and a member
// tell each other over TCP (ports.membership). Pure encoding and bounded, validated decoding;
// no I/O. docs/core.md ("Membership service") has the byte grammar.
//
// Frame (integers little-endian):
//   header = magic:u32 version:u16 kind:u16 body_length:u32 body_crc32c:u32   (16 bytes)
//   body   = depends on kind (below); strings are u32 length + bytes, bounded per field.
//   mac    = HMAC-SHA256(cluster secret, header || body)                        (32 bytes)
// The MAC authenticates members to each other (cluster.secret_file); without a secret it is
// computed under the empty key, so a node with a secret and one without refuse each other.
// A decoder refuses (invalid_argument / corruption, with the reason) anything that is not
// exactly one well-formed message within the limits; it never reads out of bounds.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/bytes.hpp"
#include "common/hmac.hpp"
#include "common/ids.hpp"
#include "common/status.hpp"
#include "common/version.hpp"
#include "core/view.hpp"

namespace squall::core {

inline constexpr std::uint32_t kMembershipMagic = 0x4D535153;  // "SQSM" little-endian
inline constexpr std::uint16_t kMembershipWireVersion = 1;
inline constexpr std::size_t kMembershipHeaderBytes = 16;
inline constexpr std::size_t kMembershipMacBytes = kHmacBytes;
inline constexpr std::uint32_t kMaxMembershipBodyBytes = 1U << 20;
inline constexpr std::size_t kMaxReasonBytes = 1024;
inline constexpr std::size_t kMaxClusterNameBytes = 64;
// Nodes of one build speak the same membership protocol; a joiner of another is refused.
inline constexpr std::uint32_t kMembershipProtocol = 1;

// Kinds are on the wire: never renumber.
enum class MembershipKind : std::uint16_t {
  join_request = 1,
  join_accepted = 2,
  redirect = 3,
  retry = 4,
  refused = 5,
  leave_request = 6,
  leave_done = 7,
  restart_request = 8,
};

struct JoinRequest {
  std::string cluster;
  std::uint32_t protocol = kMembershipProtocol;
  Member member;
  bool operator==(const JoinRequest&) const = default;
};

// The view that admits the joiner, and the one before it (the joiner needs both: the
// assignment of the first depends on the second; state transfer finds its sources there).
struct ShardSource {
  ShardId shard;
  NodeId source;
  bool operator==(const ShardSource&) const = default;
};

struct JoinAccepted {
  Bytes view;      // encode_view_record
  Bytes previous;  // encode_view_record; empty when `view` is the first
  // After a total restart: per shard, the member whose log every other member of the shard
  // catches up from (empty for an ordinary join).
  std::vector<ShardSource> sources;
  bool operator==(const JoinAccepted&) const = default;
};

// Ask the leader instead.
struct Redirect {
  std::string host;
  std::uint16_t port = 0;
  bool operator==(const Redirect&) const = default;
};

// Not now (no view yet, a change under way, the old incarnation still a member): try again.
struct Retry {
  std::string reason;
  bool operator==(const Retry&) const = default;
};

// Never (wrong cluster, incompatible protocol, invalid member).
struct Refused {
  std::string reason;
  bool operator==(const Refused&) const = default;
};

struct LeaveRequest {
  std::string cluster;
  NodeId node;
  bool operator==(const LeaveRequest&) const = default;
};

// The removal is proposed (the leaver watches for the view without it).
struct LeaveDone {
  bool operator==(const LeaveDone&) const = default;
};

// Total restart (docs/membership.md): a node that restarts with a logged view of several
// members tells the members of that view what it holds. A member already running again
// treats it as a join request.
struct ShardProgress {
  ShardId shard;
  Version applied = 0;  // the last update its state machine holds
  bool operator==(const ShardProgress&) const = default;
};

struct RestartRequest {
  std::string cluster;
  std::uint32_t protocol = kMembershipProtocol;
  Member member;
  Bytes last_view;  // encode_view_record of the last view in its log
  std::vector<ShardProgress> shards;  // the shards it served in that view
  bool operator==(const RestartRequest&) const = default;
};

inline constexpr std::size_t kMaxReportedShards = 1024;

using MembershipMessage = std::variant<JoinRequest, JoinAccepted, Redirect, Retry, Refused,
                                       LeaveRequest, LeaveDone, RestartRequest>;

using MembershipMac = Hmac;
// HMAC-SHA256 of `sealed` (a frame's header and body) under `secret`.
MembershipMac membership_mac(std::span<const std::byte> sealed, std::string_view secret);

// `secret`: the cluster's shared secret (empty when none is configured).
Bytes encode_membership_message(const MembershipMessage& message, std::string_view secret = {});

// The body length announced by a header, after checking magic, version and bounds. The
// frame is header + body_length + kMembershipMacBytes bytes long.
Result<std::uint32_t> decode_membership_header(std::span<const std::byte> header);
// One whole frame (header + body + MAC). corruption "authentication failed" when the MAC does
// not verify under `secret` (another cluster secret, or a secret on one side only).
Result<MembershipMessage> decode_membership_message(std::span<const std::byte> frame,
                                                    std::string_view secret = {});

}  // namespace squall::core
