// The load generator's options and results, shared by the request runner (runner.hpp), the
// watch runner (watch.hpp) and the report (report.hpp).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "bench/loadgen/dialect.hpp"
#include "bench/loadgen/histogram.hpp"

namespace squall::loadgen {

using Clock = std::chrono::steady_clock;

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  std::string to_string() const { return host + ":" + std::to_string(port); }
};
// "host:port[,host:port...]".
Result<std::vector<Endpoint>> parse_endpoints(std::string_view text);
// "put:50,get:50" -> weights per OpKind (at least one positive).
Result<std::array<std::uint32_t, kOpKinds>> parse_mix(std::string_view text);

struct LoadOptions {
  Target target = Target::squall;
  std::vector<Endpoint> endpoints;  // connections go round-robin over them
  int threads = 1;  // 1..16 event loops (at most one per connection), connections split
  int connections = 16;             // 1..20000
  // 0: closed loop (each connection sends its next request when the previous one is
  // answered). > 0: open loop at this many requests per second in total; latency is measured
  // from each request's intended send time, so queueing behind a slow server is counted.
  double rate_per_s = 0;
  // Weights by OpKind. A cas expects the version its event loop last saw for the key (0 if
  // none: "absent"); a lost race (412 / failed txn) teaches it the current one. With at least
  // as many keys as connections, each connection's cas ops use its own slice of the keys.
  std::array<std::uint32_t, kOpKinds> mix{100, 0, 0, 0};
  std::uint64_t keyspace = 10000;  // keys <key_prefix><index>, index uniform in [0, keyspace)
  std::size_t key_bytes = 16;      // keys are zero-padded to this length (at least the index)
  std::size_t value_bytes = 100;
  std::string key_prefix = "lg/";
  double duration_s = 10;     // measured time after the warmup (ignored when requests > 0)
  std::uint64_t requests = 0; // > 0: stop after this many measured requests
  double warmup_s = 1;        // requests started during the warmup are not recorded
  std::uint32_t timeout_ms = 10000;   // per request; a timeout is an error ("timeout")
  std::size_t max_backlog = 100000;   // open loop: intended sends waiting for a connection
  std::uint32_t reconnect_delay_ms = 100;
  std::uint64_t seed = 1;
  // Every key once, in index order, then stop (requests = keyspace, no warmup): preloading.
  bool sequential_keys = false;
  // Gets check the value length against value_bytes (preloaded keys).
  bool check_get_values = false;
  // Values start with the send time (16 decimal digits of steady-clock ns): watch mode.
  bool stamp_values = false;
  bool progress = true;  // a line per second on stderr
  std::string progress_label = "loadgen";
  // Appended to each progress line (watch mode: delivered events).
  std::function<std::string()> progress_extra;
};

struct OpStats {
  LatencyHistogram latency;  // answered requests (ok, not_found, cas_conflict)
  std::uint64_t ok = 0;
  std::uint64_t not_found = 0;
  std::uint64_t cas_conflict = 0;
  void merge(const OpStats& other);
};

struct LoadResult {
  std::array<OpStats, kOpKinds> ops;
  std::map<std::string, std::uint64_t> errors;  // by kind, measured window and warmup alike
  std::uint64_t warmup_requests = 0;            // answered during the warmup, not recorded
  std::uint64_t ok_total = 0;                   // ok answers including the warmup
  std::size_t backlog_peak = 0;                 // open loop: deepest backlog seen
  double elapsed_s = 0;                         // the measured window
  Clock::time_point measure_start;
  std::uint64_t answered() const;  // recorded answers of every kind
  std::uint64_t error_count() const;
};

// A value's send-time stamp, or none when it has none.
std::optional<std::int64_t> stamp_of(std::string_view value);
std::int64_t now_stamp_ns();

}  // namespace squall::loadgen
