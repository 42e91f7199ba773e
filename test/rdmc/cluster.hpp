// A cluster of rdmc::Group members on the simulated fabric, for the engine tests.
//
// Nodes 1..n, each with one region (the group's receive region) and one Group over all n
// nodes. run() alternates SimNetwork::step() with polling every node and feeding its events
// to its group, like a real node's progress loop; queued messages are sent as the window
// allows.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fabric/sim_network.hpp"
#include "rdmc/group.hpp"

namespace squall::rdmc::test {

inline constexpr fabric::RegionId kRegion = 7;

struct Delivery {
  NodeId sender;
  std::uint64_t seq = 0;
  Bytes payload;
};

struct Member {
  NodeId id;
  std::vector<std::uint64_t> words;  // region memory, 8-byte aligned
  std::unique_ptr<Group> group;
  std::deque<Bytes> to_send;         // sent in order as the window allows
  std::vector<Bytes> sent_payloads;  // by seq: what send() accepted
  std::vector<std::uint64_t> sent;   // seqs reported by the `sent` callback
  std::vector<Delivery> deliveries;
  std::vector<std::pair<NodeId, Status>> failures;
};

struct ClusterOptions {
  std::uint32_t members = 3;
  std::uint64_t block_size_bytes = 256;
  std::uint64_t max_payload_bytes = 1024;
  std::uint32_t window = 2;
  Algorithm algorithm = Algorithm::binomial_pipeline;
};

class Cluster {
 public:
  Cluster(const ClusterOptions& options, const fabric::SimOptions& sim);

  Member& member(std::uint32_t id) { return *members_[id - 1]; }
  std::uint32_t size() const { return static_cast<std::uint32_t>(members_.size()); }
  fabric::SimNetwork& network() { return network_; }

  // Polls every running node once, feeds its events to its group, flushes it and sends
  // queued messages. Returns true when some node had events.
  bool pump();
  // Runs until nothing is scheduled and no node has work, or `max_steps` network events ran.
  // Returns false on the step limit (a hang).
  bool run(std::uint64_t max_steps);
  // Runs `steps` network events (fewer if the network goes idle).
  void run_steps(std::uint64_t steps);

 private:
  void connect_all();
  void make_group(Member& member, const ClusterOptions& options, std::vector<NodeId> ids);
  void send_queued(Member& member);

  fabric::SimNetwork network_;
  std::vector<std::unique_ptr<Member>> members_;
};

// `size` pseudo-random bytes derived from `seed`.
Bytes pattern(std::uint64_t seed, std::size_t size);

}  // namespace squall::rdmc::test
