// bench_rdmc: RDMC multicast throughput over real libfabric (tcp, loopback) with rdmc_node
// processes, for 3 and 5 members, every algorithm, message sizes 1..64 MiB (256 MiB with
// --full), next to two references measured in the same invocation:
//   p2p   the sender writes each message to each receiver in turn (RMA writes of block size,
//         rdmc_node --mode p2p): what a sender without RDMC would do;
//   link  one RMA write stream between two processes (sst_node --mode link): the single-link
//         bandwidth.
// Throughput = bytes of messages delivered to every receiver per second (message size x
// messages / time from GO until the last receiver has the last message). Every delivery is
// checked byte for byte (--verify stamp: see test/integration/rdmc_node.hpp).
// Tables go to stdout (markdown), a progress line per run to stderr.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "bench/bench_util.hpp"
#include "sst_cluster.hpp"

namespace squall::bench {
namespace {

using integration::Cluster;
using integration::ClusterOptions;

constexpr std::uint64_t kSafetyMs = 600'000;
constexpr std::uint64_t kMiB = 1 << 20;
const std::vector<std::string> kAlgorithms = {"binomial_pipeline", "chain", "sequential",
                                              "tree"};

struct Options {
  std::string rdmc_node = SQUALL_RDMC_NODE_PATH;
  std::string sst_node = SQUALL_SST_NODE_PATH;
  std::vector<std::uint64_t> sizes_mib = {1, 4, 16, 64};
  std::vector<std::uint64_t> members = {3, 5};
  bool full = false;              // adds 256 MiB messages
  std::uint64_t run_mib = 256;    // bytes per run (at least 2 messages)
  std::uint64_t block_kib = 1024;
  std::string idle = "yield";
  std::uint64_t repeat = 1;  // runs per cell; the median is reported
};

constexpr const char* kProgram = "bench_rdmc";

[[noreturn]] void die(const std::string& what) { bench::die(kProgram, what); }

template <typename T>
T must(Result<T> result, const std::string& what) {
  return bench::must(kProgram, std::move(result), what);
}

void progress(const std::string& line) { bench::progress(kProgram, line); }

std::vector<std::uint32_t> ids(std::uint64_t members) {
  std::vector<std::uint32_t> list;
  for (std::uint32_t id = 1; id <= members; ++id) list.push_back(id);
  return list;
}

std::unique_ptr<Cluster> launch(const std::string& program, std::vector<std::uint32_t> members,
                                std::vector<std::string> args, const Options& options) {
  ClusterOptions cluster;
  cluster.program = program;
  cluster.ids = std::move(members);
  cluster.common_args = std::move(args);
  cluster.common_args.insert(cluster.common_args.end(),
                             {"--idle", options.idle, "--log-level", "error",
                              "--safety-timeout-ms", std::to_string(kSafetyMs)});
  return must(Cluster::start(cluster), "start");
}

// Bytes per second delivered to every receiver; dies if any node misses a message.
double multicast_once(const Options& options, const std::string& mode,
                     const std::string& algorithm, std::uint64_t members, std::uint64_t size) {
  std::uint64_t messages = std::max<std::uint64_t>(2, options.run_mib * kMiB / size);
  std::uint64_t window = size <= 16 * kMiB ? 4 : 2;
  auto cluster = launch(
      options.rdmc_node, ids(members),
      {"--mode", mode, "--algorithm", algorithm, "--senders", "1", "--messages",
       std::to_string(messages), "--size-min", std::to_string(size), "--size-max",
       std::to_string(size), "--block-bytes", std::to_string(options.block_kib << 10),
       "--window", std::to_string(window), "--verify", "stamp"},
      options);
  if (Status status = cluster->go(); !status.is_ok()) die(status.to_string());
  std::uint64_t first_go = UINT64_MAX;
  std::uint64_t last_done = 0;
  for (std::size_t index = 0; index < cluster->size(); ++index) {
    auto result = must(cluster->wait_event(index, "result", kSafetyMs), mode + " result");
    if (result["delivered"]["1"] != messages || result.value("group_failed", false)) {
      die(fmt::format("{} {}: node {} result {}", mode, algorithm, cluster->id(index),
                      result.dump()));
    }
    first_go = std::min(first_go, result["go_us"].get<std::uint64_t>());
    last_done = std::max(last_done, result["done_us"].get<std::uint64_t>());
  }
  if (Status status = cluster->stop(60'000); !status.is_ok()) die(status.to_string());
  double seconds = static_cast<double>(last_done - first_go) / 1e6;
  return static_cast<double>(messages * size) / seconds;
}

double multicast_run(const Options& options, const std::string& mode,
                     const std::string& algorithm, std::uint64_t members, std::uint64_t size) {
  std::vector<double> rates;
  for (std::uint64_t run = 0; run < std::max<std::uint64_t>(1, options.repeat); ++run) {
    rates.push_back(multicast_once(options, mode, algorithm, members, size));
  }
  return median(rates);
}

double link_bandwidth(const Options& options) {
  progress("link: one RMA write stream, 1 MiB writes, 512 MiB");
  auto cluster = launch(options.sst_node, {1, 2},
                        {"--mode", "link", "--link-bytes", std::to_string(512 * kMiB),
                         "--write-bytes", std::to_string(kMiB), "--write-depth", "8",
                         "--heartbeat-ms", "50", "--failure-timeout-ms", "30000"},
                        options);
  if (Status status = cluster->go(); !status.is_ok()) die(status.to_string());
  auto result = must(cluster->wait_event(0, "result", kSafetyMs), "link result");
  if (Status status = cluster->stop(30'000); !status.is_ok()) die(status.to_string());
  double seconds = static_cast<double>(result["done_us"].get<std::uint64_t>() -
                                       result["go_us"].get<std::uint64_t>()) / 1e6;
  return static_cast<double>(result["bytes"].get<std::uint64_t>()) / seconds;
}

void print_header(const Options& options, double link) {
  std::printf("\n### RDMC throughput, one sender (tcp, loopback)\n\n");
  std::printf("Blocks of %llu KiB; MB/s delivered to every receiver; >= %llu MiB per run; "
              "median of %llu run(s). Single-link bandwidth (one RMA write stream): "
              "%.0f MB/s.\n\n",
              static_cast<unsigned long long>(options.block_kib),
              static_cast<unsigned long long>(options.run_mib),
              static_cast<unsigned long long>(options.repeat), link / 1e6);
  std::printf("| members | size (MiB) |");
  for (const std::string& algorithm : kAlgorithms) std::printf(" %s |", algorithm.c_str());
  std::printf(" p2p writes | best / p2p | best / link |\n|---:|---:|");
  for (std::size_t i = 0; i < kAlgorithms.size() + 3; ++i) std::printf("---:|");
  std::printf("\n");
}

void throughput_section(const Options& options) {
  double link = link_bandwidth(options);
  print_header(options, link);
  std::vector<std::uint64_t> sizes = options.sizes_mib;
  if (options.full) sizes.push_back(256);
  std::size_t runs = options.members.size() * sizes.size() * (kAlgorithms.size() + 1);
  std::size_t run = 0;
  for (std::uint64_t members : options.members) {
    for (std::uint64_t size_mib : sizes) {
      std::map<std::string, double> rates;
      for (const std::string& algorithm : kAlgorithms) {
        progress(fmt::format("{}/{}: {} members, {} MiB, {}", ++run, runs, members, size_mib,
                             algorithm));
        rates[algorithm] = multicast_run(options, "rdmc", algorithm, members, size_mib * kMiB);
        progress(fmt::format("  {:.0f} MB/s", rates[algorithm] / 1e6));
      }
      progress(fmt::format("{}/{}: {} members, {} MiB, p2p writes", ++run, runs, members,
                           size_mib));
      double p2p = multicast_run(options, "p2p", "sequential", members, size_mib * kMiB);
      double best = 0;
      std::printf("| %llu | %llu |", static_cast<unsigned long long>(members),
                  static_cast<unsigned long long>(size_mib));
      for (const std::string& algorithm : kAlgorithms) {
        std::printf(" %.0f |", rates[algorithm] / 1e6);
        best = std::max(best, rates[algorithm]);
      }
      std::printf(" %.0f | %.2f | %.2f |\n", p2p / 1e6, best / p2p, best / link);
      std::fflush(stdout);
    }
  }
}

Options parse(int argc, char** argv) {
  Options options;
  CLI::App app{"bench_rdmc: RDMC throughput over libfabric with member processes"};
  app.add_option("--rdmc-node", options.rdmc_node, "path of rdmc_node");
  app.add_option("--sst-node", options.sst_node, "path of sst_node (link bandwidth)");
  app.add_option("--sizes-mib", options.sizes_mib, "message sizes (MiB)")->delimiter(',');
  app.add_option("--members", options.members, "group sizes")->delimiter(',');
  app.add_flag("--full", options.full, "add 256 MiB messages (needs ~3 GiB of memory)");
  app.add_option("--run-mib", options.run_mib, "MiB multicast per run (at least 2 messages)");
  app.add_option("--block-kib", options.block_kib, "RDMC block size (KiB)");
  app.add_option("--idle", options.idle, "node idle policy: spin | yield | sleep");
  app.add_option("--repeat", options.repeat, "runs per cell (median reported)");
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
  std::ifstream loadavg("/proc/loadavg");
  std::string one, five, fifteen;
  loadavg >> one >> five >> fifteen;
  std::printf("## bench_rdmc\n\nLoad average at start: %s %s %s on %ld CPUs.\n", one.c_str(),
              five.c_str(), fifteen.c_str(), ::sysconf(_SC_NPROCESSORS_ONLN));
  throughput_section(options);
  return 0;
}
