// Fuzz target: the KV update payload every replica decodes from the shard's total order
// (kvstore/kv_codec.hpp), as sent by whichever member multicast it.
// Properties: a payload that decodes is valid by validate_update, within the limits, and
// re-encodes to exactly itself.
#include "fuzz/fuzz_util.hpp"
#include "kvstore/kv_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace squall;
  using namespace squall::kvstore;
  KvCodecLimits limits;
  limits.max_key_bytes = 64;
  limits.max_value_bytes = 1024;
  auto payload = fuzz::input_bytes(data, size);
  auto update = decode_update(payload, limits);
  if (!update.is_ok()) {
    FUZZ_CHECK(update.status().code() == Code::corruption, "not corruption: {}",
               update.status().message());
    return 0;
  }
  FUZZ_CHECK(validate_update(update.value(), limits).is_ok(), "a decoded update is invalid");
  FUZZ_CHECK(update.value().key.size() <= limits.max_key_bytes &&
                 update.value().value.size() <= limits.max_value_bytes, "over the limits");
  FUZZ_CHECK(fuzz::same_bytes(encode_update(update.value(), limits), payload),
             "an update re-encodes differently");
  return 0;
}
