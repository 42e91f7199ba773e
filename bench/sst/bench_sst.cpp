// bench_sst: SST/SMC over real libfabric (tcp, loopback), with sst_node processes.
//
// Sections (all by default, or pick with --only):
//   smc      SMC message rate, 3 member processes, sizes 8..1024 B, all senders and one sender,
//            each next to the point-to-point baseline (the same messages sent by two-sided
//            Transport::send to each receiver in turn) run in the same invocation; ratio.
//   link     single-link bandwidth: one RMA write stream between two processes.
//   failure  failure-detection time: median of --trials kill -9s (transport path) and of
//            SIGSTOPs (heartbeat-timeout path), measured from the signal to the suspicion.
// Every run checks delivery (counts and stream checksums); a failed check aborts the bench.
// Tables go to stdout (markdown), a progress line per run to stderr. docs/benchmarks.md
// records results and how to read them.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "bench/bench_util.hpp"
#include "sst_cluster.hpp"
#include "sst_messages.hpp"

namespace squall::bench {
namespace {

using integration::Cluster;
using integration::ClusterOptions;

constexpr std::uint64_t kSeed = 7;
constexpr std::uint64_t kSafetyMs = 300'000;

struct Options {
  std::string node = SQUALL_SST_NODE_PATH;
  std::string only;  // empty: every section
  std::uint64_t messages = 20'000;
  std::vector<std::uint64_t> sizes = {8, 64, 256, 1024};
  std::uint64_t window = 16;
  std::uint64_t trials = 10;
  std::uint64_t repeat = 3;  // SMC/p2p runs per cell; the median is reported
  std::uint64_t link_mib = 256;
  std::string idle = "yield";
#ifdef SQUALL_BENCH_FABRIC_PATH
  std::string fabric_bench = SQUALL_BENCH_FABRIC_PATH;
#else
  std::string fabric_bench;
#endif
  bool wants(const std::string& section) const {
    return only.empty() || only.find(section) != std::string::npos;
  }
};

constexpr const char* kProgram = "bench_sst";

[[noreturn]] void die(const std::string& what) { bench::die(kProgram, what); }

template <typename T>
T must(Result<T> result, const std::string& what) {
  return bench::must(kProgram, std::move(result), what);
}

void progress(const std::string& line) { bench::progress(kProgram, line); }

std::unique_ptr<Cluster> launch(const Options& options, std::vector<std::uint32_t> ids,
                                std::vector<std::string> args) {
  ClusterOptions cluster;
  cluster.program = options.node;
  cluster.ids = std::move(ids);
  cluster.common_args = std::move(args);
  cluster.common_args.insert(cluster.common_args.end(),
                             {"--idle", options.idle, "--log-level", "error",
                              "--safety-timeout-ms", std::to_string(kSafetyMs)});
  return must(Cluster::start(cluster), "start");
}

// ---- smc -------------------------------------------------------------------------------

struct Rate {
  double seconds = 0;
  double messages_per_second = 0;  // messages multicast (each reaches every member)
};

// One run of `mode` (smc or p2p) with 3 members; verifies every node's streams.
Rate traffic_run(const Options& options, const std::string& mode, bool all_senders,
                 std::uint64_t size) {
  std::vector<std::string> args = {
      "--mode", mode, "--messages", std::to_string(options.messages), "--size-min",
      std::to_string(size), "--size-max", std::to_string(size), "--window",
      std::to_string(options.window), "--seed", std::to_string(kSeed), "--heartbeat-ms", "50",
      "--failure-timeout-ms", "30000"};
  if (!all_senders) args.insert(args.end(), {"--senders", "1"});
  auto cluster = launch(options, {1, 2, 3}, args);
  if (Status status = cluster->go(); !status.is_ok()) die(status.to_string());
  std::uint64_t first_go = UINT64_MAX;
  std::uint64_t last_done = 0;
  for (std::size_t index = 0; index < cluster->size(); ++index) {
    auto result = must(cluster->wait_event(index, "result", kSafetyMs), mode + " result");
    first_go = std::min(first_go, result["go_us"].get<std::uint64_t>());
    last_done = std::max(last_done, result["done_us"].get<std::uint64_t>());
    for (std::uint32_t sender : {1u, 2u, 3u}) {
      std::uint64_t count = (all_senders || sender == 1) ? options.messages : 0;
      std::string key = std::to_string(sender);
      if (result["delivered"][key] != count ||
          result["checksums"][key] != integration::expected_checksum(kSeed, sender, count,
                                                                     size, size)) {
        die(fmt::format("{}: node {} reports a wrong stream from {}: {}", mode,
                        cluster->id(index), sender, result.dump()));
      }
    }
  }
  if (Status status = cluster->stop(30'000); !status.is_ok()) die(status.to_string());
  Rate rate;
  rate.seconds = static_cast<double>(last_done - first_go) / 1e6;
  double multicast = static_cast<double>(options.messages * (all_senders ? 3 : 1));
  rate.messages_per_second = multicast / rate.seconds;
  return rate;
}

void smc_section(const Options& options) {
  std::printf("\n### SMC message rate, 3 member processes (tcp, loopback)\n\n");
  std::printf("%llu messages per sender, window %llu, every delivery verified; median of %llu "
              "runs. Rate = messages multicast per second (each delivered to all 3 members).\n\n",
              static_cast<unsigned long long>(options.messages),
              static_cast<unsigned long long>(options.window),
              static_cast<unsigned long long>(options.repeat));
  std::printf("| senders | size (B) | SMC msg/s | p2p sends msg/s | SMC / p2p | SMC MB/s |\n");
  std::printf("|---|---:|---:|---:|---:|---:|\n");
  std::size_t runs = options.sizes.size() * 2;
  std::size_t run = 0;
  for (bool all_senders : {true, false}) {
    for (std::uint64_t size : options.sizes) {
      std::string label = all_senders ? "all 3" : "one";
      progress(fmt::format("smc {}/{}: {} senders, {} B", ++run, runs, label, size));
      std::vector<double> smc_rates;
      std::vector<double> p2p_rates;
      for (std::uint64_t repeat = 0; repeat < std::max<std::uint64_t>(1, options.repeat);
           ++repeat) {
        smc_rates.push_back(traffic_run(options, "smc", all_senders, size).messages_per_second);
        p2p_rates.push_back(traffic_run(options, "p2p", all_senders, size).messages_per_second);
        progress(fmt::format("  run {}: smc {:.0f} msg/s, p2p {:.0f} msg/s", repeat + 1,
                             smc_rates.back(), p2p_rates.back()));
      }
      double smc = median(smc_rates);
      double p2p = median(p2p_rates);
      std::printf("| %s | %llu | %.0f | %.0f | %.2f | %.2f |\n", label.c_str(),
                  static_cast<unsigned long long>(size), smc, p2p, smc / p2p,
                  smc * static_cast<double>(size) / 1e6);
      std::fflush(stdout);
    }
  }
}

// ---- link ------------------------------------------------------------------------------

double link_run(const Options& options, std::uint64_t write_bytes) {
  auto cluster = launch(options, {1, 2},
                        {"--mode", "link", "--link-bytes", std::to_string(options.link_mib << 20),
                         "--write-bytes", std::to_string(write_bytes), "--write-depth", "8",
                         "--heartbeat-ms", "50", "--failure-timeout-ms", "30000"});
  if (Status status = cluster->go(); !status.is_ok()) die(status.to_string());
  auto result = must(cluster->wait_event(0, "result", kSafetyMs), "link result");
  if (Status status = cluster->stop(30'000); !status.is_ok()) die(status.to_string());
  double seconds =
      static_cast<double>(result["done_us"].get<std::uint64_t>() -
                          result["go_us"].get<std::uint64_t>()) / 1e6;
  return static_cast<double>(result["bytes"].get<std::uint64_t>()) / seconds;
}

// The fabric layer's own benchmark (bench/fabric), when it is built: its stream figures for
// the same write sizes, shown verbatim.
void fabric_bench(const Options& options) {
  if (options.fabric_bench.empty() || ::access(options.fabric_bench.c_str(), X_OK) != 0) {
    std::printf("\n(bench_fabric not found; only the stream measured here is shown)\n");
    return;
  }
  progress("link: bench_fabric --sizes 65536,1048576 --no-pingpong");
  auto child = must(integration::ChildProcess::spawn({options.fabric_bench, "--sizes",
                                                      "65536,1048576", "--no-pingpong"}),
                    "bench_fabric");
  std::printf("\nbench_fabric (bench/fabric), same machine and run:\n\n");
  while (true) {
    auto line = child->read_line(kSafetyMs);
    if (!line.is_ok()) break;
    std::printf("    %s\n", line->c_str());
  }
  child->wait_exit(10'000);
  std::printf("\n(bench_fabric: %s)\n", child->describe_exit().c_str());
  std::fflush(stdout);
}

void link_section(const Options& options) {
  std::printf("\n### Single-link bandwidth (one RMA write stream, 8 writes in flight)\n\n");
  std::printf("| write size | MiB written | MB/s |\n|---:|---:|---:|\n");
  for (std::uint64_t write_bytes : {64ULL << 10, 1ULL << 20}) {
    progress(fmt::format("link: {} KiB writes", write_bytes >> 10));
    double bandwidth = link_run(options, write_bytes);
    std::printf("| %llu KiB | %llu | %.0f |\n", static_cast<unsigned long long>(write_bytes >> 10),
                static_cast<unsigned long long>(options.link_mib), bandwidth / 1e6);
    std::fflush(stdout);
  }
  fabric_bench(options);
}

// ---- failure detection -------------------------------------------------------------------

struct Detection {
  double first_ms = 0;  // the first survivor's suspicion
  double all_ms = 0;    // both survivors suspect it
};

// Starts 3 idle members, signals member 3, and measures until each survivor suspects it.
Detection detection_run(const Options& options, int signal_number, std::uint64_t heartbeat_ms,
                        std::uint64_t timeout_ms) {
  auto cluster = launch(options, {1, 2, 3},
                        {"--mode", "idle", "--heartbeat-ms", std::to_string(heartbeat_ms),
                         "--failure-timeout-ms", std::to_string(timeout_ms)});
  if (Status status = cluster->go(); !status.is_ok()) die(status.to_string());
  // Measure a running group, not start-up (where every peer gets a full timeout from the
  // first tick): let every member exchange heartbeats for a while first.
  must(cluster->wait_event(0, "result", kSafetyMs), "idle start");
  std::this_thread::sleep_for(std::chrono::milliseconds(4 * timeout_ms));
  std::uint64_t signalled_us = integration::monotonic_us();
  cluster->signal(2, signal_number);
  std::vector<double> delays;
  for (std::size_t survivor : {0, 1}) {
    auto event = must(cluster->wait_event(survivor, "suspected", kSafetyMs,
                                          [](const nlohmann::json& e) {
                                            return e["suspect"] == 3;
                                          }),
                      "suspicion");
    delays.push_back(static_cast<double>(event["at_us"].get<std::uint64_t>() - signalled_us) /
                     1e3);
  }
  if (signal_number != SIGKILL) cluster->signal(2, SIGKILL);
  (void)cluster->stop(30'000);
  return {std::min(delays[0], delays[1]), std::max(delays[0], delays[1])};
}

void detection_row(const Options& options, const std::string& label, int signal_number,
                   std::uint64_t heartbeat_ms, std::uint64_t timeout_ms) {
  std::vector<double> first;
  std::vector<double> all;
  for (std::uint64_t trial = 0; trial < options.trials; ++trial) {
    progress(fmt::format("failure: {} trial {}/{}", label, trial + 1, options.trials));
    Detection detection = detection_run(options, signal_number, heartbeat_ms, timeout_ms);
    first.push_back(detection.first_ms);
    all.push_back(detection.all_ms);
  }
  std::printf("| %s | %llu / %llu | %.1f | %.1f | %.1f | %.1f |\n", label.c_str(),
              static_cast<unsigned long long>(heartbeat_ms),
              static_cast<unsigned long long>(timeout_ms), median(first), median(all),
              *std::min_element(all.begin(), all.end()), *std::max_element(all.begin(), all.end()));
  std::fflush(stdout);
}

void failure_section(const Options& options) {
  std::printf("\n### Failure detection, 3 members (%llu trials each)\n\n",
              static_cast<unsigned long long>(options.trials));
  std::printf("Time from the signal to the suspicion event (ms).\n\n");
  std::printf("| fault | heartbeat / timeout (ms) | median first | median both | min both |"
              " max both |\n|---|---:|---:|---:|---:|---:|\n");
  detection_row(options, "kill -9", SIGKILL, 10, 100);
  detection_row(options, "SIGSTOP", SIGSTOP, 10, 100);
  detection_row(options, "SIGSTOP", SIGSTOP, 20, 500);
}

Options parse(int argc, char** argv) {
  Options options;
  CLI::App app{"bench_sst: SST/SMC over libfabric with member processes"};
  app.add_option("--node", options.node, "path of sst_node");
  app.add_option("--only", options.only, "sections to run: smc, link, failure (comma list)");
  app.add_option("--messages", options.messages, "SMC/p2p messages per sender");
  app.add_option("--sizes", options.sizes, "message sizes (bytes)")->delimiter(',');
  app.add_option("--window", options.window, "SMC window (slots per sender)");
  app.add_option("--trials", options.trials, "failure-detection trials per row");
  app.add_option("--repeat", options.repeat, "runs per SMC/p2p cell (median reported)");
  app.add_option("--link-mib", options.link_mib, "MiB per link-bandwidth run");
  app.add_option("--idle", options.idle, "node idle policy: spin | yield | sleep");
  app.add_option("--fabric-bench", options.fabric_bench,
                 "bench_fabric binary whose write stream is shown too (empty: skip)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    std::exit(app.exit(error));
  }
  return options;
}

}  // namespace
}  // namespace squall::bench

int main(int argc, char** argv) {
  using namespace squall::bench;
  Options options = parse(argc, argv);
  std::printf("## bench_sst\n\n");
  std::ifstream loadavg("/proc/loadavg");
  std::string one, five, fifteen;
  loadavg >> one >> five >> fifteen;
  std::printf("Load average at start: %s %s %s on %ld CPUs.\n", one.c_str(), five.c_str(),
              fifteen.c_str(), ::sysconf(_SC_NPROCESSORS_ONLN));
  if (options.wants("smc")) smc_section(options);
  if (options.wants("link")) link_section(options);
  if (options.wants("failure")) failure_section(options);
  return 0;
}
