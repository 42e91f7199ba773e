// The request load: N keep-alive HTTP/1.1 connections spread over one or more event-loop
// threads (each thread its own io_context, connections and statistics, merged at the end),
// closed loop or fixed-rate open loop; see LoadOptions.
#pragma once

#include "bench/loadgen/options.hpp"

namespace squall::loadgen {

Status validate(const LoadOptions& options);

// Connects every connection (an error if any endpoint refuses), runs the load, and returns
// the merged statistics. Transport failures during the run are counted as errors by kind
// ("timeout", "io: <reason>", "connect: <reason>") and the connection reconnects after
// reconnect_delay_ms; the run never stops early because of them.
Result<LoadResult> run_load(const LoadOptions& options);

// The key of an index: key_prefix + the index zero-padded to key_bytes in total.
std::string key_for(const LoadOptions& options, std::uint64_t index);

}  // namespace squall::loadgen
