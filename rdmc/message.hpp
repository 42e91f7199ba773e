// The state of one message at one member (internal to the engine, group.hpp).
#pragma once

#include <cstdint>
#include <vector>

#include "rdmc/plan.hpp"
#include "rdmc/wire.hpp"

namespace squall::rdmc {

struct MessageState {
  std::uint32_t sender = 0;  // member index of the sender (rank 0 of this message)
  std::uint64_t seq = 0;
  std::uint64_t size_bytes = 0;
  std::uint32_t blocks = 0;
  std::uint32_t rank = 0;          // this member's rank for this message
  std::uint64_t slot_offset = 0;   // byte offset of the message's slot in the region
  Plan plan;
  std::size_t next_send = 0;       // index into plan.sends of the next write to post
  std::vector<bool> have;          // per block: present in our slot
  std::uint32_t received = 0;      // blocks received (receivers)
  std::vector<bool> downstream_ready;  // per rank: its READY for this message arrived
  std::uint32_t writes_outstanding = 0;  // posted, not yet completed
  bool slot_acquired = false;  // our slot holds this message (READYs sent / sender's copy)
  bool delivered = false;

  bool complete() const { return rank == 0 || received == blocks; }
  bool sends_done() const { return next_send == plan.sends.size(); }
};

}  // namespace squall::rdmc
