// The driver line protocol shared by the multi-process node programs (sst_node, rdmc_node).
//
//   node   -> driver  {"event":"port","node":N,"port":P}   (only without --ports)
//   driver -> node    PEERS <id>:<port> ...                  (every member, in rank order)
//   node   -> driver  {"event":"ready","node":N}             (every peer connected)
//   driver -> node    GO                                     (start the workload)
//   node   -> driver  {"event":...} lines: progress, suspected, result, error
//   driver -> node    EXIT (or end of stdin)  then  node -> driver {"event":"bye",...}
//
// Every stdout line is one JSON object. A node that detects a failed check prints
// {"event":"error","node":N,"what":...} and exits with status 1.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.hpp"
#include "fabric/libfabric.hpp"
#include "fabric/transport.hpp"

namespace squall::integration {

// Monotonic microseconds (CLOCK_MONOTONIC: comparable across processes on one machine).
std::uint64_t now_us();

// Prints one JSON object as a line on stdout and flushes.
void emit(const nlohmann::json& line);
// Adds this node's rates to a result line: elapsed_us, deliveries_per_s (the sum of its
// "delivered" counts) and delivered_mb_per_s (its "bytes_delivered"), over `elapsed_us`.
void add_rates(nlohmann::json& result, std::uint64_t elapsed_us);
// Prints an error event for `node` and exits with status 1.
[[noreturn]] void fail(std::uint32_t node, const std::string& what);

// Non-blocking reader of stdin lines.
class StdinLines {
 public:
  // The next complete line, waiting up to wait_ms for input.
  std::optional<std::string> next(std::uint64_t wait_ms);
  bool eof() const { return eof_ && buffer_.empty(); }

 private:
  std::string buffer_;
  bool eof_ = false;
};

// "1,2,3" -> {1, 2, 3}; invalid_argument on anything else.
Result<std::vector<std::uint32_t>> parse_number_list(const std::string& text);

// Prints the port event and reads the PEERS line: node id -> bootstrap port.
Result<std::map<std::uint32_t, std::uint16_t>> exchange_ports(std::uint32_t self,
                                                              std::uint16_t port,
                                                              StdinLines& input,
                                                              std::uint64_t timeout_ms);

// Adds every peer (ids other than `self`) and polls, handing every event to `handle`, until
// each has connected. unavailable if one fails first, timed_out after timeout_ms.
Status connect_peers(fabric::Transport& transport, std::uint32_t self,
                     const std::map<std::uint32_t, std::uint16_t>& ports,
                     const std::function<void(const fabric::Event&)>& handle,
                     std::uint64_t timeout_ms);

// Where a node program finds itself and its peers: ids and bootstrap ports in rank order
// (ports empty: exchanged through the driver on stdin).
struct NodeIdentity {
  std::uint32_t id = 0;
  std::vector<std::uint32_t> members;
  std::vector<std::uint32_t> ports;
  std::uint64_t connect_timeout_ms = 30'000;
};

// A tcp/lo transport bound to this node's port (or any free port); fails the node on error.
std::unique_ptr<fabric::LibfabricTransport> make_node_transport(const NodeIdentity& node);
// Every member's bootstrap port: from the identity, or exchanged through the driver.
std::map<std::uint32_t, std::uint16_t> peer_ports(const NodeIdentity& node,
                                                  fabric::LibfabricTransport& transport,
                                                  StdinLines& input);

}  // namespace squall::integration
