// Helpers shared by the configuration tests.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace squall::config::testing {

// The smallest valid configuration: only the two required keys.
inline constexpr std::string_view kMinimal =
    "node:\n"
    "  id: 1\n"
    "  data_dir: /var/lib/squall\n";

inline Result<Config> load(std::string_view text, const std::vector<std::string>& overrides = {}) {
  return load_config_string(text, "test.yaml", overrides);
}

// The error message of a load that must fail ("" if it unexpectedly succeeded).
inline std::string load_error(std::string_view text,
                              const std::vector<std::string>& overrides = {}) {
  auto result = load(text, overrides);
  return result.is_ok() ? std::string() : result.status().message();
}

// kMinimal plus more YAML text.
inline std::string minimal_with(std::string_view more) {
  return std::string(kMinimal) + std::string(more);
}

}  // namespace squall::config::testing
