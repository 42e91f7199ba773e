// squallctl: the command-line client of Squall's REST API (docs/operations.md).
//
// run() is the whole program behind main(), with its inputs explicit so tests can drive it
// in-process: the arguments (without the program name), stdin/stdout/stderr, and the value
// of $SQUALL_ENDPOINTS.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "config/config.hpp"

namespace squall::ctl {

struct Streams {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

// Runs one command; returns its exit code (format.hpp: 0 ok, 1 not found, 2 usage,
// 3 precondition failed, 4 unavailable/timeout, 5 other server error).
int run(const std::vector<std::string>& args, Streams streams,
        const std::optional<std::string>& env_endpoints);

// The endpoints to use, by precedence: `flag` (--endpoints), else `env`
// ($SQUALL_ENDPOINTS), else the rest.listen of `config_file` (--config), else
// 127.0.0.1:8080. A list is "host:port" entries separated by commas. A wildcard listen
// address (0.0.0.0, [::]) becomes the loopback address of its family.
// Errors: invalid_argument for a malformed list; the loader's error for a bad config file.
Result<std::vector<config::HostPort>> resolve_endpoints(const std::optional<std::string>& flag,
                                                        const std::optional<std::string>& env,
                                                        const std::optional<std::string>&
                                                            config_file);

}  // namespace squall::ctl
