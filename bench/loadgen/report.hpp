// Results as a human-readable table (stdout) and as JSON (--json FILE), and the side-by-side
// comparison of two JSON results that bench/vs_etcd/run.sh prints.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "bench/loadgen/options.hpp"
#include "bench/loadgen/watch.hpp"

namespace squall::loadgen {

// {"p50","p90","p99","p99_9","max","mean"} in milliseconds, and "count".
nlohmann::json latency_json(const LatencyHistogram& histogram);

nlohmann::json load_json(const LoadOptions& options, const LoadResult& result);
nlohmann::json watch_json(const WatchOptions& options, const WatchResult& result);

std::string load_table(const LoadOptions& options, const LoadResult& result);
std::string watch_table(const WatchOptions& options, const WatchResult& result);

// The markdown header and one row comparing two results of the same workload (a squall and
// an etcd JSON from load_json/watch_json): throughput, p50, p99, p99.9 and errors side by
// side with the ratio squall/etcd.
std::string comparison_header(bool watch);
Result<std::string> comparison_row(const std::string& label, const nlohmann::json& squall,
                                   const nlohmann::json& etcd);

}  // namespace squall::loadgen
