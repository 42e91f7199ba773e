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
      connected_(members_.size(), false),
      pushes_(transport, region, members_,
              memory.subspan(members_.size() * row_bytes_), members_.size() * row_bytes_) {
  SQUALL_ASSERT(my_rank_ < members_.size(), "rank {} outside {} members", my_rank_,
                members_.size());
  SQUALL_ASSERT(memory_.size() >= members_.size() * 3 * row_bytes_,
                "SST memory {} bytes < {} members x (1 row + 2 staging rows) of {} bytes",
                memory_.size(), members_.size(), row_bytes_);
  SQUALL_ASSERT(reinterpret_cast<std::uintptr_t>(memory_.data()) % kCacheLineBytes == 0,
                "SST memory must be cache-line aligned");
  std::fill(memory_.begin(), memory_.end(), std::byte{0});
  for (const FieldInfo& field : schema.fields()) field_ranges_.push_back(field.range);
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

std::vector<std::size_t> Table::targets() const {
  std::vector<std::size_t> ranks;
  for (std::size_t rank = 0; rank < members_.size(); ++rank) {
    if (rank != my_rank_ && !frozen_[rank] && connected_[rank]) ranks.push_back(rank);
  }
  return ranks;
}

void Table::push(RowRange range) {
  SQUALL_ASSERT(range.offset + range.length <= row_bytes_, "push outside the row");
  std::size_t base = my_rank_ * row_bytes_ + range.offset;
  pushes_.push(memory_.subspan(base, range.length), base, targets());
}

bool Table::flush() { return pushes_.flush(); }

void Table::peer_connected(NodeId peer) {
  std::optional<std::size_t> rank = rank_of(peer);
  if (!rank || *rank == my_rank_ || frozen_[*rank]) return;
  connected_[*rank] = true;
  std::vector<std::size_t> target{*rank};
  for (const RowRange& range : field_ranges_) {
    std::size_t base = my_rank_ * row_bytes_ + range.offset;
    pushes_.push(memory_.subspan(base, range.length), base, target);
  }
}

void Table::freeze(std::size_t rank) {
  SQUALL_ASSERT(rank != my_rank_, "a member never freezes its own row");
  frozen_.at(rank) = true;
  pushes_.drop(rank);
}

}  // namespace squall::sst
