// Helpers of the squallctl tests: run the command in-process and capture what it prints.
#pragma once

#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <boost/asio.hpp>
#include <nlohmann/json.hpp>

#include "tools/squallctl/ctl.hpp"

namespace squall::ctl::testing {

struct CtlRun {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs squallctl with `args`, `input` on stdin and `env` as $SQUALL_ENDPOINTS.
inline CtlRun ctl(const std::vector<std::string>& args, const std::string& input = {},
                  const std::optional<std::string>& env = std::nullopt) {
  std::istringstream in(input);
  std::ostringstream out;
  std::ostringstream err;
  CtlRun result;
  result.code = run(args, {in, out, err}, env);
  result.out = out.str();
  result.err = err.str();
  return result;
}

inline std::string endpoint(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// Runs squallctl against the endpoint on `port`.
inline CtlRun ctl_at(std::uint16_t port, std::vector<std::string> args,
                     const std::string& input = {}) {
  args.insert(args.begin(), {"--endpoints", endpoint(port)});
  return ctl(args, input);
}

// A loopback port nothing listens on (bound, then released).
inline std::uint16_t dead_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::address_v4::loopback(), 0));
  return acceptor.local_endpoint().port();
}

// The JSON documents of `text`, one per line.
inline std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

}  // namespace squall::ctl::testing
