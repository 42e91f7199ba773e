#include "sst/table.hpp"

#include <algorithm>

namespace squall::sst {

Table::Table(const Schema& schema, std::vector<NodeId> members, std::size_t my_rank,
             std::span<std::byte> memory, fabric::Transport& transport,
             fabric::RegionId region)
    : members_(std::move(members)),
      my_rank_(my_rank),
      row_bytes_(schema.row_bytes()),
      memory_(memory),
      transport_(transport),
      region_(region),
      frozen_(members_.size(), false),
      pending_(members_.size()) {
  SQUALL_ASSERT(my_rank_ < members_.size(), "rank {} outside {} members", my_rank_,
                members_.size());
  SQUALL_ASSERT(memory_.size() >= members_.size() * row_bytes_,
                "SST memory {} bytes < {} rows x {} bytes", memory_.size(), members_.size(),
                row_bytes_);
  SQUALL_ASSERT(reinterpret_cast<std::uintptr_t>(memory_.data()) % kCacheLineBytes == 0,
                "SST memory must be cache-line aligned");
  std::fill(memory_.begin(), memory_.end(), std::byte{0});
}

std::optional<std::size_t> Table::rank_of(NodeId node) const {
  auto it = std::find(members_.begin(), members_.end(), node);
  if (it == members_.end()) return std::nullopt;
  return static_cast<std::size_t>(it - members_.begin());
}

std::byte* Table::address(std::size_t row, std::size_t offset) const {
  SQUALL_ASSERT(row < members_.size() && offset < row_bytes_, "row {} offset {} outside table",
                row, offset);
  return memory_.data() + row * row_bytes_ + offset;
}

std::span<const std::byte> Table::row_span(std::size_t row, RowRange range) const {
  SQUALL_ASSERT(range.offset + range.length <= row_bytes_, "range outside the row");
  return {address(row, range.offset), range.length};
}

std::span<std::byte> Table::mutable_row_span(RowRange range) {
  SQUALL_ASSERT(range.offset + range.length <= row_bytes_, "range outside the row");
  return {address(my_rank_, range.offset), range.length};
}

bool Table::post(std::size_t rank, RowRange range) {
  std::size_t base = my_rank_ * row_bytes_ + range.offset;
  fabric::WriteRequest request{.peer = members_[rank],
                               .local_region = region_,
                               .local_offset = base,
                               .remote_region = region_,
                               .remote_offset = base,
                               .length = range.length,
                               .context = 0,
                               .immediate = std::nullopt};
  Status status = transport_.write(request);
  // unavailable means the peer failed: the transport reports it as an event and the owner
  // freezes the row; nothing is pending for a dead peer.
  return status.code() != Code::would_block;
}

void Table::push(RowRange range) {
  SQUALL_ASSERT(range.offset + range.length <= row_bytes_, "push outside the row");
  for (std::size_t rank = 0; rank < members_.size(); ++rank) {
    if (rank == my_rank_ || frozen_[rank]) continue;
    std::optional<RowRange>& pending = pending_[rank];
    if (pending) {
      // Merge so the peer never sees this range before the one still waiting.
      std::size_t begin = std::min(pending->offset, range.offset);
      std::size_t end = std::max(pending->offset + pending->length, range.offset + range.length);
      *pending = RowRange{begin, end - begin};
    } else {
      pending = range;
    }
    if (post(rank, *pending)) pending.reset();
  }
}

bool Table::flush() {
  bool all_sent = true;
  for (std::size_t rank = 0; rank < members_.size(); ++rank) {
    std::optional<RowRange>& pending = pending_[rank];
    if (!pending || frozen_[rank]) continue;
    if (post(rank, *pending)) {
      pending.reset();
    } else {
      all_sent = false;
    }
  }
  return all_sent;
}

void Table::freeze(std::size_t rank) {
  SQUALL_ASSERT(rank != my_rank_, "a member never freezes its own row");
  frozen_.at(rank) = true;
  pending_.at(rank).reset();
}

}  // namespace squall::sst
