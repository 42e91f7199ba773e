#include "sst/smc.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include <fmt/format.h>

namespace squall::sst {
namespace {

// Slot layout: u32 payload size, u32 reserved, then the payload.
constexpr std::size_t kSlotHeaderBytes = 8;

std::size_t round_up8(std::size_t value) { return (value + 7) / 8 * 8; }

}  // namespace

SmcFields add_smc_fields(Schema& schema, std::size_t members, std::size_t window,
                         std::size_t payload_bytes) {
  SQUALL_ASSERT(window > 0 && payload_bytes > 0, "SMC needs a window and a payload size");
  SmcFields fields;
  fields.window = window;
  fields.payload_bytes = payload_bytes;
  fields.slot_bytes = kSlotHeaderBytes + round_up8(payload_bytes);
  // Slots before the counter that publishes them (Table::peer_connected pushes in this order).
  fields.slots = schema.array<std::byte>("smc_slots", window * fields.slot_bytes);
  fields.sent = schema.scalar<std::uint64_t>("smc_sent");
  fields.received = schema.array<std::uint64_t>("smc_received", members);
  return fields;
}

Smc::Smc(Table& table, SmcFields fields, DeliverCallback deliver, FaultCallback fault)
    : table_(table),
      fields_(fields),
      deliver_(std::move(deliver)),
      fault_(std::move(fault)),
      delivered_(table.size(), 0) {
  SQUALL_ASSERT(fields_.received.count >= table.size(), "received[] shorter than the table");
}

std::size_t Smc::slot_offset(std::uint64_t index) const {
  return fields_.slots.offset + (index % fields_.window) * fields_.slot_bytes;
}

std::uint64_t Smc::free_limit() const {
  // Message k may be written once every live member received message k - window.
  std::uint64_t slowest = std::numeric_limits<std::uint64_t>::max();
  for (std::size_t rank = 0; rank < table_.size(); ++rank) {
    if (rank != table_.my_rank() && table_.frozen(rank)) continue;
    std::uint64_t received = rank == table_.my_rank()
                                 ? delivered_[rank]
                                 : table_.read(rank, fields_.received, table_.my_rank());
    slowest = std::min(slowest, received);
  }
  return slowest + fields_.window;
}

Status Smc::send(std::span<const std::byte> payload) {
  if (payload.size() > fields_.payload_bytes) {
    return invalid_argument(fmt::format("SMC message of {} bytes exceeds the slot payload of {}",
                                        payload.size(), fields_.payload_bytes));
  }
  if (!can_send()) return {Code::would_block, "SMC window full"};
  std::size_t offset = slot_offset(sent_);
  auto size = static_cast<std::uint32_t>(payload.size());
  std::byte* base = table_.mutable_row_span({offset, fields_.slot_bytes}).data();
  std::memcpy(base, &size, sizeof(size));
  std::memset(base + sizeof(size), 0, kSlotHeaderBytes - sizeof(size));
  if (!payload.empty()) std::memcpy(base + kSlotHeaderBytes, payload.data(), payload.size());
  ++sent_;
  return Status::ok();
}

void Smc::push_slots(std::uint64_t begin, std::uint64_t end) {
  if (end - begin >= fields_.window) {
    table_.push(fields_.slots.range());
    return;
  }
  std::uint64_t first = begin % fields_.window;
  std::uint64_t last = (end - 1) % fields_.window;
  if (first <= last) {
    table_.push({slot_offset(begin), (last - first + 1) * fields_.slot_bytes});
  } else {
    table_.push({slot_offset(begin), (fields_.window - first) * fields_.slot_bytes});
    table_.push({fields_.slots.offset, (last + 1) * fields_.slot_bytes});
  }
}

void Smc::flush() {
  if (flushed_ == sent_) return;
  push_slots(flushed_, sent_);
  table_.write(fields_.sent, sent_);
  table_.push(fields_.sent.range());
  flushed_ = sent_;
}

std::size_t Smc::receive() {
  std::size_t count = 0;
  for (std::size_t sender = 0; sender < table_.size(); ++sender) {
    bool self = sender == table_.my_rank();
    if (!self && table_.frozen(sender)) continue;
    std::uint64_t available = self ? sent_ : table_.read(sender, fields_.sent);
    for (std::uint64_t& index = delivered_[sender]; index < available; ++index) {
      std::span<const std::byte> slot =
          table_.row_span(sender, {slot_offset(index), fields_.slot_bytes});
      std::uint32_t size = 0;
      std::memcpy(&size, slot.data(), sizeof(size));
      if (size > fields_.payload_bytes) {
        // Only a broken or hostile member writes this; it must not take us down with it.
        fault_(sender, fmt::format("SMC slot {} claims {} bytes (max {})", index, size,
                                   fields_.payload_bytes));
        break;
      }
      deliver_(sender, index, slot.subspan(kSlotHeaderBytes, size));
      ++count;
    }
    table_.write(fields_.received, sender, delivered_[sender]);
  }
  if (count > 0) table_.push(fields_.received.range());
  return count;
}

}  // namespace squall::sst
