// SimNetwork: a deterministic, in-process, fault-injecting fabric for simulation tests.
//
// The world of one simulation run: simulated time (a ManualClock, µs), one seeded PRNG, an
// event queue ordered by (time, insertion sequence), the directed links between nodes, and a
// trace of everything delivered. SimTransport endpoints (fabric/sim_transport.hpp) post
// operations onto links; step() executes the next scheduled event and nothing happens
// otherwise. Same options + same seed + same sequence of calls = the same run, byte for byte
// (check with trace_hash()). The model, each fault and how to replay a seed are described in
// docs/simulation.md.
//
// Single-threaded. Every method may be called from inside a timer callback or while a
// harness reacts to a delivered event.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/status.hpp"
#include "fabric/sim_detail.hpp"
#include "fabric/sim_random.hpp"
#include "fabric/sim_transport.hpp"

namespace squall::fabric {

// What the peers of a crashed node observe.
enum class CrashDetection : std::uint8_t {
  // A TCP connection reset: each peer connected (or connecting) to it gets, after a random
  // delay in [detect_min_us, detect_max_us], write_completed errors for its outstanding
  // signalled writes and then one peer_failed (unavailable).
  reset,
  // A black hole: the transport reports nothing; writes and sends are accepted and vanish,
  // signalled writes never complete. Detection is left to the protocol (heartbeats), which
  // then calls remove_peer().
  silent,
};

struct SimOptions {
  std::uint64_t seed = 1;
  // Simulated time at construction (monotonic and wall clock both start here).
  std::uint64_t start_us = 1'700'000'000'000'000ULL;
  // One-way latency of every packet, uniform in [min_delay_us, max_delay_us].
  std::uint64_t min_delay_us = 2;
  std::uint64_t max_delay_us = 50;
  // Link bandwidth: a packet of n bytes takes n / bytes_per_us more µs. 0 = unlimited.
  std::uint64_t bytes_per_us = 0;
  // Probability (per million packets) of an extra delay_spike_us on one packet; because links
  // are FIFO it also delays everything queued behind it (head-of-line blocking).
  std::uint32_t delay_spike_per_million = 0;
  std::uint64_t delay_spike_us = 5'000;
  // Probability (per million writes of >= 16 bytes) that a write lands in two pieces split at
  // an 8-byte-aligned region offset, at two different steps, in random piece order; the
  // remote_write event and completion follow the second piece.
  std::uint32_t torn_write_per_million = 0;
  // Probability (per million writes) that a write reads its source bytes when it lands rather
  // than when it was posted: RDMA reads the source at some point before the completion, so a
  // protocol must not change a source range while a write of it is in flight.
  std::uint32_t late_read_per_million = 0;
  std::size_t max_message_bytes = 64 * 1024;
  // Writes + messages queued on one directed link and not yet delivered; more: would_block.
  std::size_t send_queue_depth = 256;
  CrashDetection crash_detection = CrashDetection::reset;
  std::uint64_t detect_min_us = 200;
  std::uint64_t detect_max_us = 2'000;
  // A partitioned link holds its traffic. If the cut lasts this long, both ends fail the
  // connection (peer_failed, timed_out) and the held traffic is dropped. 0 = hold forever.
  std::uint64_t partition_timeout_us = 0;
  // Keep the trace as text lines as well as the hash (costs memory and time).
  bool record_trace = false;
  std::size_t max_trace_lines = 1'000'000;  // later lines are only hashed

  // Checks ranges and relations; the constructor asserts it.
  Status validate() const;
};

struct SimStats {
  std::uint64_t steps = 0;                 // events executed by step()
  std::uint64_t writes_delivered = 0;      // writes applied (a torn write counts once)
  std::uint64_t messages_delivered = 0;
  std::uint64_t completions_delivered = 0; // successful write_completed events
  std::uint64_t bytes_delivered = 0;       // write and message payload bytes
  std::uint64_t packets_dropped = 0;       // discarded by crashes, failed links, partitions
  std::uint64_t timers_fired = 0;
  std::uint64_t peer_failures = 0;         // peer_failed events produced
};

// Identifies a scheduled timer; 0 is never a valid id.
using TimerId = std::uint64_t;
using TimerCallback = std::function<void()>;

class SimNetwork {
 public:
  explicit SimNetwork(SimOptions options = {});
  ~SimNetwork();
  SimNetwork(const SimNetwork&) = delete;
  SimNetwork& operator=(const SimNetwork&) = delete;

  // ---- Nodes ----
  // Creates the endpoint of node `id` (asserts it is new). The reference stays valid for the
  // network's lifetime. Nodes may be added at any time.
  SimTransport& add_node(NodeId id);
  SimTransport& node(NodeId id);
  bool has_node(NodeId id) const;
  // Node ids in the order they were added.
  std::vector<NodeId> nodes() const;

  // ---- Time and randomness ----
  ManualClock& clock() { return clock_; }
  std::uint64_t now_us() const { return clock_.monotonic_us(); }
  // now_us() - options.start_us.
  std::uint64_t elapsed_us() const { return now_us() - options_.start_us; }
  // The run's only PRNG; harnesses draw from it too so one seed decides everything.
  SimRandom& random() { return random_; }
  const SimOptions& options() const { return options_; }

  // ---- Running ----
  // Executes the next scheduled event, first advancing the clock to its time (never
  // backwards), and returns true; false when nothing is scheduled. Scheduled events that turn
  // out to do nothing (a failure detection for a connection already failed, a timer of a
  // crashed owner) are consumed on the way; the clock may then have moved to their time.
  bool step();
  // Executes every event scheduled at or before `time_us`, then sets the clock to `time_us`
  // (if later than now). Returns the number of events executed.
  std::uint64_t run_until(std::uint64_t time_us);
  std::uint64_t run_for(std::uint64_t duration_us) { return run_until(now_us() + duration_us); }
  // Steps until nothing is scheduled (true) or `max_steps` events ran (false). Traffic held
  // by a pause or partition is not scheduled: it waits for resume()/heal().
  bool run_until_idle(std::uint64_t max_steps);
  // Time of the next scheduled event, if any (it may turn out to do nothing, see step()).
  std::optional<std::uint64_t> next_event_us();

  // ---- Timers ----
  // Runs `callback` at `time_us` (clamped to now). With an owner, the timer is the owner's
  // process: dropped if the owner crashes (or is restarted) before it fires, held while the
  // owner is paused and fired at resume, in order.
  TimerId schedule_at(std::uint64_t time_us, TimerCallback callback,
                      std::optional<NodeId> owner = std::nullopt);
  TimerId schedule_after(std::uint64_t delay_us, TimerCallback callback,
                         std::optional<NodeId> owner = std::nullopt);
  // True if the timer was pending and is now cancelled.
  bool cancel(TimerId timer);

  // ---- Faults ----
  // Stops `id` (kill -9): it polls nothing and receives nothing; its regions are never
  // written again; traffic queued towards it is dropped; of the traffic it had queued
  // towards each peer a random prefix still arrives (bytes already on the wire). Its peers
  // learn of it according to `detection`.
  void crash(NodeId id) { crash(id, options_.crash_detection); }
  void crash(NodeId id, CrashDetection detection);
  // Brings a crashed node back with a fresh endpoint state (no regions, no peers, empty
  // inbox; incarnation + 1). The harness re-registers regions and re-adds peers. Packets of
  // the old incarnation still in flight are never delivered to the new one.
  void restart(NodeId id);
  // SIGSTOP / SIGCONT: while paused, nothing is delivered to or from the node (traffic is held
  // in order), its owned timers are held, and it polls nothing. Connections stay up. On
  // resume, held traffic departs again with fresh delays, still in per-link order.
  void pause(NodeId id);
  void resume(NodeId id);
  // Cuts both directions between a and b (see SimOptions::partition_timeout_us). Idempotent.
  void partition(NodeId a, NodeId b);
  void heal(NodeId a, NodeId b);
  // Cuts every pair of nodes that sit in different groups; pairs involving a node listed in
  // no group are untouched.
  void partition_groups(std::span<const std::vector<NodeId>> groups);
  // Cuts `id` from every other node.
  void isolate(NodeId id);
  void heal_all();
  bool is_crashed(NodeId id) const;
  bool is_paused(NodeId id) const;
  bool is_running(NodeId id) const;
  bool is_partitioned(NodeId a, NodeId b) const;

  // ---- Trace ----
  // A 64-bit digest of every delivered operation, fault and timer, with its time and content
  // (payload bytes included). Equal runs give equal hashes.
  std::uint64_t trace_hash() const { return trace_hash_; }
  // The same as text lines (only when options.record_trace; capped at max_trace_lines).
  const std::vector<std::string>& trace_lines() const { return trace_lines_; }
  std::string trace_text() const;
  // Appends a harness-defined record (e.g. "node 2 delivered seq 7") to the trace.
  void trace_note(std::string_view note);
  const SimStats& stats() const { return stats_; }

 private:
  friend class SimTransport;
  using Link = sim_detail::Link;
  using Packet = sim_detail::Packet;

  std::uint32_t index_of(NodeId id) const;
  SimTransport& at(std::uint32_t index) { return *nodes_[index]; }
  Link& link(std::uint32_t source, std::uint32_t target) {
    return links_[link_index_[source][target]];
  }
  bool blocked(const Link& link) const;

  // Posting (called by SimTransport).
  void post_hello(std::uint32_t source, std::uint32_t target);
  void post_close(std::uint32_t source, std::uint32_t target, std::uint32_t target_incarnation);
  void post_write(std::uint32_t source, std::uint32_t target, const WriteRequest& request,
                  std::uint32_t target_incarnation, std::span<const std::byte> bytes);
  void post_message(std::uint32_t source, std::uint32_t target,
                    std::uint32_t target_incarnation, std::span<const std::byte> bytes);
  void post_ack(std::uint32_t source, std::uint32_t target, std::uint32_t target_incarnation,
                std::uint64_t context);
  void enqueue(Link& link, Packet packet, std::span<const std::byte> payload);
  void decide_torn(Packet& packet);
  std::uint64_t draw_delay_us(std::uint64_t payload_bytes);

  // Scheduling.
  void push_entry(std::uint64_t time_us, sim_detail::EntryKind kind, std::uint32_t index,
                  std::uint32_t generation);
  void ensure_wakeup(Link& link);
  bool entry_live(const sim_detail::Entry& entry);
  bool execute(const sim_detail::Entry& entry);
  bool step_before(std::uint64_t limit_us);
  std::uint32_t allocate_task();
  void free_task(std::uint32_t index);
  void schedule_task(std::uint32_t index, std::uint64_t time_us);
  bool run_task(std::uint32_t index);
  bool run_timer(std::uint32_t index);

  // Delivery (sim_network_deliver.cpp).
  bool deliver_head(std::uint32_t link_index);
  void pop_head(Link& link);
  void deliver_hello(Link& link, Packet packet);
  void deliver_close(Link& link, Packet packet);
  bool deliver_write(Link& link, Packet& packet);
  void finish_write(Link& link, const Packet& packet, std::span<const std::byte> bytes);
  void deliver_message(Link& link, const Packet& packet);
  void deliver_ack(Link& link, const Packet& packet);
  bool accepts(std::uint32_t target, std::uint32_t source, const Packet& packet) const;
  std::span<const std::byte> payload_of(const Link& link, const Packet& packet) const;
  std::span<const std::byte> write_source(const Link& link, const Packet& packet) const;

  // Faults.
  void fail_connection(std::uint32_t node, std::uint32_t peer, const Status& reason);
  void schedule_detection(std::uint32_t observer, std::uint32_t failed);
  void purge(Link& link);
  void drop_data(Link& link);
  void reset_arena_if_empty(Link& link);
  void keep_prefix(Link& link, std::size_t keep);
  void retime_after_hold(Link& link);
  void release_links_of(std::uint32_t index);
  void set_cut(std::uint32_t a, std::uint32_t b, bool cut);

  // Trace.
  void trace_mix(std::uint64_t value);
  void trace_bytes(std::span<const std::byte> bytes);
  bool trace_wants_text() const;
  void trace_drop(const Packet& packet, std::uint32_t source, std::uint32_t target);
  void trace_line(std::string line);

  SimOptions options_;
  SimRandom random_;
  ManualClock clock_;
  std::vector<std::unique_ptr<SimTransport>> nodes_;
  std::unordered_map<NodeId, std::uint32_t> index_by_id_;
  std::vector<Link> links_;
  std::vector<std::vector<std::uint32_t>> link_index_;  // [source][target] -> links_ index
  std::vector<sim_detail::Entry> heap_;
  std::uint64_t next_sequence_ = 1;
  std::vector<sim_detail::Task> tasks_;
  std::vector<std::uint32_t> free_tasks_;
  std::uint64_t trace_hash_ = 0x5157'4c4c'5349'4d31ULL;
  std::vector<std::string> trace_lines_;
  SimStats stats_;
};

}  // namespace squall::fabric
