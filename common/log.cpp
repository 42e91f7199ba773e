#include "common/log.hpp"

#include <mutex>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace squall {
namespace {

struct LogState {
  std::mutex mutex;
  LogSettings settings;
  spdlog::sink_ptr sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
};

LogState& state() {
  static LogState s;
  return s;
}

spdlog::level::level_enum level_for(const LogSettings& settings, const std::string& module) {
  auto it = settings.modules.find(module);
  auto level = parse_log_level(it != settings.modules.end() ? it->second : settings.level);
  return level.is_ok() ? level.value() : spdlog::level::info;
}

void configure(spdlog::logger& log, const LogState& s) {
  log.sinks().assign(1, s.sink);
  log.set_level(level_for(s.settings, log.name()));
  log.set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%l%$ [%n] %v", spdlog::pattern_time_type::utc);
  log.flush_on(spdlog::level::warn);
}

}  // namespace

Result<spdlog::level::level_enum> parse_log_level(std::string_view name) {
  static constexpr std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},   {"critical", spdlog::level::critical},
      {"off", spdlog::level::off}};
  for (const auto& [text, level] : kLevels) {
    if (text == name) return level;
  }
  return invalid_argument(fmt::format(
      "unknown log level '{}' (allowed: trace, debug, info, warn, error, critical, off)", name));
}

Status init_logging(const LogSettings& settings) {
  SQUALL_TRY(parse_log_level(settings.level).status());
  for (const auto& [module, level] : settings.modules) {
    SQUALL_TRY(parse_log_level(level).status().with_context("logging.modules." + module));
  }
  spdlog::sink_ptr sink;
  if (settings.file.empty()) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    try {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(settings.file);
    } catch (const spdlog::spdlog_ex& error) {
      return io_error(fmt::format("cannot open log file '{}': {}", settings.file, error.what()));
    }
  }
  LogState& s = state();
  std::lock_guard lock(s.mutex);
  s.settings = settings;
  s.sink = std::move(sink);
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& log) { configure(*log, s); });
  return Status::ok();
}

std::shared_ptr<spdlog::logger> logger(std::string_view module) {
  LogState& s = state();
  std::lock_guard lock(s.mutex);
  std::string name(module);
  if (auto existing = spdlog::get(name)) return existing;
  auto created = std::make_shared<spdlog::logger>(name, s.sink);
  configure(*created, s);
  spdlog::register_logger(created);
  return created;
}

}  // namespace squall
