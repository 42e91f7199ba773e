#include "common/hmac.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/assert.hpp"

namespace squall {

Hmac hmac_sha256(std::string_view key, std::span<const std::byte> data) {
  Hmac mac{};
  std::size_t length = 0;
  // OpenSSL wants a non-null key pointer even for an empty key.
  static const unsigned char kEmpty = 0;
  const unsigned char* key_bytes =
      key.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(key.data());
  unsigned char* out = EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key_bytes,
                                 key.size(), reinterpret_cast<const unsigned char*>(data.data()),
                                 data.size(), reinterpret_cast<unsigned char*>(mac.data()),
                                 mac.size(), &length);
  SQUALL_ASSERT(out != nullptr && length == mac.size(), "HMAC-SHA256 failed");
  return mac;
}

bool hmac_equal(const Hmac& expected, std::span<const std::byte> mac) {
  if (mac.size() != kHmacBytes) return false;
  return CRYPTO_memcmp(expected.data(), mac.data(), kHmacBytes) == 0;
}

}  // namespace squall
