#include "bench/loadgen/report.hpp"

#include <fmt/format.h>

namespace squall::loadgen {

using nlohmann::json;

namespace {

double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }

json errors_json(const std::map<std::string, std::uint64_t>& errors) {
  json out = json::object();
  for (const auto& [kind, count] : errors) out[kind] = count;
  return out;
}

std::string latency_cells(const LatencyHistogram& h) {
  return fmt::format("{:>9.3f} {:>9.3f} {:>9.3f} {:>9.3f} {:>9.3f}", ms(h.quantile_ns(0.5)),
                     ms(h.quantile_ns(0.9)), ms(h.quantile_ns(0.99)), ms(h.quantile_ns(0.999)),
                     ms(h.max_ns()));
}

std::string errors_text(const std::map<std::string, std::uint64_t>& errors) {
  if (errors.empty()) return "errors: none\n";
  std::string text = "errors:\n";
  for (const auto& [kind, count] : errors) text += fmt::format("  {:>10}  {}\n", count, kind);
  return text;
}

std::string mix_text(const LoadOptions& options) {
  std::string text;
  for (int i = 0; i < kOpKinds; ++i) {
    const std::uint32_t weight = options.mix[static_cast<std::size_t>(i)];
    if (weight == 0) continue;
    if (!text.empty()) text += ",";
    text += fmt::format("{}:{}", op_name(static_cast<OpKind>(i)), weight);
  }
  return text;
}

json options_json(const LoadOptions& options) {
  json endpoints = json::array();
  for (const Endpoint& endpoint : options.endpoints) endpoints.push_back(endpoint.to_string());
  return {{"target", target_name(options.target)}, {"endpoints", endpoints},
          {"threads", options.threads}, {"connections", options.connections},
          {"rate_per_s", options.rate_per_s}, {"mix", mix_text(options)},
          {"keyspace", options.keyspace}, {"key_bytes", options.key_bytes},
          {"value_bytes", options.value_bytes}, {"duration_s", options.duration_s},
          {"requests", options.requests}, {"warmup_s", options.warmup_s},
          {"timeout_ms", options.timeout_ms}};
}

LatencyHistogram all_latency(const LoadResult& result) {
  LatencyHistogram all;
  for (const OpStats& op : result.ops) all.merge(op.latency);
  return all;
}

double per_s(std::uint64_t count, double elapsed_s) {
  return elapsed_s > 0 ? static_cast<double>(count) / elapsed_s : 0.0;
}

}  // namespace

json latency_json(const LatencyHistogram& h) {
  return {{"count", h.count()},           {"p50", ms(h.quantile_ns(0.5))},
          {"p90", ms(h.quantile_ns(0.9))}, {"p99", ms(h.quantile_ns(0.99))},
          {"p99_9", ms(h.quantile_ns(0.999))}, {"max", ms(h.max_ns())},
          {"mean", h.mean_ns() / 1e6}};
}

json load_json(const LoadOptions& options, const LoadResult& result) {
  json ops = json::object();
  for (int i = 0; i < kOpKinds; ++i) {
    const OpStats& op = result.ops[static_cast<std::size_t>(i)];
    if (op.latency.count() == 0) continue;
    ops[std::string(op_name(static_cast<OpKind>(i)))] = {
        {"count", op.latency.count()},        {"ok", op.ok},
        {"not_found", op.not_found},           {"cas_conflict", op.cas_conflict},
        {"ops_per_s", per_s(op.latency.count(), result.elapsed_s)},
        {"latency_ms", latency_json(op.latency)}};
  }
  return {{"mode", "load"},
          {"options", options_json(options)},
          {"elapsed_s", result.elapsed_s},
          {"ops_per_s", per_s(result.answered(), result.elapsed_s)},
          {"latency_ms", latency_json(all_latency(result))},
          {"ops", ops},
          {"warmup_requests", result.warmup_requests},
          {"backlog_peak", result.backlog_peak},
          {"error_count", result.error_count()},
          {"errors", errors_json(result.errors)}};
}

json watch_json(const WatchOptions& options, const WatchResult& result) {
  json out = load_json(options.writer, result.writes);
  out["mode"] = "watch";
  std::uint64_t watch_errors = 0;
  for (const auto& [kind, count] : result.errors) watch_errors += count;
  out["watch"] = {{"watchers", options.watchers},
                  {"events", result.events},
                  {"events_measured", result.events_measured},
                  {"expected_events", result.expected_events},
                  {"missing_events", result.expected_events > result.events
                                         ? result.expected_events - result.events
                                         : 0},
                  {"events_per_s", result.events_per_s},
                  {"latency_ms", latency_json(result.latency)},
                  {"error_count", watch_errors},
                  {"errors", errors_json(result.errors)}};
  return out;
}

std::string load_table(const LoadOptions& options, const LoadResult& result) {
  std::string text = fmt::format(
      "target {} | {} connections, {} thread(s), {} | mix {} | keys {} x {} B, values {} B\n",
      target_name(options.target), options.connections, options.threads,
      options.rate_per_s > 0 ? fmt::format("open loop {:.0f}/s", options.rate_per_s)
                             : std::string("closed loop"),
      mix_text(options), options.keyspace, options.key_bytes, options.value_bytes);
  text += fmt::format("measured {:.2f} s after {} warmup answers\n\n", result.elapsed_s,
                      result.warmup_requests);
  text += fmt::format("{:<11} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}   (latency ms)\n", "op",
                      "count", "ops/s", "p50", "p90", "p99", "p99.9", "max");
  for (int i = 0; i < kOpKinds; ++i) {
    const OpStats& op = result.ops[static_cast<std::size_t>(i)];
    if (op.latency.count() == 0) continue;
    text += fmt::format("{:<11} {:>9} {:>10.0f} {}", op_name(static_cast<OpKind>(i)),
                        op.latency.count(), per_s(op.latency.count(), result.elapsed_s),
                        latency_cells(op.latency));
    if (op.not_found > 0) text += fmt::format("  not_found {}", op.not_found);
    if (op.cas_conflict > 0) text += fmt::format("  cas_conflict {}", op.cas_conflict);
    text += "\n";
  }
  const LatencyHistogram all = all_latency(result);
  text += fmt::format("{:<11} {:>9} {:>10.0f} {}\n", "all", all.count(),
                      per_s(all.count(), result.elapsed_s), latency_cells(all));
  if (options.rate_per_s > 0) text += fmt::format("backlog peak {}\n", result.backlog_peak);
  return text + errors_text(result.errors);
}

std::string watch_table(const WatchOptions& options, const WatchResult& result) {
  std::string text = fmt::format("watch: {} watchers on prefix '{}'\n", options.watchers,
                                 options.writer.key_prefix);
  text += load_table(options.writer, result.writes);
  text += fmt::format("\nevents delivered {} of {} expected ({} in the measured window, "
                      "{:.0f} events/s)\n",
                      result.events, result.expected_events, result.events_measured,
                      result.events_per_s);
  text += fmt::format("{:<11} {:>9} {:>9} {:>9} {:>9} {:>9}   (put -> event, ms)\n", "", "p50",
                      "p90", "p99", "p99.9", "max");
  text += fmt::format("{:<11} {}\n", "event", latency_cells(result.latency));
  return text + "watch " + errors_text(result.errors);
}

}  // namespace squall::loadgen
