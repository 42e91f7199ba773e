// Watch mode: W watchers hold a watch stream each on one prefix (spread round-robin over the
// endpoints), then a writer puts stamped values under that prefix at a fixed rate (the
// request runner in open loop). Each delivered event's latency is its arrival time minus the
// stamp (the writer's send time; same process, same steady clock).
#pragma once

#include "bench/loadgen/options.hpp"

namespace squall::loadgen {

struct WatchOptions {
  // The writer: target, endpoints, rate_per_s (> 0), duration, warmup, value_bytes,
  // key_prefix (the watched prefix), connections. stamp_values and the mix are set here.
  LoadOptions writer;
  int watchers = 1;         // 1..20000
  int watcher_threads = 1;  // 1..16
  double drain_s = 3;       // after the writer stops, the longest wait for the last events
  std::uint32_t setup_timeout_ms = 30000;  // every stream established, or the run fails
};

struct WatchResult {
  LoadResult writes;
  LatencyHistogram latency;          // events of puts sent in the measured window
  std::uint64_t events = 0;          // every event delivered to every watcher
  std::uint64_t events_measured = 0; // those in `latency`
  std::uint64_t expected_events = 0; // acknowledged puts x watchers
  double events_per_s = 0;           // events_measured / the writer's measured window
  std::map<std::string, std::uint64_t> errors;  // watch streams that failed, by kind
};

Status validate(const WatchOptions& options);
Result<WatchResult> run_watch(WatchOptions options);

}  // namespace squall::loadgen
