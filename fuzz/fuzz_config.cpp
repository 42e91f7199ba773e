// Fuzz target: configuration files (config::load_config_string), the YAML a node reads at
// start-up. Properties: a configuration that loads is valid; if its text is UTF-8, its
// effective YAML (to_yaml) loads back equal.
#include "config/config.hpp"
#include "fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace squall;
  auto loaded = config::load_config_string(fuzz::input_text(data, size), "fuzz.yaml");
  if (!loaded.is_ok()) {
    FUZZ_CHECK(!loaded.status().message().empty(), "an error without a message");
    return 0;
  }
  FUZZ_CHECK(config::validate(loaded.value()).is_ok(), "a loaded config does not validate");
  // Text that is not UTF-8 loads (yaml-cpp takes the bytes as they are), but the emitter
  // escapes such bytes and they load back as other ones: round trips hold for UTF-8 only
  // (docs/security.md, "Fuzzing").
  if (!fuzz::is_utf8(fuzz::input_text(data, size))) return 0;
  const std::string yaml = config::to_yaml(loaded.value());
  auto again = config::load_config_string(yaml, "effective.yaml");
  FUZZ_CHECK(again.is_ok(), "effective YAML does not load: {}\n{}", again.status().message(),
             yaml);
  FUZZ_CHECK(again.value() == loaded.value(), "effective YAML loads back different:\n{}", yaml);
  return 0;
}
