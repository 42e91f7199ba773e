#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "common/log.hpp"

using namespace squall;

TEST_CASE("Log levels parse and unknown names are refused with the allowed list") {
  CHECK(parse_log_level("debug").value() == spdlog::level::debug);
  auto bad = parse_log_level("loud");
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().message().find("allowed: trace") != std::string::npos);
}

TEST_CASE("Per-module levels apply to existing and new loggers, and files receive output") {
  auto path = std::filesystem::temp_directory_path() / "squall_log_test.log";
  std::filesystem::remove(path);
  auto early = logger("early_module");
  LogSettings settings;
  settings.level = "warn";
  settings.modules["chatty"] = "debug";
  settings.file = path.string();
  REQUIRE(init_logging(settings).is_ok());
  CHECK(early->level() == spdlog::level::warn);
  auto chatty = logger("chatty");
  CHECK(chatty->level() == spdlog::level::debug);
  chatty->debug("visible line");
  early->info("hidden line");
  chatty->flush();
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  CHECK(text.str().find("visible line") != std::string::npos);
  CHECK(text.str().find("hidden line") == std::string::npos);
  REQUIRE(init_logging(LogSettings{}).is_ok());
  std::filesystem::remove(path);
}

TEST_CASE("init_logging refuses a bad module level and an unwritable file") {
  LogSettings settings;
  settings.modules["fabric"] = "shouting";
  CHECK(init_logging(settings).code() == Code::invalid_argument);
  LogSettings file_settings;
  file_settings.file = "/dev/null/squall.log";
  CHECK(init_logging(file_settings).code() == Code::io_error);
}
