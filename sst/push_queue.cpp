#include "sst/push_queue.hpp"

#include <algorithm>
#include <cstring>

#include "common/log.hpp"

namespace squall::sst {

PushQueue::PushQueue(fabric::Transport& transport, fabric::RegionId region,
                     std::vector<NodeId> members, std::span<std::byte> staging,
                     std::uint64_t staging_offset)
    : transport_(transport),
      region_(region),
      members_(std::move(members)),
      staging_(staging),
      staging_offset_(staging_offset),
      peers_(members_.size()) {
  SQUALL_ASSERT(members_.size() <= kMaxMembers, "{} members exceed {}", members_.size(),
                kMaxMembers);
}

std::optional<std::uint64_t> PushQueue::allocate(std::span<const std::byte> bytes) {
  // A ring of contiguous chunks freed oldest first. `head` is the oldest live chunk's offset.
  std::uint64_t length = (bytes.size() + 7) / 8 * 8;
  std::uint64_t head = chunks_.empty() ? tail_ : chunks_.front().offset;
  if (chunks_.empty()) tail_ = head = 0;
  std::uint64_t offset = 0;
  if (tail_ >= head) {  // free: [tail, end) and [0, head)
    if (staging_.size() - tail_ >= length) {
      offset = tail_;
    } else if (head > length) {
      offset = 0;
    } else {
      return std::nullopt;
    }
  } else if (head - tail_ > length) {  // free: [tail, head); keep one byte so full != empty
    offset = tail_;
  } else {
    return std::nullopt;
  }
  std::memcpy(staging_.data() + offset, bytes.data(), bytes.size());
  chunks_.push_back({next_chunk_id_, offset, length, 0});
  tail_ = offset + length;
  used_bytes_ += length;
  return next_chunk_id_++;
}

PushQueue::Chunk& PushQueue::chunk(std::uint64_t id) {
  SQUALL_ASSERT(!chunks_.empty() && id >= chunks_.front().id &&
                    id - chunks_.front().id < chunks_.size(),
                "unknown staging chunk {}", id);
  return chunks_[id - chunks_.front().id];
}

void PushQueue::release(std::uint64_t id) {
  Chunk& released = chunk(id);
  SQUALL_ASSERT(released.outstanding > 0, "chunk {} released twice", id);
  --released.outstanding;
  while (!chunks_.empty() && chunks_.front().outstanding == 0) {
    used_bytes_ -= chunks_.front().length;
    chunks_.pop_front();
  }
}

bool PushQueue::post(std::size_t rank, Entry& entry) {
  if (!entry.chunk) {
    entry.chunk = allocate(*entry.bytes);
    if (!entry.chunk) return false;
    entry.bytes.reset();
    ++chunk(*entry.chunk).outstanding;
  }
  const Chunk& source = chunk(*entry.chunk);
  fabric::WriteRequest request{.peer = members_[rank],
                               .local_region = region_,
                               .local_offset = staging_offset_ + source.offset,
                               .remote_region = region_,
                               .remote_offset = entry.remote_offset,
                               .length = source.length,
                               .context = kContextTag | (source.id << 12) | rank,
                               .immediate = std::nullopt};
  Status status = transport_.write(request);
  if (status.code() == Code::would_block) return false;
  if (status.is_ok()) {
    peers_[rank].in_flight.push_back(source.id);
  } else {
    release(source.id);  // the peer failed; its failure arrives as an event
  }
  return true;
}

void PushQueue::enqueue(std::size_t rank, Entry entry) {
  Peer& peer = peers_[rank];
  if (entry.chunk) ++chunk(*entry.chunk).outstanding;
  peer.fifo.push_back(std::move(entry));
  if (peer.fifo.size() > kMaxPending) {
    logger("sst")->error("node {}: {} pushes waiting for queue space; giving up on it",
                         members_[rank], peer.fifo.size());
    drop(rank);
    if (on_overflow_) on_overflow_(rank);
  }
}

void PushQueue::push(std::span<const std::byte> bytes, std::uint64_t remote_offset,
                     const std::vector<std::size_t>& ranks) {
  if (ranks.empty()) return;
  std::optional<std::uint64_t> staged = allocate(bytes);
  std::shared_ptr<const Bytes> heap;
  if (!staged) heap = std::make_shared<const Bytes>(bytes.begin(), bytes.end());
  if (staged) ++chunk(*staged).outstanding;  // held while this loop runs
  for (std::size_t rank : ranks) {
    Entry entry{staged, heap, remote_offset};
    if (peers_[rank].fifo.empty()) {
      if (staged) ++chunk(*staged).outstanding;
      if (post(rank, entry)) continue;
      if (staged) --chunk(*staged).outstanding;  // enqueue takes its own reference
    }
    enqueue(rank, std::move(entry));
  }
  if (staged) release(*staged);
}

bool PushQueue::drain(std::size_t rank) {
  Peer& peer = peers_[rank];
  while (!peer.fifo.empty() && post(rank, peer.fifo.front())) peer.fifo.pop_front();
  return peer.fifo.empty();
}

bool PushQueue::flush() {
  bool all_posted = true;
  for (std::size_t rank = 0; rank < peers_.size(); ++rank) {
    if (!peers_[rank].dropped) all_posted = drain(rank) && all_posted;
  }
  return all_posted;
}

void PushQueue::on_write_completed(std::uint64_t context, const Status& status) {
  SQUALL_ASSERT((context & kContextTag) != 0, "not a push completion: {}", context);
  std::size_t rank = context & 0xfff;
  std::uint64_t id = (context & ~kContextTag) >> 12;
  if (rank >= peers_.size() || peers_[rank].dropped) return;  // released by drop()
  std::deque<std::uint64_t>& in_flight = peers_[rank].in_flight;
  auto it = std::find(in_flight.begin(), in_flight.end(), id);
  if (it == in_flight.end()) return;
  in_flight.erase(it);
  if (!status.is_ok()) {
    logger("sst")->debug("push to node {} failed: {}", members_[rank], status.to_string());
  }
  release(id);
}

void PushQueue::drop(std::size_t rank) {
  Peer& peer = peers_.at(rank);
  if (peer.dropped) return;
  peer.dropped = true;
  for (std::uint64_t id : peer.in_flight) release(id);
  for (const Entry& entry : peer.fifo) {
    if (entry.chunk) release(*entry.chunk);
  }
  peer.in_flight.clear();
  peer.fifo.clear();
}

}  // namespace squall::sst
