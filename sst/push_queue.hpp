// PushQueue: posts snapshots of row ranges to peers, in order per peer, never dropped.
//
// Why snapshots: an RDMA write reads its source when the NIC (or the tcp provider) processes
// it, possibly long after it was posted. If the source were the live row, a counter push still
// queued could carry a value written later, and a peer could see the counter before the slots
// it publishes. So every push copies its bytes, at push time, into a staging ring and writes
// are posted from there. Each peer has its own ring inside the staging area (part of the
// table's registered region), so a peer whose writes stop completing (a stopped process)
// fills only its own ring and never holds up pushes to healthy peers. A chunk is reused once
// its write completed (writes are signalled; the owner routes write_completed events whose
// context has kContextTag to on_write_completed()).
//
// When the transport's queue or the peer's ring is full, the push waits in the peer's FIFO
// (snapshotted on the heap if there was no ring space) and flush() posts it later, still in
// push order. More than kMaxPending entries for one peer means it has not drained for a long
// time: the overflow callback reports it (the owner suspects that member).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "fabric/transport.hpp"

namespace squall::sst {

class PushQueue {
 public:
  static constexpr std::uint64_t kContextTag = 1ULL << 63;
  static constexpr std::size_t kMaxPending = 4096;
  static constexpr std::size_t kMaxMembers = 4096;
  using OverflowCallback = std::function<void(std::size_t rank)>;

  // `staging` lies inside `region` at `staging_offset`; it is split evenly into one ring per
  // member (our own rank's ring stays unused, which keeps the layout a function of the rank
  // count only). Every push must fit in one ring.
  PushQueue(fabric::Transport& transport, fabric::RegionId region, std::vector<NodeId> members,
            std::span<std::byte> staging, std::uint64_t staging_offset);

  // Snapshots `bytes` and writes them to `remote_offset` of `region` at each rank in `ranks`.
  void push(std::span<const std::byte> bytes, std::uint64_t remote_offset,
            const std::vector<std::size_t>& ranks);
  // Posts what waits; true when nothing waits.
  bool flush();
  void on_write_completed(std::uint64_t context, const Status& status);
  // Forgets everything for `rank` (frozen/failed) and releases its ring.
  void drop(std::size_t rank);

  std::size_t pending(std::size_t rank) const { return peers_.at(rank).fifo.size(); }
  std::size_t ring_bytes() const { return ring_bytes_; }
  void set_overflow_callback(OverflowCallback callback) { on_overflow_ = std::move(callback); }

 private:
  struct Chunk {
    std::uint64_t id = 0;
    std::uint64_t offset = 0;  // inside the peer's ring
    std::uint64_t length = 0;
    bool completed = false;
  };
  struct Entry {
    std::optional<std::uint64_t> chunk;  // a ring snapshot, or
    Bytes bytes;                         // a heap snapshot (no ring space at push time)
    std::uint64_t remote_offset = 0;
  };
  struct Peer {
    std::deque<Entry> fifo;
    std::deque<Chunk> chunks;  // allocation order; freed oldest first once completed
    std::uint64_t next_chunk_id = 0;
    std::uint64_t tail = 0;    // next free offset in the ring
    bool dropped = false;
  };

  std::uint64_t ring_base(std::size_t rank) const { return rank * ring_bytes_; }
  std::optional<std::uint64_t> allocate(std::size_t rank, std::span<const std::byte> bytes);
  Chunk* find_chunk(Peer& peer, std::uint64_t id);
  void reclaim(Peer& peer);
  // Tries to post the entry to `rank`; false if the transport or the ring is full.
  bool post(std::size_t rank, Entry& entry);
  bool drain(std::size_t rank);
  void enqueue(std::size_t rank, Entry entry);

  fabric::Transport& transport_;
  fabric::RegionId region_;
  std::vector<NodeId> members_;
  std::span<std::byte> staging_;
  std::uint64_t staging_offset_;
  std::uint64_t ring_bytes_;
  std::vector<Peer> peers_;
  OverflowCallback on_overflow_;
};

}  // namespace squall::sst
