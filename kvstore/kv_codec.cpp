#include "kvstore/kv_codec.hpp"

#include <fmt/format.h>

namespace squall::kvstore {

namespace {

bool op_valid(std::uint8_t raw) { return raw >= 1 && raw <= 3; }
bool condition_valid(std::uint8_t raw) { return raw <= 3; }

}  // namespace

std::string_view name(KvOp op) {
  switch (op) {
    case KvOp::put: return "put";
    case KvOp::del: return "delete";
    case KvOp::barrier: return "barrier";
  }
  return "?";
}

std::string_view name(KvCondition condition) {
  switch (condition) {
    case KvCondition::none: return "none";
    case KvCondition::if_version: return "if_version";
    case KvCondition::if_exists: return "if_exists";
    case KvCondition::if_absent: return "if_absent";
  }
  return "?";
}

Status validate_update(const KvUpdate& update, const KvCodecLimits& limits) {
  if (!op_valid(static_cast<std::uint8_t>(update.op))) {
    return invalid_argument("unknown operation");
  }
  if (!condition_valid(static_cast<std::uint8_t>(update.condition))) {
    return invalid_argument("unknown condition");
  }
  if (update.op == KvOp::barrier) {
    if (!update.key.empty() || !update.value.empty() ||
        update.condition != KvCondition::none || update.expected_version != 0) {
      return invalid_argument("a barrier carries no key, value or condition");
    }
    return Status::ok();
  }
  if (update.key.empty() || update.key.size() > limits.max_key_bytes) {
    return invalid_argument(
        fmt::format("key of {} bytes (1..{} allowed)", update.key.size(), limits.max_key_bytes));
  }
  if (update.value.size() > limits.max_value_bytes) {
    return invalid_argument(fmt::format("value of {} bytes (at most {})", update.value.size(),
                                        limits.max_value_bytes));
  }
  if (update.op == KvOp::del && !update.value.empty()) {
    return invalid_argument("a delete carries no value");
  }
  // if_version with 0 is valid and never holds (no version is 0): If-Match: "0" is a 412.
  if (update.condition != KvCondition::if_version && update.expected_version != 0) {
    return invalid_argument("an expected version is only given with if_version");
  }
  if (update.op == KvOp::del && update.condition == KvCondition::if_absent) {
    return invalid_argument("a delete cannot require the key to be absent");
  }
  return Status::ok();
}

void encode_update(const KvUpdate& update, const KvCodecLimits& limits, Bytes& out) {
  Status valid = validate_update(update, limits);
  SQUALL_ASSERT(valid.is_ok(), "encoding an invalid update: {}", valid.to_string());
  out.reserve(out.size() + kv_update_size_bytes(update.key.size(), update.value.size()));
  ByteWriter writer(out);
  writer.put(kKvUpdateFormat);
  writer.put(static_cast<std::uint8_t>(update.op));
  writer.put(static_cast<std::uint8_t>(update.condition));
  writer.put(std::uint8_t{0});
  writer.put(update.request.origin.value);
  writer.put(update.request.sequence);
  writer.put(update.expected_version);
  writer.put_string(update.key);
  writer.put(static_cast<std::uint32_t>(update.value.size()));
  writer.put_bytes(update.value);
}

Bytes encode_update(const KvUpdate& update, const KvCodecLimits& limits) {
  Bytes out;
  encode_update(update, limits, out);
  return out;
}

Result<KvUpdate> decode_update(std::span<const std::byte> payload, const KvCodecLimits& limits) {
  ByteReader reader(payload);
  std::uint8_t format = 0;
  std::uint8_t op = 0;
  std::uint8_t condition = 0;
  std::uint8_t reserved = 0;
  KvUpdate update;
  if (!reader.get(format) || !reader.get(op) || !reader.get(condition) ||
      !reader.get(reserved) || !reader.get(update.request.origin.value) ||
      !reader.get(update.request.sequence) || !reader.get(update.expected_version)) {
    return corruption(fmt::format("update of {} bytes is shorter than its fixed fields",
                                  payload.size()));
  }
  if (format != kKvUpdateFormat) return corruption(fmt::format("update format {}", format));
  if (!op_valid(op)) return corruption(fmt::format("update operation {}", op));
  if (!condition_valid(condition)) return corruption(fmt::format("update condition {}", condition));
  if (reserved != 0) return corruption("update reserved byte is not zero");
  update.op = static_cast<KvOp>(op);
  update.condition = static_cast<KvCondition>(condition);
  std::uint32_t key_bytes = 0;
  std::span<const std::byte> key;
  if (!reader.get(key_bytes) || key_bytes > limits.max_key_bytes ||
      !reader.get_bytes(key_bytes, key)) {
    return corruption("update key length is out of range or truncated");
  }
  update.key = as_string_view(key);
  std::uint32_t value_bytes = 0;
  if (!reader.get(value_bytes) || value_bytes > limits.max_value_bytes ||
      !reader.get_bytes(value_bytes, update.value)) {
    return corruption("update value length is out of range or truncated");
  }
  if (reader.remaining() != 0) {
    return corruption(fmt::format("{} bytes after the update", reader.remaining()));
  }
  Status valid = validate_update(update, limits);
  if (!valid.is_ok()) return corruption("invalid update: " + valid.message());
  return update;
}

}  // namespace squall::kvstore
