// squalld: the Squall daemon (docs/consistency.md; configuration: docs/configuration.md).
//
//   squalld --config FILE [--set key.path=value ...]   run in the foreground
//   squalld --check-config FILE [--set ...]            print "ok" or the errors; exit 0 / 2
//
// Exit codes: 0 after a graceful stop (SIGTERM/SIGINT), 1 when the node could not start or
// left the group by itself, 2 for a bad command line or configuration.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/log.hpp"
#include "config/config.hpp"
#include "server/node.hpp"
#include "server/auth.hpp"
#include "server/signals.hpp"
#include "server/tls.hpp"

namespace {

using squall::server::DaemonSignal;

int check_config(const std::string& path, const std::vector<std::string>& overrides) {
  auto config = squall::config::load_config_file(path, overrides);
  if (!config) {
    std::cout << config.status().message() << "\n";
    return 2;
  }
  for (const std::string& warning : squall::config::config_warnings(config.value())) {
    std::cerr << "warning: " << warning << "\n";
  }
  std::cout << "ok\n";
  return 0;
}

// Runs until a stop signal or until the node leaves the group by itself.
int serve(squall::server::Node& node, const squall::config::Config& config) {
  auto log = squall::logger("squalld");
  bool notified = false;
  for (;;) {
    const DaemonSignal signal = squall::server::wait_for_signal(std::chrono::milliseconds(100));
    if (signal == DaemonSignal::terminate) {
      log->info("stop requested: leaving the group");
      break;
    }
    if (signal == DaemonSignal::reopen) {
      squall::Status reopened = squall::init_logging(config.logging.to_log_settings());
      if (!reopened.is_ok()) std::cerr << "log reopen: " << reopened.to_string() << "\n";
      log->info("log reopened");
      // New REST connections use the certificate files as they are now; open ones and the
      // cluster are untouched. A failed reload keeps the previous certificate (logged).
      if (config.rest.tls) (void)squall::server::reload_tls_contexts();
      // Token files are read again (rotation); roles and prefixes need a restart.
      if (config.auth.enabled()) (void)squall::server::reload_auth_sources();
    }
    if (auto reason = node.stopped_reason()) {
      log->error("out of the group ({}): exiting", *reason);
      node.shutdown();
      return 1;
    }
    if (!notified && node.ready()) {
      notified = true;
      squall::Status sent = squall::server::notify_service_manager("READY=1");
      if (!sent.is_ok()) log->warn("readiness notification: {}", sent.to_string());
      log->info("ready");
    }
  }
  (void)squall::server::notify_service_manager("STOPPING=1");
  node.shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"squalld: the Squall replicated key-value store daemon"};
  std::string config_path;
  std::string check_path;
  std::vector<std::string> overrides;
  auto* run = app.add_option("--config", config_path, "configuration file (YAML)");
  auto* check = app.add_option("--check-config", check_path, "validate a configuration file");
  run->excludes(check);
  app.add_option("--set", overrides, "override a configuration key: key.path=value");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? 0 : 2;
  }
  if (!check_path.empty()) return check_config(check_path, overrides);
  if (config_path.empty()) {
    std::cerr << "squalld: --config FILE or --check-config FILE is required\n";
    return 2;
  }
  // Before any thread starts, so every thread inherits the mask.
  squall::Status blocked = squall::server::block_daemon_signals();
  if (!blocked.is_ok()) {
    std::cerr << "squalld: " << blocked.to_string() << "\n";
    return 1;
  }
  auto config = squall::config::load_config_file(config_path, overrides);
  if (!config) {
    std::cerr << config.status().message() << "\n";
    return 2;
  }
  squall::Status logging = squall::init_logging(config->logging.to_log_settings());
  if (!logging.is_ok()) {
    std::cerr << "squalld: logging: " << logging.to_string() << "\n";
    return 2;
  }
  auto log = squall::logger("squalld");
  for (const std::string& warning : squall::config::config_warnings(config.value())) {
    log->warn("configuration: {}", warning);
  }
  auto node = squall::server::Node::start(config.value(), {});
  if (!node) {
    log->critical("cannot start: {}", node.status().to_string());
    return 1;
  }
  const int code = serve(*node.value(), config.value());
  node.value().reset();
  spdlog::shutdown();
  return code;
}
