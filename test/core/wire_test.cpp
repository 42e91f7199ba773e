// The multicast message header.
#include <catch2/catch.hpp>

#include "core/wire.hpp"
#include "fabric/sim_random.hpp"

using namespace squall;
using namespace squall::core;

TEST_CASE("Data, null and large messages round-trip") {
  Bytes out;
  Bytes payload{std::byte{1}, std::byte{2}, std::byte{3}};
  encode_data(out, 0x1122'3344'5566'7788ULL, payload);
  REQUIRE(out.size() == kMessageHeaderBytes + 3);
  REQUIRE(out[0] == std::byte{1});  // kind data
  REQUIRE(out[8] == std::byte{0x88});  // timestamp little-endian
  auto data = decode_message(out);
  REQUIRE(data.is_ok());
  REQUIRE(data->kind == MessageKind::data);
  REQUIRE(data->timestamp == 0x1122'3344'5566'7788ULL);
  REQUIRE(Bytes(data->payload.begin(), data->payload.end()) == payload);

  encode_data(out, 5, {});
  auto empty = decode_message(out);
  REQUIRE(empty.is_ok());
  REQUIRE(empty->payload.empty());

  encode_nulls(out, 9, 12345);
  REQUIRE(out.size() == kMessageHeaderBytes + kNullsBodyBytes);
  auto nulls = decode_message(out);
  REQUIRE(nulls.is_ok());
  REQUIRE(nulls->kind == MessageKind::nulls);
  REQUIRE(nulls->null_count == 12345);
  REQUIRE(nulls->timestamp == 9);

  encode_large(out, 11, 7, 1 << 20);
  REQUIRE(out.size() == kMessageHeaderBytes + kLargeBodyBytes);
  auto large = decode_message(out);
  REQUIRE(large.is_ok());
  REQUIRE(large->kind == MessageKind::large);
  REQUIRE(large->rdmc_index == 7);
  REQUIRE(large->size_bytes == 1 << 20);
}

TEST_CASE("Malformed messages are corruption, never a crash") {
  Bytes out;
  encode_nulls(out, 1, 3);
  for (std::size_t cut = 0; cut < out.size(); ++cut) {
    REQUIRE(decode_message(std::span(out).first(cut)).status().code() == Code::corruption);
  }
  Bytes trailing = out;
  trailing.push_back(std::byte{0});
  REQUIRE(decode_message(trailing).status().code() == Code::corruption);
  Bytes zero_count = out;
  std::fill(zero_count.begin() + kMessageHeaderBytes, zero_count.end(), std::byte{0});
  REQUIRE(decode_message(zero_count).status().code() == Code::corruption);
  Bytes reserved = out;
  reserved[3] = std::byte{1};
  REQUIRE(decode_message(reserved).status().code() == Code::corruption);
  Bytes unknown = out;
  unknown[0] = std::byte{0};
  REQUIRE(decode_message(unknown).status().code() == Code::corruption);
  unknown[0] = std::byte{5};
  REQUIRE(decode_message(unknown).status().code() == Code::corruption);
  encode_large(out, 1, 2, 3);
  Bytes zero_size = out;
  std::fill(zero_size.end() - 8, zero_size.end(), std::byte{0});
  REQUIRE(decode_message(zero_size).status().code() == Code::corruption);

  // Random bytes: decoding either succeeds or reports corruption.
  fabric::SimRandom random(3);
  for (int i = 0; i < 10000; ++i) {
    Bytes noise(random.below(40));
    for (std::byte& b : noise) b = static_cast<std::byte>(random.below(4));
    auto decoded = decode_message(noise);
    REQUIRE((decoded.is_ok() || decoded.status().code() == Code::corruption));
  }
}

TEST_CASE("Packed messages round-trip their records, in order") {
  std::vector<Bytes> payloads{{std::byte{1}, std::byte{2}}, {}, Bytes(300, std::byte{7})};
  Bytes out;
  begin_packed(out, 42, 3);
  std::size_t payload_bytes = 0;
  for (const Bytes& payload : payloads) {
    add_packed(out, payload);
    payload_bytes += payload.size();
  }
  REQUIRE(out.size() == packed_size_bytes(3, payload_bytes));
  REQUIRE(out[0] == std::byte{4});  // kind packed
  auto decoded = decode_message(out);
  REQUIRE(decoded.is_ok());
  REQUIRE(decoded->kind == MessageKind::packed);
  REQUIRE(decoded->timestamp == 42);
  REQUIRE(decoded->packed_count == 3);
  std::vector<Bytes> seen;
  for_each_packed(decoded->payload, decoded->packed_count,
                  [&](std::span<const std::byte> payload) {
                    seen.emplace_back(payload.begin(), payload.end());
                  });
  REQUIRE(seen == payloads);
}

TEST_CASE("Malformed packed messages are corruption") {
  Bytes out;
  begin_packed(out, 1, 2);
  add_packed(out, Bytes(5, std::byte{9}));
  add_packed(out, Bytes(3, std::byte{8}));
  REQUIRE(decode_message(out).is_ok());
  for (std::size_t cut = 0; cut < out.size(); ++cut) {
    REQUIRE(decode_message(std::span(out).first(cut)).status().code() == Code::corruption);
  }
  Bytes trailing = out;
  trailing.push_back(std::byte{0});
  REQUIRE(decode_message(trailing).status().code() == Code::corruption);
  for (std::uint8_t count : {0, 1, 3}) {  // fewer than two, or more records than present
    Bytes wrong = out;
    wrong[kMessageHeaderBytes] = std::byte{count};
    REQUIRE(decode_message(wrong).status().code() == Code::corruption);
  }
  Bytes long_record = out;
  long_record[kMessageHeaderBytes + kPackedCountBytes] = std::byte{200};
  REQUIRE(decode_message(long_record).status().code() == Code::corruption);
}
