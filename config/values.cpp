// Small pure helpers over configuration values: names, addresses, pools, memory arithmetic.
#include <limits>

#include <fmt/format.h>

#include "config/detail.hpp"
#include "config/units.hpp"

namespace squall::config {
namespace {

template <typename E>
std::string_view name_in(const schema::EnumTable<E>& table, E value) {
  for (const auto& entry : table.names) {
    if (entry.value == value) return entry.name;
  }
  return "invalid";
}

// a * b, or UINT64_MAX if that overflows.
std::uint64_t saturating_multiply(std::uint64_t a, std::uint64_t b) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) {
    return std::numeric_limits<std::uint64_t>::max();
  }
  return a * b;
}

}  // namespace

std::string_view name(Provider provider) { return name_in(schema::kProviders, provider); }
std::string_view name(RdmcAlgorithm algorithm) {
  return name_in(schema::kRdmcAlgorithms, algorithm);
}
std::string_view name(Storage storage) { return name_in(schema::kStorages, storage); }
std::string_view name(ClientCerts mode) { return name_in(schema::kClientCertModes, mode); }
std::string_view name(EndpointAccess access) {
  return name_in(schema::kEndpointAccesses, access);
}

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

Result<HostPort> parse_host_port(std::string_view text) {
  auto malformed = [&] {
    return invalid_argument(fmt::format(
        "expected \"host:port\" (or \"[ipv6-address]:port\"), got '{}'", text));
  };
  HostPort out;
  std::string_view port_text;
  if (text.starts_with('[')) {
    auto close = text.find("]:");
    if (close == std::string_view::npos || close == 1) return malformed();
    out.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return malformed();
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) return malformed();
    port_text = text.substr(colon + 1);
  }
  auto port = parse_unsigned(port_text);
  if (!port.is_ok() || *port == 0 || *port > 65535) {
    return invalid_argument(
        fmt::format("port '{}' in '{}' is not a port number (allowed: 1 to 65535)", port_text,
                    text));
  }
  out.port = static_cast<std::uint16_t>(*port);
  return out;
}

LogSettings LoggingConfig::to_log_settings() const {
  LogSettings settings;
  settings.level = level;
  settings.modules = modules;
  settings.file = file;
  return settings;
}

std::uint64_t pinned_memory_needed_bytes(const Config& config) {
  std::uint64_t bytes = saturating_multiply(config.layout.shards, config.multicast.window);
  bytes = saturating_multiply(bytes, config.layout.replicas_per_shard);
  return saturating_multiply(bytes, config.multicast.max_payload_bytes);
}

const PoolConfig& pool_for_key(const LayoutConfig& layout, std::string_view key) {
  const PoolConfig* best = nullptr;
  for (const PoolConfig& pool : layout.pools) {
    if (!key.starts_with(pool.prefix)) continue;
    if (best == nullptr || pool.prefix.size() > best->prefix.size()) best = &pool;
  }
  SQUALL_ASSERT(best != nullptr, "layout without the default pool \"\" (not validated?)");
  return *best;
}

std::string_view affinity_key(const PoolConfig& pool, std::string_view key) {
  SQUALL_ASSERT(key.starts_with(pool.prefix), "key '{}' is not in pool '{}'", key, pool.prefix);
  if (!pool.affinity || pool.affinity->delimiter.empty()) return key;
  auto cut = key.find(pool.affinity->delimiter, pool.prefix.size());
  return cut == std::string_view::npos ? key : key.substr(0, cut);
}

namespace detail {

void ensure_default_pool(LayoutConfig& layout) {
  for (const PoolConfig& pool : layout.pools) {
    if (pool.prefix.empty()) return;
  }
  layout.pools.push_back(PoolConfig{});
}

}  // namespace detail
}  // namespace squall::config
