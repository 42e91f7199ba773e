// A group of node processes (sst_node or rdmc_node) on loopback, driven through the line
// protocol of sst_node_io.hpp: spawn, exchange bootstrap ports, wait until every node is
// ready, GO, collect JSON events, signal, stop. Used by test_sst_libfabric and the benchmarks.
//
// Every wait is bounded by a caller-given timeout and returns a Status instead of hanging; the
// destructor kills and reaps every process that is still there.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sst_process.hpp"

namespace squall::integration {

struct ClusterOptions {
  std::string program;                   // path of the node binary
  std::vector<std::uint32_t> ids;        // node ids in rank order
  std::vector<std::string> common_args;  // given to every node (after --id and --members)
  std::uint64_t start_timeout_ms = 60'000;  // spawn to every node ready
};

class Cluster {
 public:
  using Filter = std::function<bool(const nlohmann::json&)>;

  // Spawns the nodes, exchanges ports, and waits until each reports ready.
  static Result<std::unique_ptr<Cluster>> start(const ClusterOptions& options);
  ~Cluster() = default;

  std::size_t size() const { return nodes_.size(); }
  std::uint32_t id(std::size_t index) const { return options_.ids.at(index); }
  ChildProcess& process(std::size_t index) { return *nodes_.at(index).process; }
  // Every event node `index` printed so far (in order).
  const std::vector<nlohmann::json>& events(std::size_t index) const {
    return nodes_.at(index).events;
  }

  // Sends GO to every node.
  Status go();

  // Waits until node `index` has printed an event named `name` that passes `filter`; returns
  // the first such event. Errors: corruption with the node's message when it printed an
  // error event, unavailable when its output ended, timed_out.
  Result<nlohmann::json> wait_event(std::size_t index, const std::string& name,
                                    std::uint64_t timeout_ms, const Filter& filter = {});

  // kill(2) on node `index`; SIGKILL also reaps it (within a few seconds).
  void signal(std::size_t index, int signal_number);

  // EXIT to every node still running, then waits for each to exit (status 0 expected);
  // kills what is left after timeout_ms. Errors name the nodes that did not exit cleanly.
  Status stop(std::uint64_t timeout_ms);

 private:
  struct Node {
    std::unique_ptr<ChildProcess> process;
    std::vector<nlohmann::json> events;
    bool killed = false;  // signalled to die by the driver
  };

  explicit Cluster(ClusterOptions options) : options_(std::move(options)) {}
  // Reads every line the nodes have printed, waiting up to wait_ms for the first.
  Status collect(std::uint64_t wait_ms);
  Status port_exchange(std::uint64_t deadline_ms);

  ClusterOptions options_;
  std::vector<Node> nodes_;
};

// The monotonic clock (CLOCK_MONOTONIC, the one the nodes stamp their events with).
std::uint64_t monotonic_ms();
std::uint64_t monotonic_us();

}  // namespace squall::integration
