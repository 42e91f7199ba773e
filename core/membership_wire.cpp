#include "core/membership_wire.hpp"

#include <fmt/format.h>

#include <array>
#include <type_traits>

#include "common/crc32c.hpp"

#include "common/hmac.hpp"

namespace squall::core {
namespace {

constexpr std::size_t kMaxHostNameBytes = 255;

}  // namespace

MembershipMac membership_mac(std::span<const std::byte> data, std::string_view secret) {
  return hmac_sha256(secret, data);
}

namespace {

void put_member(ByteWriter& writer, const Member& member) {
  writer.put(member.id.value);
  writer.put_string(member.address.host);
  writer.put(member.address.port);
  writer.put(member.membership_port);
  writer.put_string(member.rest.host);
  writer.put(member.rest.port);
}

bool get_member(ByteReader& reader, Member& member) {
  return reader.get(member.id.value) && reader.get_string(member.address.host, kMaxHostNameBytes) &&
         reader.get(member.address.port) && reader.get(member.membership_port) &&
         reader.get_string(member.rest.host, kMaxHostNameBytes) && reader.get(member.rest.port);
}

void put_blob(ByteWriter& writer, const Bytes& blob) {
  writer.put(static_cast<std::uint32_t>(blob.size()));
  writer.put_bytes(blob);
}

bool get_blob(ByteReader& reader, Bytes& blob) {
  std::uint32_t length = 0;
  std::span<const std::byte> bytes;
  if (!reader.get(length) || length > kMaxMembershipBodyBytes || !reader.get_bytes(length, bytes)) {
    return false;
  }
  blob.assign(bytes.begin(), bytes.end());
  return true;
}

void put_report(ByteWriter& writer, const RestartRequest& report) {
  writer.put_string(report.cluster);
  writer.put(report.protocol);
  put_member(writer, report.member);
  put_blob(writer, report.last_view);
  writer.put(static_cast<std::uint32_t>(report.shards.size()));
  for (const ShardProgress& shard : report.shards) {
    writer.put(shard.shard.value);
    writer.put(shard.applied);
  }
}

Result<MembershipMessage> get_report(ByteReader& reader) {
  RestartRequest report;
  std::uint32_t count = 0;
  if (!reader.get_string(report.cluster, kMaxClusterNameBytes) || !reader.get(report.protocol) ||
      !get_member(reader, report.member) || !get_blob(reader, report.last_view) ||
      !reader.get(count)) {
    return corruption("malformed restart request");
  }
  if (count > kMaxReportedShards) {
    return corruption(fmt::format("restart request names {} shards (at most {})", count,
                                  kMaxReportedShards));
  }
  for (std::uint32_t i = 0; i < count; ++i) {
    ShardProgress shard;
    if (!reader.get(shard.shard.value) || !reader.get(shard.applied)) {
      return corruption("malformed restart request");
    }
    report.shards.push_back(shard);
  }
  return MembershipMessage{std::move(report)};
}

MembershipKind kind_of(const MembershipMessage& message) {
  return std::visit(
      [](const auto& body) {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, JoinRequest>) return MembershipKind::join_request;
        if constexpr (std::is_same_v<T, JoinAccepted>) return MembershipKind::join_accepted;
        if constexpr (std::is_same_v<T, Redirect>) return MembershipKind::redirect;
        if constexpr (std::is_same_v<T, Retry>) return MembershipKind::retry;
        if constexpr (std::is_same_v<T, Refused>) return MembershipKind::refused;
        if constexpr (std::is_same_v<T, LeaveRequest>) return MembershipKind::leave_request;
        if constexpr (std::is_same_v<T, LeaveDone>) return MembershipKind::leave_done;
        if constexpr (std::is_same_v<T, RestartRequest>) return MembershipKind::restart_request;
      },
      message);
}

void put_body(ByteWriter& writer, const MembershipMessage& message) {
  std::visit(
      [&writer](const auto& body) {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, JoinRequest>) {
          writer.put_string(body.cluster);
          writer.put(body.protocol);
          put_member(writer, body.member);
        } else if constexpr (std::is_same_v<T, JoinAccepted>) {
          put_blob(writer, body.view);
          put_blob(writer, body.previous);
          writer.put(static_cast<std::uint32_t>(body.sources.size()));
          for (const ShardSource& source : body.sources) {
            writer.put(source.shard.value);
            writer.put(source.source.value);
          }
        } else if constexpr (std::is_same_v<T, Redirect>) {
          writer.put_string(body.host);
          writer.put(body.port);
        } else if constexpr (std::is_same_v<T, Retry> || std::is_same_v<T, Refused>) {
          writer.put_string(body.reason);
        } else if constexpr (std::is_same_v<T, LeaveRequest>) {
          writer.put_string(body.cluster);
          writer.put(body.node.value);
        } else if constexpr (std::is_same_v<T, RestartRequest>) {
          put_report(writer, body);
        }
      },
      message);
}

Result<MembershipMessage> get_body(MembershipKind kind, ByteReader& reader) {
  switch (kind) {
    case MembershipKind::join_request: {
      JoinRequest request;
      if (!reader.get_string(request.cluster, kMaxClusterNameBytes) ||
          !reader.get(request.protocol) || !get_member(reader, request.member)) {
        return corruption("malformed join request");
      }
      return MembershipMessage{std::move(request)};
    }
    case MembershipKind::join_accepted: {
      JoinAccepted accepted;
      std::uint32_t sources = 0;
      if (!get_blob(reader, accepted.view) || !get_blob(reader, accepted.previous) ||
          !reader.get(sources) || sources > kMaxReportedShards) {
        return corruption("malformed join acceptance");
      }
      for (std::uint32_t i = 0; i < sources; ++i) {
        ShardSource source;
        if (!reader.get(source.shard.value) || !reader.get(source.source.value)) {
          return corruption("malformed join acceptance");
        }
        accepted.sources.push_back(source);
      }
      return MembershipMessage{std::move(accepted)};
    }
    case MembershipKind::redirect: {
      Redirect redirect;
      if (!reader.get_string(redirect.host, kMaxHostNameBytes) || !reader.get(redirect.port)) {
        return corruption("malformed redirect");
      }
      return MembershipMessage{std::move(redirect)};
    }
    case MembershipKind::retry:
    case MembershipKind::refused: {
      std::string reason;
      if (!reader.get_string(reason, kMaxReasonBytes)) return corruption("malformed reason");
      if (kind == MembershipKind::retry) return MembershipMessage{Retry{std::move(reason)}};
      return MembershipMessage{Refused{std::move(reason)}};
    }
    case MembershipKind::leave_request: {
      LeaveRequest request;
      if (!reader.get_string(request.cluster, kMaxClusterNameBytes) ||
          !reader.get(request.node.value)) {
        return corruption("malformed leave request");
      }
      return MembershipMessage{std::move(request)};
    }
    case MembershipKind::leave_done:
      return MembershipMessage{LeaveDone{}};
    case MembershipKind::restart_request:
      return get_report(reader);
  }
  return corruption(fmt::format("unknown membership message kind {}", static_cast<int>(kind)));
}

}  // namespace

Bytes encode_membership_message(const MembershipMessage& message, std::string_view secret) {
  Bytes body;
  ByteWriter body_writer(body);
  put_body(body_writer, message);
  Bytes frame;
  frame.reserve(kMembershipHeaderBytes + body.size());
  ByteWriter writer(frame);
  writer.put(kMembershipMagic);
  writer.put(kMembershipWireVersion);
  writer.put(static_cast<std::uint16_t>(kind_of(message)));
  writer.put(static_cast<std::uint32_t>(body.size()));
  writer.put(crc32c(body));
  writer.put_bytes(body);
  MembershipMac mac = membership_mac(frame, secret);
  writer.put_bytes(mac);
  return frame;
}

Result<std::uint32_t> decode_membership_header(std::span<const std::byte> header) {
  ByteReader reader(header);
  std::uint32_t magic = 0;
  std::uint16_t version = 0;
  std::uint16_t kind = 0;
  std::uint32_t length = 0;
  std::uint32_t crc = 0;
  if (!reader.get(magic) || !reader.get(version) || !reader.get(kind) || !reader.get(length) ||
      !reader.get(crc)) {
    return corruption("truncated membership header");
  }
  if (magic != kMembershipMagic) return corruption("not a membership message (bad magic)");
  if (version != kMembershipWireVersion) {
    return invalid_argument(fmt::format("membership wire version {} (this node speaks {})",
                                        version, kMembershipWireVersion));
  }
  if (length > kMaxMembershipBodyBytes) {
    return corruption(fmt::format("membership message body of {} bytes exceeds {}", length,
                                  kMaxMembershipBodyBytes));
  }
  return length;
}

Result<MembershipMessage> decode_membership_message(std::span<const std::byte> frame,
                                                    std::string_view secret) {
  if (frame.size() < kMembershipHeaderBytes) return corruption("truncated membership header");
  Result<std::uint32_t> length = decode_membership_header(frame.first(kMembershipHeaderBytes));
  if (!length.is_ok()) return length.status();
  std::size_t expected_bytes = kMembershipHeaderBytes + *length + kMembershipMacBytes;
  if (frame.size() != expected_bytes) {
    return corruption(fmt::format("membership frame is {} bytes, its header says {}",
                                  frame.size(), expected_bytes));
  }
  std::span<const std::byte> sealed = frame.first(frame.size() - kMembershipMacBytes);
  MembershipMac expected = membership_mac(sealed, secret);
  if (!hmac_equal(expected, frame.subspan(sealed.size()))) {
    return corruption(
        "membership message authentication failed (another cluster secret, or a secret "
        "configured on one side only)");
  }
  std::span<const std::byte> body = sealed.subspan(kMembershipHeaderBytes);
  ByteReader header(frame);
  std::uint32_t skip32 = 0;
  std::uint16_t skip16 = 0;
  std::uint16_t kind = 0;
  std::uint32_t crc = 0;
  (void)header.get(skip32);
  (void)header.get(skip16);
  (void)header.get(kind);
  (void)header.get(skip32);
  (void)header.get(crc);
  if (crc32c(body) != crc) return corruption("membership message fails its CRC");
  ByteReader reader(body);
  Result<MembershipMessage> message = get_body(static_cast<MembershipKind>(kind), reader);
  if (!message.is_ok()) return message.status();
  if (reader.remaining() != 0) {
    return corruption(fmt::format("membership message has {} trailing bytes",
                                  reader.remaining()));
  }
  return message;
}

}  // namespace squall::core
