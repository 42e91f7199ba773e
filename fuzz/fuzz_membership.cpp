// Fuzz target: the membership service's messages, received over TCP from anyone who can
// connect (core::decode_membership_message), and the view records a joiner then decodes from
// a JoinAccepted or a RestartRequest.
// Properties: a frame that decodes re-encodes to exactly itself (header, body and MAC); the
// view records it carries either decode and re-encode to themselves or are refused.
#include <variant>

#include "common/crc32c.hpp"
#include "core/membership_wire.hpp"
#include "core/view_log.hpp"
#include "fuzz/fuzz_util.hpp"

namespace {

using namespace squall;
using namespace squall::core;

// The input as one well-framed message: header length, body CRC and MAC recomputed (under the
// empty secret, which the decoder is given too).
void fix_up(Bytes& frame) {
  if (frame.size() < kMembershipHeaderBytes + kMembershipMacBytes) return;
  const std::size_t body_bytes = frame.size() - kMembershipHeaderBytes - kMembershipMacBytes;
  fuzz::store_u32(frame, 8, static_cast<std::uint32_t>(body_bytes));
  fuzz::store_u32(frame, 12, crc32c(std::span(frame).subspan(kMembershipHeaderBytes,
                                                             body_bytes)));
  const auto sealed = std::span<const std::byte>(frame).first(frame.size() - kMembershipMacBytes);
  const MembershipMac mac = membership_mac(sealed, {});
  std::copy(mac.begin(), mac.end(), frame.end() - static_cast<std::ptrdiff_t>(mac.size()));
}

void check_view_blob(const Bytes& blob) {
  auto record = decode_view_record(blob);
  if (!record.is_ok()) return;
  FUZZ_CHECK(fuzz::same_bytes(encode_view_record(record.value()), blob),
             "a carried view record re-encodes differently");
}

void check_carried(const MembershipMessage& message) {
  if (const auto* accepted = std::get_if<JoinAccepted>(&message)) {
    check_view_blob(accepted->view);
    check_view_blob(accepted->previous);
  } else if (const auto* restart = std::get_if<RestartRequest>(&message)) {
    check_view_blob(restart->last_view);
  }
}

}  // namespace

// Input: a mode byte (bit 0: fix length, CRC and MAC up first), then one frame.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  auto input = fuzz::input_bytes(data + 1, size - 1);
  Bytes frame(input.begin(), input.end());
  if ((data[0] & 1) != 0) fix_up(frame);
  if (frame.size() >= kMembershipHeaderBytes) {
    auto length = decode_membership_header(std::span(frame).first(kMembershipHeaderBytes));
    if (length.is_ok()) {
      FUZZ_CHECK(length.value() <= kMaxMembershipBodyBytes, "header length over the limit");
    }
  }
  auto message = decode_membership_message(frame);
  if (!message.is_ok()) return 0;
  FUZZ_CHECK(fuzz::same_bytes(encode_membership_message(message.value()), frame),
             "a membership frame re-encodes differently (kind index {})",
             message.value().index());
  check_carried(message.value());
  return 0;
}
