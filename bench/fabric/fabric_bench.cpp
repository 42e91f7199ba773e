// bench_fabric: LibfabricTransport RMA write latency and bandwidth between two processes on
// loopback, side by side with libfabric's own fi_pingpong for the same sizes.
//
//   bench_fabric [--sizes 8,64,...] [--iterations N] [--provider tcp] [--domain lo]
//                [--no-pingpong]
//
// The process re-executes itself as the echo server (--role server) and drives it through
// stdin/stdout and transport messages. Measurements, for each size:
//   latency   write ping-pong: the client writes `size` bytes whose last 8 hold a sequence
//             number; the server polls its memory for it and writes the same bytes back; the
//             client polls for the echo. One-way latency = round trip / 2.
//   pp MB/s   size / one-way latency, the same formula fi_pingpong prints (MB = 10^6 bytes).
//   stream    back-to-back writes with up to tx_depth in flight, from the first post to the
//             last completion (a completion means the bytes are at the peer).
// fi_pingpong runs with `-p <provider> -e msg -d <domain>` (two-sided messages).
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench/fabric/fabric_bench_process.hpp"
#include "common/log.hpp"
#include "fabric/libfabric.hpp"

namespace squall::fabric::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr std::size_t kRegionBytes = 8 << 20;
constexpr std::size_t kSourceOffset = 4 << 20;  // client: where its outgoing bytes live
constexpr std::size_t kMaxSize = 4 << 20;
constexpr auto kSafetyTimeout = std::chrono::seconds(120);

struct Config {
  std::vector<std::size_t> sizes = {8, 64, 512, 4096, 32768, 262144, 1 << 20, 4 << 20};
  std::size_t iterations = 1000;
  std::string provider = "tcp";
  std::string domain = "lo";
  bool pingpong = true;
  bool server = false;
};

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "bench_fabric: %s\n", why.c_str());
  std::exit(1);
}

// Iterations for one size: fewer for large transfers so every size takes similar time.
std::size_t iterations_for(const Config& config, std::size_t size) {
  std::size_t budget = (std::size_t{256} << 20) / size;
  return std::clamp<std::size_t>(budget, 20, config.iterations);
}

std::uint64_t load_word(std::byte* at) {
  return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(at))
      .load(std::memory_order_acquire);
}
void store_word(std::byte* at, std::uint64_t value) {
  std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(at))
      .store(value, std::memory_order_release);
}

class Endpoint {
 public:
  Endpoint(const Config& config, std::uint32_t id) : memory_(kRegionBytes) {
    LibfabricOptions options;
    options.node_id = NodeId(id);
    options.provider = config.provider;
    options.domain = config.domain;
    auto created = LibfabricTransport::create(options);
    if (!created) die("create: " + created.status().to_string());
    transport_ = std::move(created).value();
    Status registered = transport_->register_region(1, memory_);
    if (!registered) die("register: " + registered.to_string());
  }

  LibfabricTransport& transport() { return *transport_; }
  std::byte* memory() { return memory_.data(); }
  NodeId peer() const { return peer_; }

  void connect(NodeId peer, std::uint16_t port) {
    peer_ = peer;
    Status added = transport_->add_peer(peer, {"127.0.0.1", port});
    if (!added) die("add_peer: " + added.to_string());
    wait([&] { return connected_; });
  }

  // Polls until `done`; records events on the way.
  template <typename Done>
  void wait(Done done) {
    auto deadline = SteadyClock::now() + kSafetyTimeout;
    while (!done()) {
      poll();
      if (SteadyClock::now() > deadline) die("no progress for two minutes");
    }
  }

  void poll() {
    events_.clear();
    transport_->poll(events_, 256);
    for (Event& event : events_) {
      if (event.kind == EventKind::peer_connected) connected_ = true;
      if (event.kind == EventKind::peer_failed) die("peer failed: " + event.status.to_string());
      if (event.kind == EventKind::write_completed) ++completions_;
      if (event.kind == EventKind::message) messages_.push_back(std::move(event.payload));
    }
  }

  void write(const WriteRequest& request) {
    wait([&] {
      Status status = transport_->write(request);
      if (status.is_ok()) return true;
      if (status.code() != Code::would_block) die("write: " + status.to_string());
      return false;
    });
  }

  void send(const std::string& text) {
    wait([&] {
      Status status = transport_->send(peer_, as_bytes(text));
      if (status.is_ok()) return true;
      if (status.code() != Code::would_block) die("send: " + status.to_string());
      return false;
    });
  }

  std::string receive() {
    wait([&] { return !messages_.empty(); });
    std::string text(as_string_view(messages_.front()));
    messages_.erase(messages_.begin());
    return text;
  }

  std::uint64_t completions() const { return completions_; }

 private:
  std::vector<std::byte> memory_;
  std::unique_ptr<LibfabricTransport> transport_;
  NodeId peer_;
  bool connected_ = false;
  std::uint64_t completions_ = 0;
  std::vector<Event> events_;
  std::vector<Bytes> messages_;
};

// ---- server: echoes ping-pong writes, polls through streams -----------------------------------

void serve(const Config& config) {
  Endpoint endpoint(config, 2);
  std::printf("PORT %u\n", endpoint.transport().bootstrap_port());
  std::fflush(stdout);
  unsigned peer_port = 0;
  if (std::scanf("%u", &peer_port) != 1) die("server: no client port on stdin");
  endpoint.connect(NodeId(1), static_cast<std::uint16_t>(peer_port));
  while (true) {
    std::istringstream command(endpoint.receive());
    std::string verb;
    std::size_t size = 0;
    std::uint64_t first = 0;
    std::uint64_t last = 0;
    command >> verb >> size >> first >> last;
    if (verb == "quit") return;
    if (verb == "ping") {
      std::byte* word = endpoint.memory() + size - 8;
      for (std::uint64_t sequence = first; sequence <= last; ++sequence) {
        endpoint.wait([&] { return load_word(word) == sequence; });
        endpoint.write({endpoint.peer(), 1, 0, 1, 0, size, 0, std::nullopt});
      }
    }
    // "stream": nothing to do but make progress until the client says it is over.
    endpoint.send("ready");
  }
}

// ---- client ------------------------------------------------------------------------------------

// Sequence numbers grow across the whole run, so a word left by an earlier size never
// matches the number awaited now.
std::uint64_t next_sequence = 1;

double write_pingpong_us(Endpoint& endpoint, std::size_t size, std::size_t iterations) {
  std::uint64_t first = next_sequence;
  next_sequence += iterations;
  endpoint.send(fmt::format("ping {} {} {}", size, first, next_sequence - 1));
  std::byte* source = endpoint.memory() + kSourceOffset;
  std::byte* echo_word = endpoint.memory() + size - 8;
  std::size_t warmup = std::max<std::size_t>(1, iterations / 10);
  SteadyClock::time_point start;
  for (std::uint64_t i = 0; i < iterations; ++i) {
    if (i == warmup) start = SteadyClock::now();
    std::uint64_t sequence = first + i;
    store_word(source + size - 8, sequence);
    endpoint.write({endpoint.peer(), 1, kSourceOffset, 1, 0, size, 0, std::nullopt});
    endpoint.wait([&] { return load_word(echo_word) == sequence; });
  }
  double total_us =
      std::chrono::duration<double, std::micro>(SteadyClock::now() - start).count();
  if (endpoint.receive() != "ready") die("server out of step");
  return total_us / static_cast<double>(2 * (iterations - warmup));
}

double write_stream_mb_per_s(Endpoint& endpoint, std::size_t size) {
  std::size_t count = std::clamp<std::size_t>((std::size_t{256} << 20) / size, 500, 100'000);
  std::uint64_t first = endpoint.completions();
  auto start = SteadyClock::now();
  for (std::size_t i = 0; i < count; ++i) {
    endpoint.write({endpoint.peer(), 1, kSourceOffset, 1, 0, size, i + 1, std::nullopt});
  }
  endpoint.wait([&] { return endpoint.completions() - first == count; });
  double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  endpoint.send("stream 0 0 0");
  if (endpoint.receive() != "ready") die("server out of step");
  return static_cast<double>(size * count) / seconds / 1e6;
}

struct Row {
  std::size_t size = 0;
  double latency_us = 0;
  double stream_mb_per_s = 0;
  std::optional<PingpongResult> reference;
};

std::string ratio(double ours, std::optional<double> theirs) {
  if (!theirs || *theirs <= 0) return "-";
  return fmt::format("{:.2f}", ours / *theirs);
}

void print_table(const std::vector<Row>& rows, const Config& config) {
  std::printf("\nRMA writes over libfabric %s (domain %s), two processes; fi_pingpong uses "
              "-e msg (send/recv)\n", config.provider.c_str(), config.domain.c_str());
  std::printf("%10s %12s %12s %7s %12s %12s %7s %14s\n", "size", "lat us", "fi_pp us",
              "ratio", "pp MB/s", "fi_pp MB/s", "ratio", "stream MB/s");
  for (const Row& row : rows) {
    double pp_mb = static_cast<double>(row.size) / row.latency_us;
    std::optional<double> ref_latency;
    std::optional<double> ref_mb;
    if (row.reference) {
      // fi_pingpong's own MB/sec column is rounded to 0.01; same formula, unrounded.
      ref_latency = row.reference->latency_us;
      ref_mb = static_cast<double>(row.size) / row.reference->latency_us;
    }
    std::printf("%10zu %12.2f %12s %7s %12.2f %12s %7s %14.1f\n", row.size, row.latency_us,
                ref_latency ? fmt::format("{:.2f}", *ref_latency).c_str() : "-",
                ratio(row.latency_us, ref_latency).c_str(), pp_mb,
                ref_mb ? fmt::format("{:.2f}", *ref_mb).c_str() : "-",
                ratio(pp_mb, ref_mb).c_str(), row.stream_mb_per_s);
  }
  std::printf("ratio: ours / fi_pingpong (latency: lower is better; MB/s: higher is better)\n");
}

void run_client(const Config& config, const char* self_path) {
  Endpoint endpoint(config, 1);
  ChildProcess server({self_path, "--role", "server", "--provider", config.provider,
                       "--domain", config.domain});
  std::string port_line = server.read_line();
  if (port_line.rfind("PORT ", 0) != 0) die("server said: " + port_line);
  server.write_line(std::to_string(endpoint.transport().bootstrap_port()));
  endpoint.connect(NodeId(2), static_cast<std::uint16_t>(std::stoul(port_line.substr(5))));

  std::vector<Row> rows;
  for (std::size_t index = 0; index < config.sizes.size(); ++index) {
    Row row;
    row.size = config.sizes[index];
    std::size_t iterations = iterations_for(config, row.size);
    std::fprintf(stderr, "\r[%zu/%zu] %zu bytes: write ping-pong x%zu...          ", index + 1,
                 config.sizes.size(), row.size, iterations);
    row.latency_us = write_pingpong_us(endpoint, row.size, iterations);
    std::fprintf(stderr, "\r[%zu/%zu] %zu bytes: write stream...                 ", index + 1,
                 config.sizes.size(), row.size);
    row.stream_mb_per_s = write_stream_mb_per_s(endpoint, row.size);
    if (config.pingpong) {
      std::fprintf(stderr, "\r[%zu/%zu] %zu bytes: fi_pingpong x%zu...             ",
                   index + 1, config.sizes.size(), row.size, iterations);
      row.reference = run_fi_pingpong(config.provider, config.domain, row.size, iterations);
    }
    rows.push_back(row);
  }
  std::fprintf(stderr, "\rdone.%60s\n", "");
  endpoint.send("quit 0 0 0");
  server.wait();
  print_table(rows, config);
}

Config parse(int argc, char** argv) {
  Config config;
  for (int i = 1; i < argc; ++i) {
    std::string key = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value for " + key);
      return argv[++i];
    };
    if (key == "--role") config.server = value() == "server";
    else if (key == "--provider") config.provider = value();
    else if (key == "--domain") config.domain = value();
    else if (key == "--iterations") config.iterations = std::stoul(value());
    else if (key == "--no-pingpong") config.pingpong = false;
    else if (key == "--sizes") {
      config.sizes.clear();
      std::istringstream list(value());
      std::string item;
      while (std::getline(list, item, ',')) config.sizes.push_back(std::stoul(item));
    } else {
      die("unknown option " + key + " (see the comment at the top of fabric_bench.cpp)");
    }
  }
  for (std::size_t size : config.sizes) {
    if (size < 8 || size > kMaxSize) die(fmt::format("size {} outside 8..{}", size, kMaxSize));
  }
  if (config.iterations < 20) die("--iterations must be at least 20");
  return config;
}

}  // namespace
}  // namespace squall::fabric::bench

int main(int argc, char** argv) {
  using namespace squall::fabric::bench;
  Config config = parse(argc, argv);
  squall::LogSettings quiet;
  quiet.level = "warn";
  (void)squall::init_logging(quiet);
  if (config.server) {
    serve(config);
  } else {
    run_client(config, argv[0]);
  }
  return 0;
}
