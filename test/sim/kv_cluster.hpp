// KvSim: a replicated KV shard in the deterministic simulator — 3-5 nodes, one OrderedGroup
// and one KvStateMachine each (test/sim's Cluster hosts only its LogStateMachine, so this
// harness builds its nodes the same way around the KV state machine).
//
// Clients (closed loop) issue puts, conditional puts and deletes through random members; a
// member multicasts the encoded update, matches the result that its own replica reports for
// its request id, and acknowledges once the persistence frontier passes the version. Hot
// "race/" keys only ever see conditional puts (if_absent, then if_version with the version
// the client read from its member's store), so concurrent clients race on expected versions.
//
// Checked at the end: every replica reported the same result for every version and holds the
// same state (history and values); each expected version of a race key has exactly one
// winner; every acknowledged write is present at every replica with its version and value;
// every request was acknowledged exactly once.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/hlc.hpp"
#include "core/ordered_group.hpp"
#include "fabric/sim_network.hpp"
#include "kvstore/kv_state_machine.hpp"

namespace squall::sim {

struct KvSimOptions {
  std::uint64_t seed = 1;
  std::size_t nodes = 3;
  std::size_t clients = 6;
  std::size_t ops_per_client = 30;
  std::size_t race_keys = 2;
  std::size_t plain_keys = 8;
  bool persistent = false;  // default pool persistent (on a FaultyDirectory) or volatile
  std::uint32_t window = 4;
  std::uint64_t smc_payload_bytes = 192;
  std::uint64_t tick_us = 50;
  std::uint64_t sync_every_updates = 4;
  std::uint64_t max_think_us = 300;
  std::uint64_t min_delay_us = 2;
  std::uint64_t max_delay_us = 50;
  std::uint32_t delay_spike_per_million = 0;
  std::uint32_t torn_write_per_million = 0;

  std::string describe() const;
};

// Everything drawn from the seed.
KvSimOptions random_kv_options(std::uint64_t seed);

struct KvSimReport {
  std::vector<std::string> violations;  // the first few broken invariants
  std::uint64_t requests = 0;
  std::uint64_t acknowledged = 0;
  std::uint64_t race_wins = 0;
  std::uint64_t race_losses = 0;
  std::uint64_t applied = 0;     // updates applied at one replica
  std::uint64_t elapsed_us = 0;  // simulated time
};

// Runs one simulation to the end and checks it.
KvSimReport run_kv_sim(const KvSimOptions& options);

}  // namespace squall::sim
