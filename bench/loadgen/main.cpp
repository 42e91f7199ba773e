// squall-loadgen: HTTP load against Squall's REST API or etcd's JSON gateway; see
// docs/performance.md. `squall-loadgen --help`, `squall-loadgen compare --help`.
#include <cstdio>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "bench/bench_util.hpp"
#include "bench/loadgen/report.hpp"
#include "bench/loadgen/runner.hpp"
#include "bench/loadgen/watch.hpp"

namespace {

using namespace squall::loadgen;
constexpr const char* kProgram = "squall-loadgen";

struct Cli {
  LoadOptions load;
  WatchOptions watch;
  std::string target = "squall";
  std::string endpoints;
  std::string mix = "put:100";
  std::string json_path;
  bool preload = false;
  bool quiet = false;
  // compare
  std::string label;
  std::string squall_json;
  std::string etcd_json;
  bool header = false;
};

void add_load_options(CLI::App& app, Cli& cli) {
  LoadOptions& load = cli.load;
  app.add_option("--target", cli.target, "squall or etcd")->capture_default_str();
  app.add_option("--endpoints", cli.endpoints, "host:port[,host:port...]")->required();
  app.add_option("--connections,-c", load.connections, "connections")->capture_default_str();
  app.add_option("--threads", load.threads, "event-loop threads")->capture_default_str();
  app.add_option("--rate", load.rate_per_s,
                 "requests/s in total (open loop); 0: closed loop")->capture_default_str();
  app.add_option("--mix", cli.mix, "op:weight,... (put, get, stable_get, cas)")
      ->capture_default_str();
  app.add_option("--keys", load.keyspace, "key-space size")->capture_default_str();
  app.add_option("--key-bytes", load.key_bytes, "key size")->capture_default_str();
  app.add_option("--value-bytes", load.value_bytes, "value size")->capture_default_str();
  app.add_option("--prefix", load.key_prefix, "key prefix")->capture_default_str();
  app.add_option("--duration", load.duration_s, "measured seconds")->capture_default_str();
  app.add_option("--requests", load.requests, "measured requests (instead of a duration)");
  app.add_option("--warmup", load.warmup_s, "warmup seconds")->capture_default_str();
  app.add_option("--timeout-ms", load.timeout_ms, "per request")->capture_default_str();
  app.add_option("--max-backlog", load.max_backlog, "open loop queue")->capture_default_str();
  app.add_option("--seed", load.seed, "random seed")->capture_default_str();
  app.add_flag("--preload", cli.preload, "put every key once before the run");
  app.add_option("--watchers", cli.watch.watchers,
                 "watch mode: this many watch streams on --prefix (needs --rate)");
  app.add_option("--watcher-threads", cli.watch.watcher_threads, "watch mode threads")
      ->capture_default_str();
  app.add_option("--json", cli.json_path, "write the result as JSON to this file");
  app.add_flag("--quiet,-q", cli.quiet, "no progress lines");
}

void write_json(const std::string& path, const nlohmann::json& result) {
  if (path.empty()) return;
  std::ofstream out(path);
  out << result.dump(2) << "\n";
  if (!out) squall::bench::die(kProgram, "cannot write " + path);
}

void preload(const LoadOptions& base) {
  LoadOptions options = base;
  options.sequential_keys = true;
  options.mix = {100, 0, 0, 0};
  options.progress_label = "preload";
  const auto result = squall::bench::must(kProgram, run_load(options), "preload");
  if (result.error_count() > 0 || result.ok_total != base.keyspace) {
    squall::bench::die(kProgram, fmt::format("preload: {} of {} keys written, {} errors",
                                             result.ok_total, base.keyspace,
                                             result.error_count()));
  }
  squall::bench::progress(kProgram, fmt::format("preloaded {} keys", base.keyspace));
}

int run(Cli& cli, bool watch_mode) {
  LoadOptions& load = cli.load;
  load.target = squall::bench::must(kProgram, parse_target(cli.target), "--target");
  load.endpoints = squall::bench::must(kProgram, parse_endpoints(cli.endpoints), "--endpoints");
  load.mix = squall::bench::must(kProgram, parse_mix(cli.mix), "--mix");
  load.progress = !cli.quiet;
  if (cli.preload) {
    preload(load);
    load.check_get_values = true;
  }
  if (watch_mode) {
    cli.watch.writer = load;
    const auto result = squall::bench::must(kProgram, run_watch(cli.watch), "watch");
    std::cout << watch_table(cli.watch, result);
    write_json(cli.json_path, watch_json(cli.watch, result));
    return 0;
  }
  const auto result = squall::bench::must(kProgram, run_load(load), "load");
  std::cout << load_table(load, result);
  write_json(cli.json_path, load_json(load, result));
  return 0;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) squall::bench::die(kProgram, "cannot read " + path);
  auto parsed = nlohmann::json::parse(in, nullptr, false);
  if (parsed.is_discarded()) squall::bench::die(kProgram, path + " is not JSON");
  return parsed;
}

int compare(const Cli& cli) {
  const nlohmann::json squall_result = read_json(cli.squall_json);
  const nlohmann::json etcd_result = read_json(cli.etcd_json);
  if (cli.header) std::cout << comparison_header(squall_result.value("mode", "") == "watch");
  std::cout << squall::bench::must(kProgram,
                                   comparison_row(cli.label, squall_result, etcd_result),
                                   "compare");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli;
  CLI::App app{"squall-loadgen: HTTP load against Squall or etcd (docs/performance.md)"};
  app.require_subcommand(1, 1);
  CLI::App* load = app.add_subcommand("run", "run a load (watch mode with --watchers)");
  add_load_options(*load, cli);
  CLI::App* cmp = app.add_subcommand("compare", "one markdown row: squall vs etcd results");
  cmp->add_option("--label", cli.label, "the row's workload label")->required();
  cmp->add_option("--squall", cli.squall_json, "Squall's JSON result")->required();
  cmp->add_option("--etcd", cli.etcd_json, "etcd's JSON result")->required();
  cmp->add_flag("--header", cli.header, "print the table header first");
  CLI11_PARSE(app, argc, argv);
  if (cmp->parsed()) return compare(cli);
  return run(cli, cli.watch.watchers > 0 && load->count("--watchers") > 0);
}
