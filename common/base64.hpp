// Standard base64 (RFC 4648, with padding): REST values and watch events, forwarded lists,
// squallctl, and the load generator's etcd dialect.
#pragma once

#include <string>
#include <string_view>

#include "common/status.hpp"

namespace squall {

std::string base64_encode(std::string_view bytes);
// invalid_argument for a length that is not a multiple of 4, a character outside the
// alphabet, or misplaced padding.
Result<std::string> base64_decode(std::string_view text);

}  // namespace squall
