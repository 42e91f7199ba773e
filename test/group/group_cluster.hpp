// GroupCluster: N group_node_program processes on loopback for the multi-process group tests,
// each with a generated config (unique ports per test run) and a data dir under a temp root.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "test/integration/sst_process.hpp"

namespace squall::testing {

struct NodeState {
  std::uint32_t view = 0;            // last VIEW seen
  std::uint32_t voter_stage = 0;     // last STATUS seen
  std::vector<std::uint32_t> members;
  std::optional<std::string> stopped;
};

class GroupCluster {
 public:
  // `extra` is appended to every node's YAML (e.g. a layout section).
  explicit GroupCluster(std::string extra = "");
  ~GroupCluster();

  // Starts node `id` (contact: node 0); `cluster_name` overrides the cluster's name; a
  // non-empty `secret` goes to the node's cluster.secret_file.
  void start(std::uint32_t id, const std::string& cluster_name = "groupt",
             const std::string& secret = "");
  void kill(std::uint32_t id, int signal_number);
  // SIGKILL to every listed node at once (a power cut), then reaps them.
  void kill_all(const std::vector<std::uint32_t>& ids);
  bool running(std::uint32_t id) const;
  integration::ChildProcess& process(std::uint32_t id) { return *processes_.at(id); }

  // Reads every node's output until `done` holds or timeout_ms passes; returns done().
  template <typename Predicate>
  bool await(Predicate done, std::uint64_t timeout_ms);
  // Every listed node has installed a view with exactly `members` (in any rank order).
  bool await_view(const std::vector<std::uint32_t>& nodes,
                  const std::vector<std::uint32_t>& members, std::uint64_t timeout_ms);
  // "LOG" of `shard` on each node once every node holds `entries` (polling); the logs.
  std::map<std::uint32_t, std::string> await_logs(const std::vector<std::uint32_t>& nodes,
                                                  std::uint32_t shard, std::size_t entries,
                                                  std::uint64_t timeout_ms);
  void command(std::uint32_t id, const std::string& line);
  // Every listed node reports voter stage 2 (`all`): any majority of the view may go on.
  bool await_all_voters(const std::vector<std::uint32_t>& nodes, std::uint64_t timeout_ms);
  const NodeState& state(std::uint32_t id) { return states_[id]; }
  std::vector<std::string> lines(std::uint32_t id) const;
  std::string root() const { return root_; }

 private:
  void drain(std::uint64_t wait_ms);
  void consume(std::uint32_t id, const std::string& line);
  std::string render(std::uint32_t id, const std::string& cluster_name,
                     const std::string& secret) const;

  std::string extra_;
  std::string root_;
  std::uint16_t base_port_;
  std::map<std::uint32_t, std::unique_ptr<integration::ChildProcess>> processes_;
  std::map<std::uint32_t, NodeState> states_;
  std::map<std::uint32_t, std::vector<std::string>> lines_;
  std::map<std::uint32_t, std::string> last_log_;
};

template <typename Predicate>
bool GroupCluster::await(Predicate done, std::uint64_t timeout_ms) {
  for (std::uint64_t waited = 0; waited < timeout_ms; waited += 20) {
    if (done()) return true;
    drain(20);
  }
  return done();
}

}  // namespace squall::testing
