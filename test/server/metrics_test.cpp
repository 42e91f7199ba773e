// Unit tests of the metrics registry and its text exposition format.
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "server/metrics.hpp"

namespace squall::server {
namespace {

// Every line is a comment (# HELP/# TYPE) or `name{labels} value` with a parseable value.
void require_well_formed(const std::string& text) {
  REQUIRE((text.empty() || text.back() == '\n'));
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    CAPTURE(line);
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) continue;
    const std::size_t space = line.rfind(' ');
    REQUIRE(space != std::string::npos);
    const std::string value = line.substr(space + 1);
    std::size_t used = 0;
    if (value != "+Inf" && value != "-Inf" && value != "NaN") {
      (void)std::stod(value, &used);
      REQUIRE(used == value.size());
    }
    const std::string series = line.substr(0, space);
    const std::size_t brace = series.find('{');
    if (brace != std::string::npos) REQUIRE(series.back() == '}');
  }
}

}  // namespace

TEST_CASE("counters, gauges and their exposition") {
  MetricsRegistry registry;
  Counter& requests = registry.counter("test_requests_total", "Requests.", {{"route", "kv"}});
  requests.add();
  requests.add(2);
  REQUIRE(&registry.counter("test_requests_total", "Requests.", {{"route", "kv"}}) == &requests);
  registry.counter("test_requests_total", "Requests.", {{"route", "list"}}).add();
  registry.gauge("test_open", "Open things.").set(2.5);
  registry.gauge_callback("test_computed", "Computed.", {{"shard", "0"}}, [] { return 42.0; });
  const std::string text = registry.render();
  require_well_formed(text);
  REQUIRE(text ==
          "# HELP test_computed Computed.\n"
          "# TYPE test_computed gauge\n"
          "test_computed{shard=\"0\"} 42\n"
          "# HELP test_open Open things.\n"
          "# TYPE test_open gauge\n"
          "test_open 2.5\n"
          "# HELP test_requests_total Requests.\n"
          "# TYPE test_requests_total counter\n"
          "test_requests_total{route=\"kv\"} 3\n"
          "test_requests_total{route=\"list\"} 1\n");
}

TEST_CASE("histograms render cumulative buckets, sum and count") {
  MetricsRegistry registry;
  Histogram& latency =
      registry.histogram("test_seconds", "Latency.", {0.5, 1.0}, {{"route", "kv"}});
  latency.observe(0.25);
  latency.observe(0.5);  // bounds are inclusive
  latency.observe(0.75);
  latency.observe(7.0);
  const std::string text = registry.render();
  require_well_formed(text);
  REQUIRE(text ==
          "# HELP test_seconds Latency.\n"
          "# TYPE test_seconds histogram\n"
          "test_seconds_bucket{route=\"kv\",le=\"0.5\"} 2\n"
          "test_seconds_bucket{route=\"kv\",le=\"1\"} 3\n"
          "test_seconds_bucket{route=\"kv\",le=\"+Inf\"} 4\n"
          "test_seconds_sum{route=\"kv\"} 8.5\n"
          "test_seconds_count{route=\"kv\"} 4\n");
}

TEST_CASE("label values and help text are escaped") {
  MetricsRegistry registry;
  registry.counter("test_total", "Line one\nand a \\ backslash.", {{"v", "a\"b\\c\nd"}}).add();
  const std::string text = registry.render();
  REQUIRE(text.find("# HELP test_total Line one\\nand a \\\\ backslash.\n") !=
          std::string::npos);
  REQUIRE(text.find("test_total{v=\"a\\\"b\\\\c\\nd\"} 1\n") != std::string::npos);
}

TEST_CASE("a family's label sets are bounded and extra ones share an overflow series") {
  MetricsRegistry registry(3);
  for (int i = 0; i < 10; ++i) {
    registry.counter("test_total", "T.", {{"id", std::to_string(i)}}).add();
  }
  const std::string text = registry.render();
  REQUIRE(text.find("test_total{id=\"0\"} 1\n") != std::string::npos);
  REQUIRE(text.find("test_total{id=\"2\"} 1\n") != std::string::npos);
  REQUIRE(text.find("test_total{id=\"overflow\"} 7\n") != std::string::npos);
  REQUIRE(text.find("id=\"9\"") == std::string::npos);
}

TEST_CASE("concurrent updates are all counted") {
  MetricsRegistry registry;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&registry] {
      for (int i = 0; i < 10000; ++i) {
        registry.counter("test_total", "T.").add();
        registry.histogram("test_seconds", "S.", {1.0}).observe(0.5);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  REQUIRE(registry.counter("test_total", "T.").value() == 40000);
  REQUIRE(registry.histogram("test_seconds", "S.", {1.0}).count() == 40000);
  REQUIRE(registry.histogram("test_seconds", "S.", {1.0}).sum() == 20000.0);
}

}  // namespace squall::server
