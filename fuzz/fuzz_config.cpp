// Fuzz target: configuration files (config::load_config_string), the YAML a node reads at
// start-up. Properties: text that is not UTF-8 never loads; a configuration that loads is
// valid, and its effective YAML (to_yaml) loads back equal.
#include "config/config.hpp"
#include "fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace squall;
  const std::string_view text = fuzz::input_text(data, size);
  auto loaded = config::load_config_string(text, "fuzz.yaml");
  FUZZ_CHECK(!loaded.is_ok() || fuzz::is_utf8(text), "text that is not UTF-8 loaded");
  if (!loaded.is_ok()) {
    FUZZ_CHECK(!loaded.status().message().empty(), "an error without a message");
    return 0;
  }
  FUZZ_CHECK(config::validate(loaded.value()).is_ok(), "a loaded config does not validate");
  const std::string yaml = config::to_yaml(loaded.value());
  auto again = config::load_config_string(yaml, "effective.yaml");
  FUZZ_CHECK(again.is_ok(), "effective YAML does not load: {}\n{}", again.status().message(),
             yaml);
  FUZZ_CHECK(again.value() == loaded.value(), "effective YAML loads back different:\n{}", yaml);
  return 0;
}
