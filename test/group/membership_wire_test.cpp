#include <catch2/catch.hpp>

#include <random>

#include "common/crc32c.hpp"
#include "core/membership_wire.hpp"

namespace squall::core {
namespace {

Member sample_member() {
  Member member;
  member.id = NodeId{7};
  member.address = fabric::PeerAddress{"10.1.2.3", 23652};
  member.membership_port = 23650;
  member.rest = fabric::PeerAddress{"10.1.2.3", 8087};
  return member;
}

std::vector<MembershipMessage> samples() {
  return {JoinRequest{"prod", kMembershipProtocol, sample_member()},
          JoinAccepted{Bytes(40, std::byte{0x11}), Bytes(12, std::byte{0x22}), {}},
          JoinAccepted{Bytes(3, std::byte{0x33}), {}, {}},
          JoinAccepted{Bytes(3, std::byte{0x33}), Bytes(2, std::byte{1}),
                       {{ShardId{0}, NodeId{2}}, {ShardId{1}, NodeId{0}}}},
          Redirect{"10.0.0.1", 23580},
          Retry{"a view change is under way"},
          Refused{"wrong cluster"},
          LeaveRequest{"prod", NodeId{3}},
          LeaveDone{},
          RestartRequest{"prod", kMembershipProtocol, sample_member(), Bytes(20, std::byte{5}),
                        {{ShardId{0}, 42}, {ShardId{3}, (7ULL << 32) | 9}}}};
}

TEST_CASE("membership messages round-trip", "[membership_wire]") {
  for (const MembershipMessage& message : samples()) {
    Bytes frame = encode_membership_message(message);
    auto decoded = decode_membership_message(frame);
    REQUIRE(decoded.is_ok());
    CHECK(*decoded == message);
  }
}

TEST_CASE("every truncation of a membership frame is refused", "[membership_wire]") {
  for (const MembershipMessage& message : samples()) {
    Bytes frame = encode_membership_message(message);
    for (std::size_t size = 0; size < frame.size(); ++size) {
      auto decoded = decode_membership_message(std::span(frame).first(size));
      CHECK_FALSE(decoded.is_ok());
    }
    Bytes longer = frame;
    longer.push_back(std::byte{0});
    CHECK_FALSE(decode_membership_message(longer).is_ok());
  }
}

TEST_CASE("bad magic, version, length and CRC are refused with a reason",
          "[membership_wire]") {
  Bytes frame = encode_membership_message(Retry{"later"});
  Bytes bad_magic = frame;
  bad_magic[0] ^= std::byte{1};
  CHECK(decode_membership_message(bad_magic).status().message().find("magic") !=
        std::string::npos);
  Bytes bad_version = frame;
  bad_version[4] = std::byte{9};
  CHECK(decode_membership_message(bad_version).status().code() == Code::invalid_argument);
  Bytes huge = frame;
  huge[8] = huge[9] = huge[10] = huge[11] = std::byte{0xFF};
  CHECK(decode_membership_header(std::span(huge).first(kMembershipHeaderBytes))
            .status()
            .message()
            .find("exceeds") != std::string::npos);
  Bytes bad_body = frame;
  bad_body[kMembershipHeaderBytes] ^= std::byte{0x40};
  CHECK(decode_membership_message(bad_body).status().message().find("authentication") !=
        std::string::npos);
}

TEST_CASE("frames are authenticated with the cluster secret", "[membership_wire]") {
  Bytes frame = encode_membership_message(LeaveRequest{"prod", NodeId{2}}, "s3cret-s3cret-s3cret");
  CHECK(decode_membership_message(frame, "s3cret-s3cret-s3cret").is_ok());
  for (std::string_view other : {"", "s3cret-s3cret-s3creT", "another secret entirely"}) {
    auto decoded = decode_membership_message(frame, other);
    REQUIRE_FALSE(decoded.is_ok());
    CHECK(decoded.status().message().find("authentication failed") != std::string::npos);
  }
  Bytes open_frame = encode_membership_message(LeaveDone{});
  CHECK_FALSE(decode_membership_message(open_frame, "s3cret-s3cret-s3cret").is_ok());
}

// Re-seals a frame (without its MAC) whose body was changed — length, CRC and MAC — so the
// decoder reaches the body checks.
void reseal(Bytes& frame) {
  std::span<const std::byte> body = std::span(frame).subspan(kMembershipHeaderBytes);
  std::uint32_t length = static_cast<std::uint32_t>(body.size());
  std::uint32_t crc = crc32c(body);
  for (int i = 0; i < 4; ++i) {
    frame[8 + i] = static_cast<std::byte>(length >> (8 * i));
    frame[12 + i] = static_cast<std::byte>(crc >> (8 * i));
  }
  MembershipMac mac = membership_mac(frame, {});
  frame.insert(frame.end(), mac.begin(), mac.end());
}

TEST_CASE("random corruption of sealed bodies never crashes the decoder",
          "[membership_wire]") {
  std::mt19937_64 random(42);
  int refused = 0;
  for (const MembershipMessage& message : samples()) {
    Bytes frame = encode_membership_message(message);
    frame.resize(frame.size() - kMembershipMacBytes);
    for (int round = 0; round < 500; ++round) {
      Bytes mutated = frame;
      if (mutated.size() == kMembershipHeaderBytes) break;
      std::size_t at = kMembershipHeaderBytes +
                       random() % (mutated.size() - kMembershipHeaderBytes);
      mutated[at] = static_cast<std::byte>(random());
      if (random() % 3 == 0) mutated.resize(at + 1);
      reseal(mutated);
      refused += decode_membership_message(mutated).is_ok() ? 0 : 1;
    }
  }
  CHECK(refused > 0);
}

TEST_CASE("unknown kinds are refused", "[membership_wire]") {
  Bytes frame = encode_membership_message(LeaveDone{});
  frame.resize(frame.size() - kMembershipMacBytes);
  frame[6] = std::byte{99};
  reseal(frame);
  CHECK(decode_membership_message(frame).status().message().find("unknown") !=
        std::string::npos);
}

}  // namespace
}  // namespace squall::core
