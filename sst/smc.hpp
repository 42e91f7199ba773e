// Small-message multicast (SMC) through slots in the sender's SST row.
//
// Each member's row holds a ring of `window` slots (header + up to payload_bytes), the count
// of messages it has sent, and how many messages it has received from each sender. To send,
// a member needs a free slot: message k may reuse slot k % window only once every live
// member (itself included) has received message k - window. send() never spins: a full ring
// returns would_block. send() writes locally; flush() pushes all new slots and then the sent
// counter, so several messages travel in one push and a peer never sees the counter before
// the slots. receive() delivers each sender's new messages in order, exactly once, then
// publishes our received counts (which frees the senders' slots).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "sst/table.hpp"

namespace squall::sst {

struct SmcFields {
  Array<std::byte> slots;
  Scalar<std::uint64_t> sent;
  Array<std::uint64_t> received;  // per sender rank
  std::size_t window = 0;
  std::size_t slot_bytes = 0;     // header + payload capacity, multiple of 8
  std::size_t payload_bytes = 0;  // largest message
};

SmcFields add_smc_fields(Schema& schema, std::size_t members, std::size_t window,
                         std::size_t payload_bytes);

class Smc {
 public:
  // index: the message's position in its sender's stream (0, 1, 2, ...).
  using DeliverCallback =
      std::function<void(std::size_t sender_rank, std::uint64_t index,
                         std::span<const std::byte> payload)>;

  // Called when a sender's row holds an impossible slot; the owner should suspect it.
  using FaultCallback = std::function<void(std::size_t sender_rank, const std::string& reason)>;

  Smc(Table& table, SmcFields fields, DeliverCallback deliver, FaultCallback fault);

  // Queues a message in the next slot. invalid_argument if larger than payload_bytes;
  // would_block if every slot still waits for some live member.
  Status send(std::span<const std::byte> payload);
  bool can_send() const { return sent_ < free_limit(); }
  // Pushes slots written since the last flush, then the sent counter.
  void flush();
  // Delivers new messages from every non-frozen sender (and ourselves); returns how many.
  std::size_t receive();

  std::uint64_t sent() const { return sent_; }
  // Messages of `sender_rank` we have delivered.
  std::uint64_t delivered_from(std::size_t sender_rank) const {
    return delivered_.at(sender_rank);
  }
  const SmcFields& fields() const { return fields_; }

 private:
  std::uint64_t free_limit() const;
  std::size_t slot_offset(std::uint64_t index) const;
  void push_slots(std::uint64_t begin, std::uint64_t end);

  Table& table_;
  SmcFields fields_;
  DeliverCallback deliver_;
  FaultCallback fault_;
  std::uint64_t sent_ = 0;     // messages written into our slots
  std::uint64_t flushed_ = 0;  // messages whose slots and counter were pushed
  std::vector<std::uint64_t> delivered_;
};

}  // namespace squall::sst
