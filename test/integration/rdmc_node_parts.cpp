// rdmc_node: message payloads, lazily mapped regions and delivery checks.
#include <cstring>

#include <fmt/format.h>

#include "rdmc_node.hpp"
#include "sst_node_io.hpp"

namespace squall::integration {

bool RdmcNodeOptions::is_sender(std::uint32_t node) const {
  return senders.empty() || std::find(senders.begin(), senders.end(), node) != senders.end();
}

const Bytes& Payloads::body(std::uint32_t sender) {
  auto found = bodies_.find(sender);
  if (found != bodies_.end()) return found->second;
  Bytes bytes(options_.size_max_bytes);
  fill_message(options_.seed, sender, 0, bytes);
  return bodies_.emplace(sender, std::move(bytes)).first->second;
}

std::uint64_t Payloads::stamp(std::uint32_t sender, std::uint64_t index, int end) const {
  return mix64(options_.seed ^ mix64((std::uint64_t{sender} << 40) ^ (index << 1) ^
                                     static_cast<std::uint64_t>(end)));
}

void Payloads::build(std::uint32_t sender, std::uint64_t index, std::span<std::byte> out) {
  if (!stamped(out.size())) {
    fill_message(options_.seed, sender, index, out);
    return;
  }
  std::memcpy(out.data(), body(sender).data(), out.size());
  std::uint64_t head = stamp(sender, index, 0);
  std::uint64_t tail = stamp(sender, index, 1);
  std::memcpy(out.data(), &head, 8);
  std::memcpy(out.data() + out.size() - 8, &tail, 8);
}

bool Payloads::matches(std::uint32_t sender, std::uint64_t index,
                       std::span<const std::byte> bytes) {
  std::size_t expected = size(sender, index);
  if (!stamped(expected)) return message_matches(options_.seed, sender, index, expected, bytes);
  if (bytes.size() != expected) return false;
  std::uint64_t head = stamp(sender, index, 0);
  std::uint64_t tail = stamp(sender, index, 1);
  return std::memcmp(bytes.data(), &head, 8) == 0 &&
         std::memcmp(bytes.data() + expected - 8, &tail, 8) == 0 &&
         std::memcmp(bytes.data() + 8, body(sender).data() + 8, expected - 16) == 0;
}

MappedRegion::MappedRegion(std::size_t bytes) : bytes_(bytes) {
  void* memory = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  SQUALL_ASSERT(memory != MAP_FAILED, "mmap of {} bytes failed", bytes);
  data_ = static_cast<std::byte*>(memory);
}

MappedRegion::~MappedRegion() { ::munmap(data_, bytes_); }

void MappedRegion::prefault(std::size_t offset, std::size_t length) {
  SQUALL_ASSERT(offset + length <= bytes_, "prefault outside the region");
  std::memset(data_ + offset, 0, length);
}

void RdmcDeliveries::check_next(std::size_t rank, std::uint64_t index) const {
  std::uint32_t sender = options_.members.at(rank);
  if (!options_.is_sender(sender)) {
    fail(options_.id, fmt::format("message from non-sender {}", sender));
  }
  if (index != delivered_[rank]) {
    fail(options_.id, fmt::format("from {}: got message {}, expected {}", sender, index,
                                  delivered_[rank]));
  }
  if (index >= options_.messages) {
    fail(options_.id, fmt::format("from {}: extra message {}", sender, index));
  }
}

void RdmcDeliveries::deliver(std::size_t rank, std::uint64_t index,
                             std::span<const std::byte> payload) {
  check_next(rank, index);
  std::uint32_t sender = options_.members[rank];
  if (!payloads_.matches(sender, index, payload)) {
    fail(options_.id, fmt::format("from {}: message {} ({} bytes, expected {}) is corrupt",
                                  sender, index, payload.size(), payloads_.size(sender, index)));
  }
  checksums_[rank].add(index, payload);
  ++delivered_[rank];
  bytes_ += payload.size();
}

nlohmann::json RdmcDeliveries::result() const {
  nlohmann::json delivered = nlohmann::json::object();
  nlohmann::json checksums = nlohmann::json::object();
  for (std::size_t rank = 0; rank < options_.members.size(); ++rank) {
    std::string id = std::to_string(options_.members[rank]);
    delivered[id] = delivered_[rank];
    checksums[id] = checksums_[rank].value();
  }
  return {{"delivered", delivered}, {"checksums", checksums}, {"bytes_delivered", bytes_}};
}

}  // namespace squall::integration
