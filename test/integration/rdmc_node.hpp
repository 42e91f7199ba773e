// rdmc_node internals: one member of a multi-process RDMC group over LibfabricTransport.
// The program (rdmc_node.cpp) is run by test_rdmc_libfabric and bench_rdmc and speaks the
// line protocol of sst_node_io.hpp. docs/benchmarks.md describes the modes and output.
#pragma once

#include <sys/mman.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fabric/transport.hpp"
#include "rdmc/group.hpp"
#include "sst_messages.hpp"

namespace squall::integration {

struct RdmcNodeOptions {
  std::uint32_t id = 0;
  std::vector<std::uint32_t> members;  // node ids in rank order
  std::vector<std::uint32_t> ports;    // bootstrap ports in rank order; empty: port exchange
  std::string mode = "rdmc";           // rdmc | p2p (sequential RMA writes to each receiver)
  std::string algorithm = "binomial_pipeline";
  std::uint64_t block_bytes = 256 << 10;
  std::vector<std::uint32_t> senders;  // empty: every member
  std::uint64_t messages = 8;          // per sender
  std::uint64_t size_min_bytes = 1;
  std::uint64_t size_max_bytes = 1 << 20;
  std::uint64_t window = 2;            // messages in flight per sender
  std::string verify = "full";         // full: every byte derived; stamp: see Payloads
  std::uint64_t seed = 1;
  std::string start = "go";
  std::string idle = "yield";
  std::uint64_t safety_timeout_ms = 300'000;
  std::uint64_t connect_timeout_ms = 30'000;
  std::uint64_t progress_ms = 0;
  std::uint64_t write_depth = 8;       // p2p: writes in flight
  std::string log_level = "warn";

  bool is_sender(std::uint32_t node) const;
};

constexpr fabric::RegionId kRdmcRegion = 3;
constexpr fabric::RegionId kP2pRegion = 4;

// Message bytes and their checks.
//   full   every byte derived from (seed, sender, index) (sst_messages.hpp); the driver can
//          recompute each stream's checksum.
//   stamp  for benchmarks, where deriving hundreds of MiB per message would cost more than
//          moving them: the body is derived once per sender (index 0's bytes) and the first
//          and last 8 bytes carry a stamp of (sender, index). The whole message is still
//          compared byte for byte on delivery. Messages under 16 bytes use full.
class Payloads {
 public:
  explicit Payloads(const RdmcNodeOptions& options) : options_(options) {}

  std::size_t size(std::uint32_t sender, std::uint64_t index) const {
    return message_size(options_.seed, sender, index, options_.size_min_bytes,
                        options_.size_max_bytes);
  }
  void build(std::uint32_t sender, std::uint64_t index, std::span<std::byte> out);
  // Derives the stamp-mode body of `sender` now, outside any measured interval.
  void prepare(std::uint32_t sender) {
    if (options_.verify == "stamp") body(sender);
  }
  bool matches(std::uint32_t sender, std::uint64_t index, std::span<const std::byte> bytes);

 private:
  bool stamped(std::size_t size) const { return options_.verify == "stamp" && size >= 16; }
  const Bytes& body(std::uint32_t sender);
  std::uint64_t stamp(std::uint32_t sender, std::uint64_t index, int end) const;

  const RdmcNodeOptions& options_;
  std::map<std::uint32_t, Bytes> bodies_;
};

// Anonymous memory mapped lazily: a region sized for every member's slots costs only the
// pages that messages actually touch.
class MappedRegion {
 public:
  explicit MappedRegion(std::size_t bytes);
  ~MappedRegion();
  MappedRegion(const MappedRegion&) = delete;
  MappedRegion& operator=(const MappedRegion&) = delete;
  std::span<std::byte> span() { return {data_, bytes_}; }
  // Touches every page of [offset, offset + length) so no page fault lands in a measurement.
  void prefault(std::size_t offset, std::size_t length);

 private:
  std::byte* data_ = nullptr;
  std::size_t bytes_ = 0;
};

// Per-sender delivery bookkeeping: in order, exactly once, intact.
class RdmcDeliveries {
 public:
  RdmcDeliveries(const RdmcNodeOptions& options, Payloads& payloads)
      : options_(options), payloads_(payloads), delivered_(options.members.size(), 0),
        checksums_(options.members.size()) {}

  // A message of `rank`; the sender records its own messages as it hands them over.
  void deliver(std::size_t rank, std::uint64_t index, std::span<const std::byte> payload);
  std::uint64_t delivered(std::size_t rank) const { return delivered_[rank]; }
  std::uint64_t bytes() const { return bytes_; }
  nlohmann::json result() const;

 private:
  void check_next(std::size_t rank, std::uint64_t index) const;

  const RdmcNodeOptions& options_;
  Payloads& payloads_;
  std::vector<std::uint64_t> delivered_;
  std::vector<StreamChecksum> checksums_;
  std::uint64_t bytes_ = 0;
};

// A workload of the progress loop. Created once every peer is connected; it receives every
// transport event from then on and sends only after GO.
class RdmcWork {
 public:
  virtual ~RdmcWork() = default;
  virtual void on_event(const fabric::Event& event) = 0;
  // Sends what it may; true if anything happened.
  virtual bool step() = 0;
  virtual bool done() const = 0;
  virtual nlohmann::json result() const = 0;
  virtual nlohmann::json progress() const = 0;
};

// Bytes of the receive region of `options.mode`: members x window slots of size_max_bytes
// (rdmc: rounded up to whole blocks). Sender s's slots are the s-th members' share.
std::size_t rdmc_region_bytes(const RdmcNodeOptions& options);

std::unique_ptr<RdmcWork> make_rdmc_work(const RdmcNodeOptions& options,
                                         fabric::Transport& transport,
                                         std::span<std::byte> region, Payloads& payloads);

}  // namespace squall::integration
