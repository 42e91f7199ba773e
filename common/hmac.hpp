// HMAC-SHA256 (OpenSSL) and a constant-time comparison, for authenticating members to each
// other with the cluster secret (docs/security.md). The secret may be empty: the MAC is then
// computed under the empty key (integrity only, and nodes with a secret refuse it).
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string_view>

namespace squall {

inline constexpr std::size_t kHmacBytes = 32;
using Hmac = std::array<std::byte, kHmacBytes>;

Hmac hmac_sha256(std::string_view key, std::span<const std::byte> data);

// True when `mac` (exactly kHmacBytes) equals `expected`; takes the same time either way.
bool hmac_equal(const Hmac& expected, std::span<const std::byte> mac);

}  // namespace squall
