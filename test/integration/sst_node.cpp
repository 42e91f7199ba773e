// sst_node: one member of a multi-process SST group over real libfabric (tcp on loopback).
//
// Runs LibfabricTransport + SST table + failure detector + SMC in one progress loop, with time
// from SystemClock, and one workload chosen by --mode:
//   smc   every sender multicasts --messages messages through SMC; every member checks each
//         delivery (sender, index, size, bytes) and reports per-sender counts and checksums
//   p2p   the baseline: the same messages sent by two-sided Transport::send to each receiver
//         in turn
//   idle  heartbeats only (failure-detection tests and benchmarks)
//   link  the lowest-ranked member streams RMA writes to the next one (single-link bandwidth)
// Suspicion events are printed as they happen, with monotonic timestamps. The driver protocol
// is in sst_node_io.hpp; flags are listed by --help.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "common/log.hpp"
#include "sst_node.hpp"
#include "sst_node_io.hpp"

namespace squall::integration {

bool NodeOptions::is_sender(std::uint32_t node) const {
  return senders.empty() || std::find(senders.begin(), senders.end(), node) != senders.end();
}

AlignedBuffer allocate_aligned(std::size_t bytes) {
  auto* memory = static_cast<std::byte*>(
      ::operator new[](bytes, std::align_val_t{sst::kCacheLineBytes}));
  std::fill(memory, memory + bytes, std::byte{0});
  return AlignedBuffer(memory);
}

Member::Member(const NodeOptions& options, fabric::Transport& transport) : options_(options) {
  auto position = std::find(options_.members.begin(), options_.members.end(), options_.id);
  if (position == options_.members.end()) fail(options_.id, "--id is not in --members");
  rank_ = static_cast<std::size_t>(position - options_.members.begin());
  detector_fields_ = sst::add_failure_detector_fields(schema_, size());
  smc_fields_ = sst::add_smc_fields(schema_, size(), options_.window,
                                    std::max<std::uint64_t>(options_.size_max_bytes, 8));
  std::size_t bytes = sst::Table::memory_bytes(schema_, size());
  memory_ = allocate_aligned(bytes);
  Status registered = transport.register_region(kSstRegion, {memory_.get(), bytes});
  if (!registered.is_ok()) fail(self(), "register SST region: " + registered.to_string());
  std::vector<NodeId> ids;
  for (std::uint32_t id : options_.members) ids.push_back(NodeId(id));
  table_ = std::make_unique<sst::Table>(schema_, ids, rank_, std::span(memory_.get(), bytes),
                                        transport, kSstRegion);
  detector_ = std::make_unique<sst::FailureDetector>(
      *table_, detector_fields_, options_.heartbeat_ms, options_.failure_timeout_ms,
      [this](std::size_t rank, const std::string& reason) { on_suspect(rank, reason); });
  table_->set_overflow_callback([this](std::size_t rank) {
    detector_->suspect(rank, "push queue overflow");
  });
  smc_ = std::make_unique<sst::Smc>(
      *table_, smc_fields_,
      [this](std::size_t sender, std::uint64_t index, std::span<const std::byte> payload) {
        if (!deliver_) fail(self(), fmt::format("unexpected SMC message from rank {}", sender));
        deliver_(sender, index, payload);
      },
      [this](std::size_t sender, const std::string& reason) {
        fail(self(), fmt::format("SMC fault from rank {}: {}", sender, reason));
      });
}

bool Member::handle(const fabric::Event& event) {
  switch (event.kind) {
    case fabric::EventKind::peer_connected:
      table_->peer_connected(event.peer);
      return true;
    case fabric::EventKind::peer_failed:
      detector_->peer_failed(event.peer, event.status.to_string());
      return true;
    case fabric::EventKind::write_completed:
      if ((event.context & sst::PushQueue::kContextTag) == 0) return false;
      table_->on_write_completed(event.context, event.status);
      return true;
    default:
      return false;
  }
}

std::size_t Member::step(std::uint64_t now_us) {
  std::size_t delivered = smc_->receive();
  table_->flush();
  if (ticking_) detector_->tick(now_us);
  return delivered;
}

void Member::on_suspect(std::size_t rank, const std::string& reason) {
  suspects_.insert(rank);
  emit({{"event", "suspected"},
        {"node", options_.id},
        {"suspect", id_of(rank)},
        {"at_us", now_us()},
        {"reason", reason}});
}

namespace {

NodeOptions parse_options(int argc, char** argv) {
  NodeOptions o;
  CLI::App app{"sst_node: one member of a multi-process SST/SMC group over libfabric"};
  std::string members = "1,2,3";
  std::string ports;
  std::string senders;
  app.add_option("--id", o.id, "this node's id")->required();
  app.add_option("--members", members, "member ids in rank order, e.g. 1,2,3");
  app.add_option("--ports", ports, "bootstrap ports in rank order (default: port exchange)");
  app.add_option("--mode", o.mode, "smc | p2p | idle | link");
  app.add_option("--senders", senders, "sender ids (default: every member)");
  app.add_option("--messages", o.messages, "messages per sender");
  app.add_option("--size-min", o.size_min_bytes, "smallest message (bytes)");
  app.add_option("--size-max", o.size_max_bytes, "largest message = SMC slot payload (bytes)");
  app.add_option("--window", o.window, "SMC slots per sender");
  app.add_option("--heartbeat-ms", o.heartbeat_ms, "heartbeat period");
  app.add_option("--failure-timeout-ms", o.failure_timeout_ms, "suspicion timeout");
  app.add_option("--seed", o.seed, "seed of the message contents");
  app.add_option("--start", o.start, "go (wait for GO on stdin) | now");
  app.add_option("--idle", o.idle, "spin | yield | sleep");
  app.add_option("--safety-timeout-ms", o.safety_timeout_ms, "give up (error) after this");
  app.add_option("--connect-timeout-ms", o.connect_timeout_ms, "peer connection timeout");
  app.add_option("--progress-ms", o.progress_ms, "progress event period (0: none)");
  app.add_option("--link-bytes", o.link_bytes, "link mode: bytes to write");
  app.add_option("--write-bytes", o.write_bytes, "link mode: bytes per write");
  app.add_option("--write-depth", o.write_depth, "link mode: writes in flight");
  app.add_option("--log-level", o.log_level, "spdlog level for Squall's modules");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    std::exit(app.exit(error));
  }
  auto parse_list = [&](const std::string& text, std::vector<std::uint32_t>& out) {
    if (text.empty()) return;
    auto list = parse_number_list(text);
    if (!list.is_ok()) fail(o.id, list.status().to_string());
    out = *list;
  };
  parse_list(members, o.members);
  parse_list(ports, o.ports);
  parse_list(senders, o.senders);
  if (!o.ports.empty() && o.ports.size() != o.members.size()) fail(o.id, "--ports vs --members");
  if (o.size_min_bytes > o.size_max_bytes) fail(o.id, "--size-min exceeds --size-max");
  if (o.window == 0 || o.window > 4096) fail(o.id, "--window must be 1..4096");
  if (o.failure_timeout_ms <= o.heartbeat_ms) fail(o.id, "failure timeout <= heartbeat");
  return o;
}

NodeIdentity identity_of(const NodeOptions& options) {
  return {options.id, options.members, options.ports, options.connect_timeout_ms};
}

void idle_turn(const std::string& policy) {
  if (policy == "yield") {
    ::sched_yield();
  } else if (policy == "sleep") {
    ::usleep(100);
  }
}

constexpr std::size_t kMaxEarlyEvents = 1 << 16;

// Everything after the connection: wait for GO, run the workload, report, wait for EXIT.
class Loop {
 public:
  Loop(const NodeOptions& options, fabric::Transport& transport, Member& member,
       StdinLines& input, std::byte* link_memory)
      : options_(options), transport_(transport), member_(member), input_(input),
        link_memory_(link_memory) {}

  void run() {
    wait_for_go();
    member_.start_ticking();
    go_us_ = now_us();
    workload_ = make_workload(member_, transport_, link_memory_);
    // Peers that saw GO first may already have sent to us.
    for (const fabric::Event& event : early_events_) workload_->on_event(event);
    early_events_.clear();
    next_check_us_ = go_us_;
    while (turn()) {
    }
    nlohmann::json bye = {{"event", "bye"}, {"node", options_.id}};
    emit(bye);
  }

 private:
  std::size_t pump() {
    events_.clear();
    transport_.poll(events_, 256);
    for (const fabric::Event& event : events_) {
      if (member_.handle(event)) continue;
      if (workload_) {
        workload_->on_event(event);
      } else {
        if (early_events_.size() >= kMaxEarlyEvents) fail(options_.id, "no GO, flooded");
        early_events_.push_back(event);
      }
    }
    return events_.size();
  }

  void wait_for_go() {
    if (options_.start != "go") return;
    std::uint64_t deadline = now_us() + options_.safety_timeout_ms * 1000;
    while (true) {
      pump();
      member_.flush();
      if (auto line = input_.next(0)) {
        if (*line == "GO") return;
        if (*line == "EXIT") std::exit(0);
      }
      if (input_.eof()) std::exit(0);
      if (now_us() > deadline) fail(options_.id, "no GO from the driver");
      ::usleep(200);
    }
  }

  // One turn of the loop; false when it is time to leave.
  bool turn() {
    bool busy = pump() > 0;
    busy = workload_->step() || busy;
    std::uint64_t now = now_us();
    busy = member_.step(now) > 0 || busy;
    if (!done_us_ && workload_->done()) report(now);
    if (now >= next_check_us_ && !housekeeping(now)) return false;
    if (!busy) idle_turn(options_.idle);
    return true;
  }

  void report(std::uint64_t now) {
    done_us_ = now;
    nlohmann::json line = workload_->result();
    line["event"] = "result";
    line["node"] = options_.id;
    line["mode"] = options_.mode;
    line["go_us"] = go_us_;
    line["done_us"] = now;
    add_rates(line, now - go_us_);
    emit(line);
  }

  // Stdin commands, progress events, time limits; checked about once per millisecond.
  bool housekeeping(std::uint64_t now) {
    next_check_us_ = now + 1000;
    bool standalone = options_.start != "go";
    // Standalone runs (--start now) ignore stdin: it may be a terminal or /dev/null.
    if (!standalone) {
      if (auto line = input_.next(0); (line && *line == "EXIT") || input_.eof()) return false;
    }
    if (options_.progress_ms > 0 && now >= next_progress_us_) {
      next_progress_us_ = now + options_.progress_ms * 1000;
      nlohmann::json line = workload_->progress();
      line["event"] = "progress";
      line["node"] = options_.id;
      line["at_us"] = now;
      emit(line);
    }
    if (standalone && done_us_ && now - *done_us_ > 2'000'000) return false;
    if (now - go_us_ > options_.safety_timeout_ms * 1000) {
      if (!done_us_) fail(options_.id, "no result before the safety timeout");
      return false;
    }
    return true;
  }

  const NodeOptions& options_;
  fabric::Transport& transport_;
  Member& member_;
  StdinLines& input_;
  std::byte* link_memory_;
  std::unique_ptr<Workload> workload_;
  std::vector<fabric::Event> events_;
  std::vector<fabric::Event> early_events_;  // arrived before GO, at most kMaxEarlyEvents
  std::uint64_t go_us_ = 0;
  std::uint64_t next_check_us_ = 0;
  std::uint64_t next_progress_us_ = 0;
  std::optional<std::uint64_t> done_us_;
};

int run(const NodeOptions& options) {
  LogSettings log_settings;
  log_settings.level = options.log_level;
  if (Status status = init_logging(log_settings); !status.is_ok()) {
    fail(options.id, status.to_string());
  }
  std::unique_ptr<fabric::LibfabricTransport> transport = make_node_transport(identity_of(options));
  AlignedBuffer link_memory;
  register_workload_regions(options, *transport, link_memory);
  Member member(options, *transport);
  StdinLines input;
  auto ports = peer_ports(identity_of(options), *transport, input);
  Status connected = connect_peers(
      *transport, options.id, ports, [&](const fabric::Event& event) { member.handle(event); },
      options.connect_timeout_ms);
  if (!connected.is_ok()) fail(options.id, connected.to_string());
  emit({{"event", "ready"}, {"node", options.id}});
  Loop(options, *transport, member, input, link_memory.get()).run();
  transport.reset();
  return 0;
}

}  // namespace
}  // namespace squall::integration

int main(int argc, char** argv) {
  return squall::integration::run(squall::integration::parse_options(argc, argv));
}
