// Logging on spdlog with one named logger per module ("fabric", "sst", "core", ...).
//
// init_logging() is called once at start-up from the configuration; modules then call
// logger("fabric") and keep the shared_ptr. Levels are per module, with a default.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "common/status.hpp"

namespace squall {

struct LogSettings {
  std::string level = "info";                    // default level for every module
  std::map<std::string, std::string> modules;    // module name -> level override
  std::string file;                              // empty: stderr
};

// Parses "trace", "debug", "info", "warn", "error", "critical", "off".
Result<spdlog::level::level_enum> parse_log_level(std::string_view name);

// Applies settings to every existing and future module logger. Safe to call again (reopen on
// SIGHUP). Returns an error if a level name is unknown or the file cannot be opened.
Status init_logging(const LogSettings& settings);

// The logger of a module, created on first use with the configured level.
std::shared_ptr<spdlog::logger> logger(std::string_view module);

}  // namespace squall
