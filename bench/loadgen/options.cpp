#include "bench/loadgen/options.hpp"

#include <charconv>
#include <cstdio>

namespace squall::loadgen {

namespace {

template <typename T>
std::optional<T> parse_number(std::string_view text) {
  T value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    return std::nullopt;
  }
  return value;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

}  // namespace

Result<std::vector<Endpoint>> parse_endpoints(std::string_view text) {
  std::vector<Endpoint> endpoints;
  for (const std::string_view part : split(text, ',')) {
    const std::size_t colon = part.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      return invalid_argument("endpoint '" + std::string(part) + "' is not host:port");
    }
    const auto port = parse_number<std::uint16_t>(part.substr(colon + 1));
    if (!port || *port == 0) return invalid_argument("bad port in '" + std::string(part) + "'");
    endpoints.push_back(Endpoint{std::string(part.substr(0, colon)), *port});
  }
  return endpoints;
}

Result<std::array<std::uint32_t, kOpKinds>> parse_mix(std::string_view text) {
  std::array<std::uint32_t, kOpKinds> mix{};
  std::uint64_t total = 0;
  for (const std::string_view part : split(text, ',')) {
    const std::size_t colon = part.find(':');
    if (colon == std::string_view::npos) {
      return invalid_argument("mix entry '" + std::string(part) + "' is not op:weight");
    }
    auto kind = parse_op(part.substr(0, colon));
    if (!kind) return kind.status();
    const auto weight = parse_number<std::uint32_t>(part.substr(colon + 1));
    if (!weight || *weight > 1000000) {
      return invalid_argument("bad weight in '" + std::string(part) + "'");
    }
    mix[static_cast<std::size_t>(*kind)] += *weight;
    total += *weight;
  }
  if (total == 0) return invalid_argument("the mix has no positive weight");
  return mix;
}

void OpStats::merge(const OpStats& other) {
  latency.merge(other.latency);
  ok += other.ok;
  not_found += other.not_found;
  cas_conflict += other.cas_conflict;
}

std::uint64_t LoadResult::answered() const {
  std::uint64_t total = 0;
  for (const OpStats& op : ops) total += op.latency.count();
  return total;
}

std::uint64_t LoadResult::error_count() const {
  std::uint64_t total = 0;
  for (const auto& [kind, count] : errors) total += count;
  return total;
}

std::int64_t now_stamp_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             Clock::now().time_since_epoch())
      .count();
}

std::optional<std::int64_t> stamp_of(std::string_view value) {
  constexpr std::size_t kDigits = 16;
  if (value.size() < kDigits) return std::nullopt;
  return parse_number<std::int64_t>(value.substr(0, kDigits));
}

}  // namespace squall::loadgen
