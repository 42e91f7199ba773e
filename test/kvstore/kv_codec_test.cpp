// The update payload codec: round trips, validation, and bounded decoding of bad input.
#include <random>

#include <catch2/catch.hpp>

#include "kvstore/kv_codec.hpp"

using namespace squall;
using namespace squall::kvstore;

namespace {

const KvCodecLimits kLimits{.max_key_bytes = 64, .max_value_bytes = 1024};

KvUpdate sample(KvOp op, KvCondition condition) {
  static const std::string value = "some value bytes";
  KvUpdate update;
  update.op = op;
  update.condition = condition;
  update.expected_version = condition == KvCondition::if_version ? 0x0000000700000042ULL : 0;
  update.request = {NodeId{3}, 123456789};
  update.key = "users/42/name";
  if (op == KvOp::put) update.value = as_bytes(value);
  return update;
}

void check_same(const KvUpdate& a, const KvUpdate& b) {
  CHECK(a.op == b.op);
  CHECK(a.condition == b.condition);
  CHECK(a.expected_version == b.expected_version);
  CHECK(a.request == b.request);
  CHECK(a.key == b.key);
  CHECK(as_string_view(a.value) == as_string_view(b.value));
}

}  // namespace

TEST_CASE("Update payloads round-trip for every operation and condition") {
  auto op = GENERATE(KvOp::put, KvOp::del);
  auto condition = GENERATE(KvCondition::none, KvCondition::if_version, KvCondition::if_exists,
                            KvCondition::if_absent);
  if (op == KvOp::del && condition == KvCondition::if_absent) return;  // refused (tested below)
  KvUpdate update = sample(op, condition);
  Bytes bytes = encode_update(update, kLimits);
  CHECK(bytes.size() == kv_update_size_bytes(update.key.size(), update.value.size()));
  auto decoded = decode_update(bytes, kLimits);
  REQUIRE(decoded.is_ok());
  check_same(update, decoded.value());
}

TEST_CASE("Update payload byte layout is fixed") {
  KvUpdate update = sample(KvOp::put, KvCondition::if_version);
  Bytes bytes = encode_update(update, kLimits);
  CHECK(bytes[0] == std::byte{1});   // format
  CHECK(bytes[1] == std::byte{1});   // put
  CHECK(bytes[2] == std::byte{1});   // if_version
  CHECK(bytes[3] == std::byte{0});   // reserved
  CHECK(bytes[4] == std::byte{3});   // origin, little-endian
  CHECK(bytes[16] == std::byte{0x42});  // expected version low byte
  CHECK(bytes[24] == std::byte{13});    // key length
  CHECK(as_string_view(std::span<const std::byte>(bytes).subspan(28, 13)) == "users/42/name");
}

TEST_CASE("Invalid updates are refused before sending") {
  KvUpdate update = sample(KvOp::put, KvCondition::none);
  update.key = "";
  CHECK(validate_update(update, kLimits).code() == Code::invalid_argument);
  std::string long_key(65, 'k');
  update.key = long_key;
  CHECK(validate_update(update, kLimits).code() == Code::invalid_argument);
  update = sample(KvOp::del, KvCondition::none);
  update.value = as_bytes("x");
  CHECK(validate_update(update, kLimits).code() == Code::invalid_argument);
  update = sample(KvOp::del, KvCondition::if_absent);
  CHECK(validate_update(update, kLimits).code() == Code::invalid_argument);
  update = sample(KvOp::put, KvCondition::if_version);
  update.expected_version = 0;  // valid: a condition that never holds
  CHECK(validate_update(update, kLimits).is_ok());
  update = sample(KvOp::put, KvCondition::none);
  update.expected_version = 5;
  CHECK(validate_update(update, kLimits).code() == Code::invalid_argument);
  std::string big(1025, 'v');
  update = sample(KvOp::put, KvCondition::none);
  update.value = as_bytes(big);
  CHECK(validate_update(update, kLimits).code() == Code::invalid_argument);
}

TEST_CASE("Every truncation and every extension of a payload is corruption") {
  Bytes bytes = encode_update(sample(KvOp::put, KvCondition::if_exists), kLimits);
  for (std::size_t size = 0; size < bytes.size(); ++size) {
    auto decoded = decode_update(std::span<const std::byte>(bytes).first(size), kLimits);
    CHECK(decoded.status().code() == Code::corruption);
  }
  Bytes longer = bytes;
  longer.push_back(std::byte{0});
  CHECK(decode_update(longer, kLimits).status().code() == Code::corruption);
}

TEST_CASE("Bad fixed fields and over-limit lengths are corruption") {
  const Bytes good = encode_update(sample(KvOp::put, KvCondition::none), kLimits);
  auto with = [&](std::size_t offset, std::uint8_t value) {
    Bytes bytes = good;
    bytes[offset] = std::byte{value};
    return decode_update(bytes, kLimits).status().code();
  };
  CHECK(with(0, 2) == Code::corruption);    // unknown format
  CHECK(with(1, 0) == Code::corruption);    // op 0
  CHECK(with(1, 3) == Code::corruption);    // op 3
  CHECK(with(2, 4) == Code::corruption);    // condition 4
  CHECK(with(3, 1) == Code::corruption);    // reserved
  CHECK(with(27, 0x80) == Code::corruption);  // key length huge
  CHECK(with(24, 65) == Code::corruption);  // key length over the limit
  CHECK(with(16, 1) == Code::corruption);   // expected version without if_version
}

TEST_CASE("Random mutations of payloads never crash the decoder") {
  std::mt19937_64 random(7);
  const Bytes good = encode_update(sample(KvOp::put, KvCondition::if_version), kLimits);
  std::size_t decoded_ok = 0;
  for (int round = 0; round < 20000; ++round) {
    Bytes bytes = good;
    int flips = 1 + static_cast<int>(random() % 4);
    for (int i = 0; i < flips; ++i) {
      bytes[random() % bytes.size()] = static_cast<std::byte>(random());
    }
    if (random() % 4 == 0) bytes.resize(random() % (bytes.size() + 1));
    auto decoded = decode_update(bytes, kLimits);
    if (decoded) {
      ++decoded_ok;
      CHECK(validate_update(decoded.value(), kLimits).is_ok());
    } else {
      CHECK(decoded.status().code() == Code::corruption);
    }
  }
  CHECK(decoded_ok > 0);  // flips inside key or value bytes still decode
}
