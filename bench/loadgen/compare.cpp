// The side-by-side rows of bench/vs_etcd (report.hpp).
#include <fmt/format.h>

#include "bench/loadgen/report.hpp"

namespace squall::loadgen {

using nlohmann::json;

namespace {

std::string ratio(double squall, double etcd) {
  if (etcd <= 0) return "–";
  return fmt::format("{:.2f}", squall / etcd);
}

std::string number(double value) {
  if (value >= 100) return fmt::format("{:.0f}", value);
  if (value >= 10) return fmt::format("{:.1f}", value);
  if (value >= 1) return fmt::format("{:.2f}", value);
  return fmt::format("{:.3f}", value);
}

// The section a row compares: the watch part for watch runs, else the whole run.
const json* section(const json& result) {
  if (result.value("mode", "") == "watch") {
    const auto found = result.find("watch");
    return found == result.end() ? nullptr : &*found;
  }
  return &result;
}

Result<double> field(const json& object, std::initializer_list<const char*> path) {
  const json* at = &object;
  for (const char* name : path) {
    const auto found = at->find(name);
    if (found == at->end()) return invalid_argument(std::string("result without ") + name);
    at = &*found;
  }
  if (!at->is_number()) return invalid_argument("a result field is not a number");
  return at->get<double>();
}

std::string error_cell(const json& result) {
  std::uint64_t errors = result.value("error_count", std::uint64_t{0});
  std::uint64_t missing = 0;
  if (const auto watch = result.find("watch"); watch != result.end()) {
    errors += watch->value("error_count", std::uint64_t{0});
    missing = watch->value("missing_events", std::uint64_t{0});
  }
  std::string cell = std::to_string(errors);
  if (missing > 0) cell += fmt::format(" (+{} missing)", missing);
  return cell;
}

}  // namespace

std::string comparison_header(bool watch) {
  const char* rate = watch ? "events/s" : "ops/s";
  const char* what = watch ? "put→event" : "latency";
  return fmt::format(
      "| workload | Squall {0} | etcd {0} | S/E | Squall {1} p50 ms | etcd p50 ms | S/E | "
      "Squall p99 ms | etcd p99 ms | S/E | Squall p99.9 ms | etcd p99.9 ms | errors S / E |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
      rate, what);
}

Result<std::string> comparison_row(const std::string& label, const json& squall,
                                   const json& etcd) {
  const json* s = section(squall);
  const json* e = section(etcd);
  if (s == nullptr || e == nullptr) return invalid_argument("a watch result without its part");
  const char* rate = squall.value("mode", "") == "watch" ? "events_per_s" : "ops_per_s";
  std::string row = "| " + label + " ";
  auto s_rate = field(*s, {rate});
  auto e_rate = field(*e, {rate});
  if (!s_rate || !e_rate) return invalid_argument("a result without its rate");
  row += fmt::format("| {} | {} | {} ", number(*s_rate), number(*e_rate),
                     ratio(*s_rate, *e_rate));
  for (const char* quantile : {"p50", "p99", "p99_9"}) {
    auto s_value = field(*s, {"latency_ms", quantile});
    auto e_value = field(*e, {"latency_ms", quantile});
    if (!s_value || !e_value) return invalid_argument("a result without its latency");
    if (std::string_view(quantile) == "p99_9") {
      row += fmt::format("| {} | {} ", number(*s_value), number(*e_value));
    } else {
      row += fmt::format("| {} | {} | {} ", number(*s_value), number(*e_value),
                         ratio(*s_value, *e_value));
    }
  }
  row += fmt::format("| {} / {} |\n", error_cell(squall), error_cell(etcd));
  return row;
}

}  // namespace squall::loadgen
