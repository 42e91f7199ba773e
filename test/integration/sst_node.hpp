// sst_node internals: one member of a multi-process SST group over LibfabricTransport, with
// the shared-state table, the failure detector and SMC driven by a real progress loop.
// The program (sst_node.cpp) is run by test_sst_libfabric and bench_sst; it speaks the line
// protocol of sst_node_io.hpp. docs/benchmarks.md describes the modes and output.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fabric/libfabric.hpp"
#include "sst/failure_detector.hpp"
#include "sst/smc.hpp"
#include "sst_messages.hpp"

namespace squall::integration {

struct NodeOptions {
  std::uint32_t id = 0;
  std::vector<std::uint32_t> members;   // node ids in rank order
  std::vector<std::uint32_t> ports;     // bootstrap ports in rank order; empty: port exchange
  std::string mode = "smc";             // smc | p2p | idle | link
  std::vector<std::uint32_t> senders;   // ids that send (smc, p2p); empty: every member
  std::uint64_t messages = 1000;        // per sender
  std::uint64_t size_min_bytes = 0;     // message sizes are uniform in [min, max]
  std::uint64_t size_max_bytes = 64;    // also the SMC slot payload
  std::uint64_t window = 16;            // SMC slots per sender
  std::uint64_t heartbeat_ms = 10;
  std::uint64_t failure_timeout_ms = 1000;
  std::uint64_t seed = 1;
  std::string start = "go";             // go: wait for GO on stdin; now: start when connected
  std::string idle = "yield";           // spin | yield | sleep: what an idle loop turn does
  std::uint64_t safety_timeout_ms = 120'000;  // no result by then: error, never hang
  std::uint64_t connect_timeout_ms = 30'000;
  std::uint64_t progress_ms = 0;        // >0: a progress event this often
  std::uint64_t link_bytes = 256ULL << 20;   // link mode: bytes to write
  std::uint64_t write_bytes = 1ULL << 20;    // link mode: bytes per write
  std::uint64_t write_depth = 8;             // link mode: writes in flight
  std::string log_level = "warn";

  bool is_sender(std::uint32_t node) const;
};

constexpr fabric::RegionId kSstRegion = 1;
constexpr fabric::RegionId kLinkRegion = 2;

struct AlignedDelete {
  void operator()(std::byte* memory) const {
    ::operator delete[](memory, std::align_val_t{sst::kCacheLineBytes});
  }
};
using AlignedBuffer = std::unique_ptr<std::byte[], AlignedDelete>;
AlignedBuffer allocate_aligned(std::size_t bytes);

// What the workloads see of the SST member.
class Member {
 public:
  Member(const NodeOptions& options, fabric::Transport& transport);

  // Routes transport events to the table and detector; true when the event was theirs.
  bool handle(const fabric::Event& event);
  // One turn of the SST side: deliver, push, tick. Returns messages delivered.
  std::size_t step(std::uint64_t now_us);
  // The failure detector runs from now on (at GO, so every member starts at about the same
  // time and nobody is suspected for a slow start).
  void start_ticking() { ticking_ = true; }
  // Before GO: only retries pending pushes (deliveries wait for the workload).
  void flush() { table_->flush(); }

  const NodeOptions& options() const { return options_; }
  std::uint32_t self() const { return options_.id; }
  std::size_t rank() const { return rank_; }
  std::uint32_t id_of(std::size_t rank) const { return options_.members.at(rank); }
  std::size_t size() const { return options_.members.size(); }
  sst::Table& table() { return *table_; }
  sst::Smc& smc() { return *smc_; }
  const sst::FailureDetector& detector() const { return *detector_; }
  bool suspected(std::size_t rank) const { return suspects_.contains(rank); }
  // The SMC deliver hook of the smc workload.
  void set_deliver(sst::Smc::DeliverCallback deliver) { deliver_ = std::move(deliver); }

 private:
  void on_suspect(std::size_t rank, const std::string& reason);

  NodeOptions options_;
  std::size_t rank_ = 0;
  sst::Schema schema_;
  sst::FailureDetectorFields detector_fields_;
  sst::SmcFields smc_fields_;
  AlignedBuffer memory_;
  std::unique_ptr<sst::Table> table_;
  std::unique_ptr<sst::FailureDetector> detector_;
  std::unique_ptr<sst::Smc> smc_;
  sst::Smc::DeliverCallback deliver_;
  std::set<std::size_t> suspects_;
  bool ticking_ = false;
};

// A workload runs inside the progress loop after GO.
class Workload {
 public:
  virtual ~Workload() = default;
  // Transport events the member did not take (messages, link write completions).
  virtual void on_event(const fabric::Event& event) = 0;
  // Does some work; true if anything happened.
  virtual bool step() = 0;
  virtual bool done() const = 0;
  // Fields of the result event.
  virtual nlohmann::json result() const = 0;
  // Fields of a progress event.
  virtual nlohmann::json progress() const = 0;
};

// Registers the link region (link mode) before any peer connects.
void register_workload_regions(const NodeOptions& options, fabric::Transport& transport,
                               AlignedBuffer& link_memory);

std::unique_ptr<Workload> make_workload(Member& member, fabric::Transport& transport,
                                        std::byte* link_memory);

}  // namespace squall::integration
