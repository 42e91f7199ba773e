// Fuzz target: the bootstrap hello two transports exchange over TCP before their fabric
// endpoints connect (fabric/bootstrap_wire.hpp), read from whoever connects to the port.
// Properties: the header decoder and the whole-frame decoder agree; a hello that decodes
// re-encodes to exactly its frame (CRC and MAC included).
#include "common/crc32c.hpp"
#include "common/hmac.hpp"
#include "fabric/bootstrap_wire.hpp"
#include "fuzz/fuzz_util.hpp"

namespace {

using namespace squall;
using namespace squall::fabric;

// Recomputes the derived fields: body length and CRC in the header, the MAC ending the body
// (under the empty secret, which the decoder is given too).
void fix_up(Bytes& frame) {
  if (frame.size() < kHelloHeaderBytes + kHmacBytes) return;
  auto body = std::span<std::byte>(frame).subspan(kHelloHeaderBytes);
  const Hmac mac = hmac_sha256({}, body.first(body.size() - kHmacBytes));
  std::copy(mac.begin(), mac.end(), body.end() - static_cast<std::ptrdiff_t>(kHmacBytes));
  fuzz::store_u32(frame, 8, static_cast<std::uint32_t>(body.size()));
  fuzz::store_u32(frame, 12, crc32c(body));
}

}  // namespace

// Input: a mode byte (bit 0: fix length, CRC and MAC up first), then one frame.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  auto input = fuzz::input_bytes(data + 1, size - 1);
  Bytes frame(input.begin(), input.end());
  if ((data[0] & 1) != 0) fix_up(frame);
  auto hello = decode_hello(frame);
  if (frame.size() >= kHelloHeaderBytes) {
    auto header = decode_hello_header(std::span(frame).first(kHelloHeaderBytes));
    if (!header.is_ok()) {
      FUZZ_CHECK(!hello.is_ok(), "a frame decodes although its header does not");
    } else {
      auto body = decode_hello_body(header.value(),
                                    std::span(frame).subspan(kHelloHeaderBytes));
      FUZZ_CHECK(body.is_ok() == hello.is_ok(), "body and frame decoders disagree");
    }
  }
  if (!hello.is_ok()) return 0;
  FUZZ_CHECK(fuzz::same_bytes(encode_hello(hello.value()), frame),
             "a hello re-encodes differently");
  return 0;
}
