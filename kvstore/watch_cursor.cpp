// WatchCursor: positions and the text form (grammar in docs/watch.md, "Cursor format").
#include "kvstore/watch_cursor.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

#include "common/bytes.hpp"
#include "common/crc32c.hpp"

namespace squall::kvstore {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::size_t kCheckBytes = 4;
constexpr std::size_t kMaxVarintBytes = 10;

// Reverse of kAlphabet: 6-bit value, or -1 for a character outside it.
constexpr std::array<std::int8_t, 256> make_decode_table() {
  std::array<std::int8_t, 256> table{};
  table.fill(-1);
  for (std::size_t i = 0; i < kAlphabet.size(); ++i) {
    table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  }
  return table;
}
constexpr std::array<std::int8_t, 256> kDecodeTable = make_decode_table();

std::string base64url_encode(std::span<const std::byte> bytes) {
  std::string text;
  text.reserve((bytes.size() * 4 + 2) / 3);
  std::uint32_t bits = 0;
  int bit_count = 0;
  for (std::byte b : bytes) {
    bits = (bits << 8) | static_cast<std::uint32_t>(b);
    bit_count += 8;
    while (bit_count >= 6) {
      bit_count -= 6;
      text.push_back(kAlphabet[(bits >> bit_count) & 0x3f]);
    }
  }
  if (bit_count > 0) text.push_back(kAlphabet[(bits << (6 - bit_count)) & 0x3f]);
  return text;
}

// Canonical decoding only: a trailing group of 1 character is impossible, and the unused low
// bits of the last character must be zero (so one byte string has exactly one text).
Result<Bytes> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return invalid_argument("cursor: impossible length");
  Bytes bytes;
  bytes.reserve(text.size() * 3 / 4);
  std::uint32_t bits = 0;
  int bit_count = 0;
  for (char c : text) {
    std::int8_t value = kDecodeTable[static_cast<unsigned char>(c)];
    if (value < 0) return invalid_argument("cursor: character outside base64url");
    bits = (bits << 6) | static_cast<std::uint32_t>(value);
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      bytes.push_back(static_cast<std::byte>((bits >> bit_count) & 0xff));
    }
  }
  if ((bits & ((1U << bit_count) - 1)) != 0) {
    return invalid_argument("cursor: non-canonical base64url ending");
  }
  return bytes;
}

void put_varint(Bytes& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<std::byte>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<std::byte>(value));
}

// Minimal LEB128 only: no trailing zero groups, no bits beyond 64.
bool get_varint(ByteReader& reader, std::uint64_t& value) {
  value = 0;
  for (std::size_t i = 0; i < kMaxVarintBytes; ++i) {
    std::uint8_t byte = 0;
    if (!reader.get(byte)) return false;
    std::uint64_t group = byte & 0x7fU;
    if (i == kMaxVarintBytes - 1 && group > 1) return false;  // would overflow 64 bits
    value |= group << (7 * i);
    if ((byte & 0x80U) == 0) return !(i > 0 && byte == 0);  // overlong: a zero last group
  }
  return false;
}

Status malformed(std::string_view what) {
  return invalid_argument(fmt::format("cursor: {}", what));
}

Status decode_positions(ByteReader& reader, std::vector<WatchCursor::Position>& positions) {
  std::uint64_t count = 0;
  if (!get_varint(reader, count)) return malformed("bad shard count");
  if (count == 0 || count > WatchCursor::kMaxShards) return malformed("shard count out of range");
  std::uint64_t next_shard = 0;  // the lowest id the next entry may name
  for (std::uint64_t i = 0; i < count; ++i) {
    std::uint64_t gap = 0;
    std::uint64_t version = 0;
    if (!get_varint(reader, gap) || !get_varint(reader, version)) {
      return malformed("truncated or bad position");
    }
    std::uint64_t shard = next_shard + gap;
    if (gap > UINT32_MAX || shard > UINT32_MAX) return malformed("shard id out of range");
    positions.push_back({ShardId{static_cast<std::uint32_t>(shard)}, version});
    next_shard = shard + 1;
  }
  return Status::ok();
}

}  // namespace

void WatchCursor::set(ShardId shard, Version version) {
  auto it = std::lower_bound(positions_.begin(), positions_.end(), shard,
                             [](const Position& p, ShardId s) { return p.shard < s; });
  if (it != positions_.end() && it->shard == shard) {
    it->version = version;
    return;
  }
  SQUALL_ASSERT(positions_.size() < kMaxShards, "a cursor names at most {} shards", kMaxShards);
  positions_.insert(it, Position{shard, version});
}

void WatchCursor::advance(ShardId shard, Version version) {
  std::optional<Version> current = get(shard);
  if (!current || *current < version) set(shard, version);
}

std::optional<Version> WatchCursor::get(ShardId shard) const {
  auto it = std::lower_bound(positions_.begin(), positions_.end(), shard,
                             [](const Position& p, ShardId s) { return p.shard < s; });
  if (it == positions_.end() || it->shard != shard) return std::nullopt;
  return it->version;
}

std::string WatchCursor::encode() const {
  SQUALL_ASSERT(!positions_.empty(), "encoding a cursor without positions");
  Bytes bytes;
  bytes.push_back(static_cast<std::byte>(kFormat));
  put_varint(bytes, positions_.size());
  std::uint64_t next_shard = 0;
  for (const Position& p : positions_) {
    SQUALL_ASSERT(p.shard.value >= next_shard, "cursor positions out of order");
    put_varint(bytes, p.shard.value - next_shard);
    put_varint(bytes, p.version);
    next_shard = std::uint64_t{p.shard.value} + 1;
  }
  std::uint32_t check = crc32c(bytes);
  ByteWriter(bytes).put(check);
  SQUALL_ASSERT(bytes.size() <= kMaxBytes, "cursor of {} bytes", bytes.size());
  return base64url_encode(bytes);
}

Result<WatchCursor> WatchCursor::decode(std::string_view text) {
  if (text.empty()) return malformed("empty");
  if (text.size() > kMaxTextBytes) return malformed("too long");
  Result<Bytes> decoded = base64url_decode(text);
  if (!decoded) return decoded.status();
  const Bytes& bytes = *decoded;
  if (bytes.size() < 1 + 1 + 2 + kCheckBytes) return malformed("too short");
  std::span<const std::byte> body(bytes.data(), bytes.size() - kCheckBytes);
  std::uint32_t check = 0;
  ByteReader check_reader(std::span<const std::byte>(bytes).subspan(body.size()));
  bool have_check = check_reader.get(check);
  SQUALL_ASSERT(have_check, "cursor check bytes missing");
  if (check != crc32c(body)) return malformed("check mismatch (damaged or not a cursor)");
  ByteReader reader(body);
  std::uint8_t format = 0;
  bool have_format = reader.get(format);
  SQUALL_ASSERT(have_format, "cursor format byte missing");
  if (format != kFormat) return malformed(fmt::format("unknown format {}", format));
  WatchCursor cursor;
  SQUALL_TRY(decode_positions(reader, cursor.positions_));
  if (reader.remaining() != 0) return malformed("trailing bytes");
  return cursor;
}

}  // namespace squall::kvstore
