// The shared-state table: one row per member, each row written only by its member.
//
// Every member holds the whole table in `memory` (registered with the transport as `region`
// before any peer connects). A member changes fields of its own row locally, then push()es a
// byte range of the row into the same offset of every other non-frozen member's copy by
// one-sided writes. Each push is a snapshot taken at push time, posted in order per peer and
// never dropped (sst/push_queue.hpp explains why and how). The memory behind the table holds
// the rows followed by the push staging area; memory_bytes() says how much to allocate.
//
// Reads of 8-byte fields use atomic loads because peers write them concurrently in real mode.
// Not thread-safe: owned by the node's progress thread.
#pragma once

#include <atomic>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "common/ids.hpp"
#include "fabric/transport.hpp"
#include "sst/push_queue.hpp"
#include "sst/schema.hpp"

namespace squall::sst {

class Table {
 public:
  using OverflowCallback = PushQueue::OverflowCallback;
  static constexpr std::size_t kDefaultStagingRowsPerPeer = 4;

  // Bytes of registered memory a table needs: the rows, then a staging ring of
  // `staging_rows_per_peer` rows (at least 2) for each member.
  static std::size_t memory_bytes(const Schema& schema, std::size_t members,
                                  std::size_t staging_rows_per_peer = kDefaultStagingRowsPerPeer) {
    return members * (1 + staging_rows_per_peer) * schema.row_bytes();
  }

  // `members[rank]` is the node owning row `rank`; `my_rank` is ours. `memory` (registered as
  // `region`, cache-line aligned) holds the rows, then staging of at least two rows per member
  // (memory_bytes()); it is zeroed.
  Table(const Schema& schema, std::vector<NodeId> members, std::size_t my_rank,
        std::span<std::byte> memory, fabric::Transport& transport, fabric::RegionId region);

  std::size_t size() const { return members_.size(); }
  std::size_t my_rank() const { return my_rank_; }
  NodeId member(std::size_t rank) const { return members_.at(rank); }
  std::optional<std::size_t> rank_of(NodeId node) const;
  std::size_t row_bytes() const { return row_bytes_; }

  template <typename T>
  T read(std::size_t row, Scalar<T> field) const {
    return load<T>(address(row, field.offset));
  }
  template <typename T>
  T read(std::size_t row, Array<T> field, std::size_t index) const {
    return load<T>(address(row, field.element_range(index).offset));
  }
  // Writes a field of our own row locally; push() makes it visible to peers.
  template <typename T>
  void write(Scalar<T> field, T value) {
    store(address(my_rank_, field.offset), value);
  }
  template <typename T>
  void write(Array<T> field, std::size_t index, T value) {
    store(address(my_rank_, field.element_range(index).offset), value);
  }

  // Raw bytes of a row range (for slots and blobs; no atomicity beyond 8-byte words).
  std::span<const std::byte> row_span(std::size_t row, RowRange range) const;
  // Raw bytes of a range of our own row, to fill before push().
  std::span<std::byte> mutable_row_span(RowRange range);

  // Pushes a range of our row to every non-frozen peer (in order per peer).
  void push(RowRange range);
  void push_row() { push({0, row_bytes_}); }
  // Retries pushes that found the transport's queue full. Returns true if none is pending.
  bool flush();

  // The transport connected `peer`: our whole row is pushed to it, one write per field in
  // declaration order (so declare data fields before the counters that publish them). Until
  // then pushes to it are skipped.
  void peer_connected(NodeId peer);
  bool connected(std::size_t rank) const { return connected_.at(rank); }
  // Called (once per rank) when a peer's pending FIFO overflows.
  void set_overflow_callback(OverflowCallback callback) {
    pushes_.set_overflow_callback(std::move(callback));
  }
  std::size_t pending_pushes(std::size_t rank) const { return pushes_.pending(rank); }
  // Route write_completed events whose context has PushQueue::kContextTag here.
  void on_write_completed(std::uint64_t context, const Status& status) {
    pushes_.on_write_completed(context, status);
  }

  // Stops reading from and writing to `rank`'s row (it is suspected or gone).
  void freeze(std::size_t rank);
  bool frozen(std::size_t rank) const { return frozen_.at(rank); }

 private:
  std::byte* address(std::size_t row, std::size_t offset) const;
  std::vector<std::size_t> targets() const;

  template <typename T>
  static T load(const std::byte* where) {
    if constexpr (sizeof(T) == 8 && std::is_integral_v<T>) {
      return std::atomic_ref<const T>(*reinterpret_cast<const T*>(where))
          .load(std::memory_order_acquire);
    } else {
      T value;
      std::memcpy(&value, where, sizeof(T));
      return value;
    }
  }
  template <typename T>
  static void store(std::byte* where, T value) {
    if constexpr (sizeof(T) == 8 && std::is_integral_v<T>) {
      std::atomic_ref<T>(*reinterpret_cast<T*>(where)).store(value, std::memory_order_release);
    } else {
      std::memcpy(where, &value, sizeof(T));
    }
  }

  std::vector<NodeId> members_;
  std::vector<RowRange> field_ranges_;  // in declaration order
  std::size_t my_rank_;
  std::size_t row_bytes_;
  std::span<std::byte> memory_;
  fabric::Transport& transport_;
  fabric::RegionId region_;
  std::vector<bool> frozen_;
  std::vector<bool> connected_;
  PushQueue pushes_;
};

}  // namespace squall::sst
