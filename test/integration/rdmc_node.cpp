// rdmc_node: one member of a multi-process RDMC group over real libfabric (tcp on loopback).
//
// --mode rdmc: an rdmc::Group (rdmc/group.hpp) with the chosen algorithm and block size; every
//   sender multicasts --messages messages of sizes in [--size-min, --size-max]; every member
//   checks each delivery (sender, order, size, bytes) and reports per-sender counts and
//   stream checksums. A group failure is printed as a group_failed event.
// --mode p2p: the baseline: the sender writes each message to each receiver in turn with RMA
//   writes (see rdmc_node_workloads.cpp), with the same checks.
// The driver protocol is in sst_node_io.hpp; flags are listed by --help.
#include <sched.h>
#include <unistd.h>

#include <algorithm>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "common/log.hpp"
#include "fabric/libfabric.hpp"
#include "rdmc_node.hpp"
#include "sst_node_io.hpp"

namespace squall::integration {

std::size_t rdmc_region_bytes(const RdmcNodeOptions& options) {
  auto members = static_cast<std::uint32_t>(options.members.size());
  auto window = static_cast<std::uint32_t>(options.window);
  if (options.mode == "rdmc") {
    return rdmc::region_bytes(members, window, options.size_max_bytes, options.block_bytes);
  }
  return std::size_t{members} * window * options.size_max_bytes;
}

namespace {

void parse_list(std::uint32_t id, const std::string& text, std::vector<std::uint32_t>& out) {
  if (text.empty()) return;
  auto list = parse_number_list(text);
  if (!list.is_ok()) fail(id, list.status().to_string());
  out = *list;
}

RdmcNodeOptions parse_options(int argc, char** argv) {
  RdmcNodeOptions o;
  CLI::App app{"rdmc_node: one member of a multi-process RDMC group over libfabric"};
  std::string members = "1,2,3";
  std::string ports;
  std::string senders;
  app.add_option("--id", o.id, "this node's id")->required();
  app.add_option("--members", members, "member ids in rank order, e.g. 1,2,3");
  app.add_option("--ports", ports, "bootstrap ports in rank order (default: port exchange)");
  app.add_option("--mode", o.mode, "rdmc | p2p");
  app.add_option("--algorithm", o.algorithm, "binomial_pipeline | chain | sequential | tree");
  app.add_option("--block-bytes", o.block_bytes, "RDMC block size; p2p write size");
  app.add_option("--senders", senders, "sender ids (default: every member)");
  app.add_option("--messages", o.messages, "messages per sender");
  app.add_option("--size-min", o.size_min_bytes, "smallest message (bytes, >= 1)");
  app.add_option("--size-max", o.size_max_bytes, "largest message (bytes)");
  app.add_option("--window", o.window, "messages in flight per sender");
  app.add_option("--verify", o.verify, "full | stamp (see rdmc_node.hpp)");
  app.add_option("--seed", o.seed, "seed of the message contents");
  app.add_option("--start", o.start, "go (wait for GO on stdin) | now");
  app.add_option("--idle", o.idle, "spin | yield | sleep");
  app.add_option("--safety-timeout-ms", o.safety_timeout_ms, "give up (error) after this");
  app.add_option("--connect-timeout-ms", o.connect_timeout_ms, "peer connection timeout");
  app.add_option("--progress-ms", o.progress_ms, "progress event period (0: none)");
  app.add_option("--write-depth", o.write_depth, "p2p: writes in flight");
  app.add_option("--log-level", o.log_level, "spdlog level for Squall's modules");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    std::exit(app.exit(error));
  }
  parse_list(o.id, members, o.members);
  parse_list(o.id, ports, o.ports);
  parse_list(o.id, senders, o.senders);
  if (!o.ports.empty() && o.ports.size() != o.members.size()) fail(o.id, "--ports vs --members");
  if (o.size_min_bytes == 0 || o.size_min_bytes > o.size_max_bytes) fail(o.id, "bad sizes");
  if (o.window == 0 || o.window > rdmc::kMaxWindow) fail(o.id, "--window out of range");
  if (o.block_bytes == 0 || o.write_depth == 0) fail(o.id, "--block-bytes/--write-depth");
  if (o.verify != "full" && o.verify != "stamp") fail(o.id, "--verify full|stamp");
  if (std::find(o.members.begin(), o.members.end(), o.id) == o.members.end()) {
    fail(o.id, "--id is not in --members");
  }
  return o;
}

NodeIdentity identity_of(const RdmcNodeOptions& options) {
  return {options.id, options.members, options.ports, options.connect_timeout_ms};
}

// The progress loop after the connection: events always go to the workload; it sends only
// after GO. Ends on EXIT / end of stdin (or 2 s after the result when standalone).
class Loop {
 public:
  Loop(const RdmcNodeOptions& options, fabric::Transport& transport, RdmcWork& work,
       StdinLines& input)
      : options_(options), transport_(transport), work_(work), input_(input) {}

  void run() {
    if (options_.start == "go") wait_for_go();
    go_us_ = now_us();
    next_check_us_ = go_us_;
    while (turn()) {
    }
    emit({{"event", "bye"}, {"node", options_.id}});
  }

 private:
  std::size_t pump() {
    events_.clear();
    transport_.poll(events_, 256);
    for (const fabric::Event& event : events_) work_.on_event(event);
    return events_.size();
  }

  void wait_for_go() {
    std::uint64_t deadline = now_us() + options_.safety_timeout_ms * 1000;
    while (true) {
      pump();
      if (auto line = input_.next(0)) {
        if (*line == "GO") return;
        if (*line == "EXIT") std::exit(0);
      }
      if (input_.eof()) std::exit(0);
      if (now_us() > deadline) fail(options_.id, "no GO from the driver");
      ::usleep(200);
    }
  }

  bool turn() {
    bool busy = pump() > 0;
    busy = work_.step() || busy;
    std::uint64_t now = now_us();
    if (!done_us_ && work_.done()) {
      done_us_ = now;
      nlohmann::json line = work_.result();
      line["event"] = "result";
      line["node"] = options_.id;
      line["mode"] = options_.mode;
      line["go_us"] = go_us_;
      line["done_us"] = now;
      add_rates(line, now - go_us_);
      emit(line);
    }
    if (now >= next_check_us_ && !housekeeping(now)) return false;
    if (!busy && options_.idle == "yield") ::sched_yield();
    if (!busy && options_.idle == "sleep") ::usleep(100);
    return true;
  }

  bool housekeeping(std::uint64_t now) {
    next_check_us_ = now + 1000;
    bool standalone = options_.start != "go";
    if (!standalone) {
      if (auto line = input_.next(0); (line && *line == "EXIT") || input_.eof()) return false;
    }
    if (options_.progress_ms > 0 && now >= next_progress_us_) {
      next_progress_us_ = now + options_.progress_ms * 1000;
      nlohmann::json line = work_.progress();
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

  const RdmcNodeOptions& options_;
  fabric::Transport& transport_;
  RdmcWork& work_;
  StdinLines& input_;
  std::vector<fabric::Event> events_;
  std::uint64_t go_us_ = 0;
  std::uint64_t next_check_us_ = 0;
  std::uint64_t next_progress_us_ = 0;
  std::optional<std::uint64_t> done_us_;
};

int run(const RdmcNodeOptions& options) {
  LogSettings log_settings;
  log_settings.level = options.log_level;
  if (Status status = init_logging(log_settings); !status.is_ok()) {
    fail(options.id, status.to_string());
  }
  std::unique_ptr<fabric::LibfabricTransport> transport = make_node_transport(identity_of(options));
  MappedRegion region(rdmc_region_bytes(options));
  fabric::RegionId region_id = options.mode == "rdmc" ? kRdmcRegion : kP2pRegion;
  if (Status status = transport->register_region(region_id, region.span()); !status.is_ok()) {
    fail(options.id, "register region: " + status.to_string());
  }
  StdinLines input;
  auto ports = peer_ports(identity_of(options), *transport, input);
  // A peer that connected to everyone first may already send (standalone runs): keep what
  // arrives until the workload exists, then hand it over in order.
  std::vector<fabric::Event> early;
  Status connected = connect_peers(
      *transport, options.id, ports, [&](const fabric::Event& event) { early.push_back(event); },
      options.connect_timeout_ms);
  if (!connected.is_ok()) fail(options.id, connected.to_string());
  // Sender s's slots are the s-th share of the region in both modes (members x window slots).
  std::size_t share = region.span().size() / options.members.size();
  Payloads payloads(options);
  for (std::size_t rank = 0; rank < options.members.size(); ++rank) {
    if (!options.is_sender(options.members[rank])) continue;
    region.prefault(rank * share, share);
    payloads.prepare(options.members[rank]);
  }
  std::unique_ptr<RdmcWork> work = make_rdmc_work(options, *transport, region.span(), payloads);
  for (const fabric::Event& event : early) work->on_event(event);
  emit({{"event", "ready"}, {"node", options.id}});
  Loop(options, *transport, *work, input).run();
  work.reset();
  transport.reset();
  return 0;
}

}  // namespace
}  // namespace squall::integration

int main(int argc, char** argv) {
  return squall::integration::run(squall::integration::parse_options(argc, argv));
}
