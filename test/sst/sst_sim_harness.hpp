// A simulated SST group for tests: N members on one SimNetwork, each with a table, a failure
// detector and SMC, driven by a periodic tick timer per member (owned by that member, so it
// stops on crash and is held while paused).
#pragma once

#include <map>
#include <memory>
#include <new>
#include <optional>
#include <vector>

#include <catch2/catch.hpp>

#include "fabric/sim_network.hpp"
#include "sst/failure_detector.hpp"
#include "sst/smc.hpp"

#define REQUIRE_OK(expr)                 \
  do {                                   \
    ::squall::Status status_ = (expr);   \
    INFO(status_.to_string());           \
    REQUIRE(status_.is_ok());            \
  } while (0)

namespace squall::sst::testing {

struct HarnessOptions {
  std::size_t members = 3;
  std::size_t window = 4;
  std::size_t payload_bytes = 64;
  std::uint64_t heartbeat_ms = 1;
  std::uint64_t failure_timeout_ms = 10;
  std::uint64_t tick_us = 100;
};

struct Delivery {
  std::uint64_t index = 0;
  Bytes payload;
};

struct CacheAlignedDelete {
  void operator()(std::byte* memory) const {
    ::operator delete[](memory, std::align_val_t{kCacheLineBytes});
  }
};

class SimMember {
 public:
  SimMember(fabric::SimTransport& transport, const HarnessOptions& options,
            std::vector<NodeId> members, std::size_t rank);

  void tick();  // one round of the progress loop
  // Messages to send: the loop sends them in order as the window allows.
  std::vector<Bytes> outbox;
  std::size_t next_to_send = 0;

  std::vector<std::vector<Delivery>> delivered;  // per sender rank
  std::map<std::size_t, std::uint64_t> suspected_at_us;  // rank -> time of suspicion
  std::vector<std::string> faults;

  fabric::SimTransport& transport;
  Schema schema;
  FailureDetectorFields detector_fields;
  SmcFields smc_fields;
  std::unique_ptr<std::byte[], CacheAlignedDelete> memory;
  std::unique_ptr<Table> table;
  std::unique_ptr<FailureDetector> detector;
  std::unique_ptr<Smc> smc;
};

class SimGroup {
 public:
  SimGroup(fabric::SimOptions sim_options, HarnessOptions options);

  // Runs the network (and every member's ticks) for `duration_us` of simulated time.
  void run_for(std::uint64_t duration_us) { network.run_for(duration_us); }
  SimMember& member(std::size_t rank) { return *members[rank]; }

  fabric::SimNetwork network;
  HarnessOptions options;
  std::vector<NodeId> ids;
  std::vector<std::unique_ptr<SimMember>> members;

 private:
  void arm_tick(std::size_t rank);
};

// The deterministic content of message `index` of `sender` under `seed`.
Bytes message_content(std::uint64_t seed, std::size_t sender, std::uint64_t index,
                      std::size_t max_bytes);

}  // namespace squall::sst::testing
