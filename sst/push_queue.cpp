#include "sst/push_queue.hpp"

#include <cstring>

#include "common/log.hpp"

namespace squall::sst {
namespace {

constexpr std::uint64_t kChunkAlignBytes = 8;
constexpr std::uint64_t kRankBits = 12;
static_assert((1ULL << kRankBits) >= PushQueue::kMaxMembers);

}  // namespace

PushQueue::PushQueue(fabric::Transport& transport, fabric::RegionId region,
                     std::vector<NodeId> members, std::span<std::byte> staging,
                     std::uint64_t staging_offset)
    : transport_(transport),
      region_(region),
      members_(std::move(members)),
      staging_(staging),
      staging_offset_(staging_offset),
      ring_bytes_(members_.empty() ? 0
                                   : staging.size() / members_.size() / kChunkAlignBytes *
                                         kChunkAlignBytes),
      peers_(members_.size()) {
  SQUALL_ASSERT(members_.size() <= kMaxMembers, "{} members exceed {}", members_.size(),
                kMaxMembers);
}

std::optional<std::uint64_t> PushQueue::allocate(std::size_t rank,
                                                 std::span<const std::byte> bytes) {
  // A ring of contiguous chunks freed oldest first; `head` is the oldest live chunk.
  Peer& peer = peers_[rank];
  std::uint64_t length = (bytes.size() + kChunkAlignBytes - 1) / kChunkAlignBytes *
                         kChunkAlignBytes;
  SQUALL_ASSERT(length <= ring_bytes_ / 2, "push of {} bytes exceeds half a {}-byte ring",
                length, ring_bytes_);
  if (peer.chunks.empty()) peer.tail = 0;
  std::uint64_t head = peer.chunks.empty() ? 0 : peer.chunks.front().offset;
  std::uint64_t offset = 0;
  if (peer.chunks.empty() || peer.tail > head) {  // free: [tail, end) and [0, head)
    if (ring_bytes_ - peer.tail >= length) {
      offset = peer.tail;
    } else if (head > length) {
      offset = 0;
    } else {
      return std::nullopt;
    }
  } else if (head - peer.tail > length) {  // free: [tail, head); full never looks empty
    offset = peer.tail;
  } else {
    return std::nullopt;
  }
  std::memcpy(staging_.data() + ring_base(rank) + offset, bytes.data(), bytes.size());
  peer.chunks.push_back({peer.next_chunk_id, offset, length, false});
  peer.tail = offset + length;
  return peer.next_chunk_id++;
}

PushQueue::Chunk* PushQueue::find_chunk(Peer& peer, std::uint64_t id) {
  if (peer.chunks.empty() || id < peer.chunks.front().id) return nullptr;
  std::uint64_t index = id - peer.chunks.front().id;
  return index < peer.chunks.size() ? &peer.chunks[index] : nullptr;
}

void PushQueue::reclaim(Peer& peer) {
  while (!peer.chunks.empty() && peer.chunks.front().completed) peer.chunks.pop_front();
}

bool PushQueue::post(std::size_t rank, Entry& entry) {
  if (!entry.chunk) {
    entry.chunk = allocate(rank, entry.bytes);
    if (!entry.chunk) return false;
    entry.bytes = Bytes();
  }
  Peer& peer = peers_[rank];
  Chunk* source = find_chunk(peer, *entry.chunk);
  SQUALL_ASSERT(source != nullptr, "staging chunk {} of rank {} vanished", *entry.chunk, rank);
  fabric::WriteRequest request{.peer = members_[rank],
                               .local_region = region_,
                               .local_offset = staging_offset_ + ring_base(rank) + source->offset,
                               .remote_region = region_,
                               .remote_offset = entry.remote_offset,
                               .length = source->length,
                               .context = kContextTag | (source->id << kRankBits) | rank,
                               .immediate = std::nullopt};
  Status status = transport_.write(request);
  if (status.code() == Code::would_block) return false;
  if (!status.is_ok()) {
    source->completed = true;  // the peer failed; its failure arrives as an event
    reclaim(peer);
  }
  return true;
}

void PushQueue::enqueue(std::size_t rank, Entry entry) {
  Peer& peer = peers_[rank];
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
  for (std::size_t rank : ranks) {
    Peer& peer = peers_.at(rank);
    if (peer.dropped) continue;
    // Only an entry that will be first in the FIFO may take ring space now: a later entry
    // holding ring space while an earlier one waits for space would deadlock the peer.
    Entry entry;
    entry.remote_offset = remote_offset;
    if (peer.fifo.empty()) entry.chunk = allocate(rank, bytes);
    if (!entry.chunk) entry.bytes.assign(bytes.begin(), bytes.end());
    if (peer.fifo.empty() && post(rank, entry)) continue;
    enqueue(rank, std::move(entry));
  }
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
  std::size_t rank = context & ((1ULL << kRankBits) - 1);
  std::uint64_t id = (context & ~kContextTag) >> kRankBits;
  if (rank >= peers_.size() || peers_[rank].dropped) return;  // released by drop()
  Peer& peer = peers_[rank];
  Chunk* chunk = find_chunk(peer, id);
  if (chunk == nullptr) return;
  if (!status.is_ok()) {
    logger("sst")->debug("push to node {} failed: {}", members_[rank], status.to_string());
  }
  chunk->completed = true;
  reclaim(peer);
}

void PushQueue::drop(std::size_t rank) {
  Peer& peer = peers_.at(rank);
  peer.dropped = true;
  peer.fifo.clear();
  peer.chunks.clear();
  peer.tail = 0;
}

}  // namespace squall::sst
