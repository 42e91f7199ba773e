// The configuration schema, written once: every key of every section with its kind and
// allowed range. (Internal to config/.)
//
// describe(visitor, section) calls one visitor method per key, in documentation order. The
// parser (parse.cpp) reads YAML through it, validation (validate.cpp) checks ranges through
// it, and the emitter (emit.cpp) writes YAML through it, so the three cannot disagree about
// names, kinds or bounds. Relations between keys live in validate.cpp.
//
// A visitor V provides:
//   number(key, T& or std::optional<T>&, Bounds, Number, Presence)   T: unsigned integer
//   boolean(key, bool&)
//   text(key, std::string& or std::optional<std::string>&, Text, Presence)
//   enumeration(key, E&, const EnumTable<E>&)
//   host_port(key, HostPort&)
//   section(key, S&) / optional_section(key, std::optional<S>&)   S: has describe()
//   list(key, std::vector<S>&, Bounds count)
//   text_map(key, std::map<std::string, std::string>&, Text key_rule, Text value_rule, Bounds)
//   text_list(key, std::vector<std::string>&, Text rule, Bounds count)   a list of strings
//   unsupported(key, reason)   a key reserved for a later release: refused with `reason`
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string_view>

#include "config/config.hpp"

namespace squall::config::schema {

struct Bounds {
  std::uint64_t min = 0;
  std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
};

// How a number is written: `bytes` also accepts size units ("64KiB").
enum class Number : std::uint8_t { count, bytes };

// What a string must look like (checked by validation; see text_rule_error()).
enum class Text : std::uint8_t {
  any,        // at most 4096 bytes
  path,       // 1-4096 bytes, no NUL
  host,       // 1-253 bytes, no whitespace, control characters or '/'
  name,       // 1-64 characters of [A-Za-z0-9._-]
  token,      // 1-64 printable bytes without whitespace (interface or device names)
  delimiter,  // 1-16 bytes
  log_level,  // trace|debug|info|warn|error|critical|off
  role,       // read|write|admin (auth.tokens[].roles)
  sha256,     // 64 hexadecimal digits
};

enum class Presence : std::uint8_t { optional, required };

template <typename E>
struct EnumName {
  std::string_view name;
  E value;
};

// A value that is recognised but refused, with the reason shown to the operator.
struct Refusal {
  std::string_view name;
  std::string_view reason;
};

template <typename E>
struct EnumTable {
  std::span<const EnumName<E>> names;
  std::span<const Refusal> refused;
};

inline constexpr std::uint64_t kMaxPort = 65535;
inline constexpr std::uint64_t kMaxTimeoutMs = 3'600'000;  // one hour

inline constexpr EnumName<Provider> kProviderNames[] = {
    {"tcp", Provider::tcp}, {"verbs", Provider::verbs}};
inline constexpr Refusal kProviderRefusals[] = {
    {"sockets",
     "the libfabric 'sockets' provider is deprecated and does not keep one-sided writes in "
     "order, which the shared-state table relies on; use 'tcp' instead"}};
inline constexpr EnumTable<Provider> kProviders{kProviderNames, kProviderRefusals};

inline constexpr EnumName<RdmcAlgorithm> kRdmcAlgorithmNames[] = {
    {"binomial_pipeline", RdmcAlgorithm::binomial_pipeline},
    {"chain", RdmcAlgorithm::chain},
    {"sequential", RdmcAlgorithm::sequential},
    {"tree", RdmcAlgorithm::tree}};
inline constexpr EnumTable<RdmcAlgorithm> kRdmcAlgorithms{kRdmcAlgorithmNames, {}};

inline constexpr EnumName<Storage> kStorageNames[] = {{"persistent", Storage::persistent},
                                                      {"volatile", Storage::volatile_},
                                                      {"stateless", Storage::stateless}};
inline constexpr EnumTable<Storage> kStorages{kStorageNames, {}};

inline constexpr EnumName<ClientCerts> kClientCertNames[] = {
    {"off", ClientCerts::off},
    {"optional", ClientCerts::optional},
    {"require", ClientCerts::require}};
inline constexpr EnumTable<ClientCerts> kClientCertModes{kClientCertNames, {}};

inline constexpr EnumName<EndpointAccess> kEndpointAccessNames[] = {
    {"open", EndpointAccess::open}, {"admin", EndpointAccess::admin}};
inline constexpr EnumTable<EndpointAccess> kEndpointAccesses{kEndpointAccessNames, {}};

template <typename V>
void describe(V& v, ClusterConfig& c) {
  v.text("name", c.name, Text::name, Presence::optional);
  v.text("secret_file", c.secret_file, Text::path, Presence::optional);
}

template <typename V>
void describe(V& v, NodeConfig& c) {
  v.number("id", c.id.value, Bounds{0, std::numeric_limits<std::uint32_t>::max()},
           Number::count, Presence::required);
  v.text("data_dir", c.data_dir, Text::path, Presence::required);
  v.text("address", c.address, Text::host, Presence::optional);
}

template <typename V>
void describe(V& v, ContactConfig& c) {
  v.text("address", c.address, Text::host, Presence::optional);
  v.number("port", c.port, Bounds{1, kMaxPort}, Number::count, Presence::optional);
}

template <typename V>
void describe(V& v, PortsConfig& c) {
  v.number("membership", c.membership, Bounds{1, kMaxPort}, Number::count, Presence::optional);
  v.number("state_transfer", c.state_transfer, Bounds{1, kMaxPort}, Number::count,
           Presence::optional);
  v.number("fabric", c.fabric, Bounds{1, kMaxPort}, Number::count, Presence::optional);
  v.unsupported("rest", "the REST port is part of rest.listen (\"host:port\")");
}

template <typename V>
void describe(V& v, TransportConfig& c) {
  v.enumeration("provider", c.provider, kProviders);
  v.text("domain", c.domain, Text::token, Presence::optional);
  v.number("tx_depth", c.tx_depth, Bounds{1, 65536}, Number::count, Presence::optional);
  v.number("rx_depth", c.rx_depth, Bounds{1, 65536}, Number::count, Presence::optional);
  v.number("max_message_bytes", c.max_message_bytes, Bounds{256, 16 * kMiB}, Number::bytes,
           Presence::optional);
}

template <typename V>
void describe(V& v, TimeoutsConfig& c) {
  v.number("heartbeat_ms", c.heartbeat_ms, Bounds{1, 60'000}, Number::count,
           Presence::optional);
  v.number("failure_timeout_ms", c.failure_timeout_ms, Bounds{2, 600'000}, Number::count,
           Presence::optional);
  v.number("join_timeout_ms", c.join_timeout_ms, Bounds{1, kMaxTimeoutMs}, Number::count,
           Presence::optional);
  v.number("request_timeout_ms", c.request_timeout_ms, Bounds{1, kMaxTimeoutMs},
           Number::count, Presence::optional);
}

template <typename V>
void describe(V& v, MulticastConfig& c) {
  v.number("window", c.window, Bounds{1, 1024}, Number::count, Presence::optional);
  v.number("smc_payload_bytes", c.smc_payload_bytes, Bounds{64, 1 * kMiB}, Number::bytes,
           Presence::optional);
  v.number("rdmc_block_bytes", c.rdmc_block_bytes, Bounds{4 * kKiB, 64 * kMiB}, Number::bytes,
           Presence::optional);
  v.enumeration("rdmc_algorithm", c.rdmc_algorithm, kRdmcAlgorithms);
  v.number("max_payload_bytes", c.max_payload_bytes, Bounds{1 * kKiB, 4 * kGiB},
           Number::bytes, Presence::optional);
  v.number("pinned_memory_budget_bytes", c.pinned_memory_budget_bytes,
           Bounds{1 * kMiB, 1024 * kGiB}, Number::bytes, Presence::optional);
}

template <typename V>
void describe(V& v, RetentionConfig& c) {
  v.number("max_versions", c.max_versions, Bounds{0, std::uint64_t{1} << 62}, Number::count,
           Presence::optional);
  // 0..1000 years in seconds: large enough for "forever", small enough to add to a clock.
  v.number("max_age_s", c.max_age_s, Bounds{0, 31'536'000'000}, Number::count,
           Presence::optional);
}

template <typename V>
void describe(V& v, AffinityConfig& c) {
  v.text("delimiter", c.delimiter, Text::delimiter, Presence::required);
}

template <typename V>
void describe(V& v, PoolConfig& c) {
  v.text("prefix", c.prefix, Text::any, Presence::required);
  v.enumeration("storage", c.storage, kStorages);
  v.section("retention", c.retention);
  v.optional_section("affinity", c.affinity);
}

template <typename V>
void describe(V& v, LayoutConfig& c) {
  v.number("shards", c.shards, Bounds{1, 1024}, Number::count, Presence::optional);
  v.number("replicas_per_shard", c.replicas_per_shard, Bounds{1, 64}, Number::count,
           Presence::optional);
  v.list("pools", c.pools, Bounds{1, 256});
}

template <typename V>
void describe(V& v, PersistenceConfig& c) {
  v.number("segment_bytes", c.segment_bytes, Bounds{1 * kMiB, 16 * kGiB}, Number::bytes,
           Presence::optional);
  v.boolean("fsync", c.fsync);
  v.number("group_commit_max_delay_us", c.group_commit_max_delay_us, Bounds{0, 1'000'000},
           Number::count, Presence::optional);
  v.number("checkpoint_interval_versions", c.checkpoint_interval_versions,
           Bounds{0, std::uint64_t{1} << 62}, Number::count, Presence::optional);
  v.number("max_log_bytes", c.max_log_bytes, Bounds{0, std::uint64_t{1} << 60}, Number::bytes,
           Presence::optional);
}

template <typename V>
void describe(V& v, TlsConfig& c) {
  v.text("cert_file", c.cert_file, Text::path, Presence::required);
  v.text("key_file", c.key_file, Text::path, Presence::required);
  v.text("ca_file", c.ca_file, Text::path, Presence::optional);
  v.enumeration("client_certs", c.client_certs, kClientCertModes);
  v.number("handshake_timeout_ms", c.handshake_timeout_ms, Bounds{1, kMaxTimeoutMs},
           Number::count, Presence::optional);
}

template <typename V>
void describe(V& v, RestConfig& c) {
  v.host_port("listen", c.listen);
  v.number("max_connections", c.max_connections, Bounds{1, 100'000}, Number::count,
           Presence::optional);
  v.number("max_header_bytes", c.max_header_bytes, Bounds{1 * kKiB, 1 * kMiB}, Number::bytes,
           Presence::optional);
  v.number("read_timeout_ms", c.read_timeout_ms, Bounds{1, kMaxTimeoutMs}, Number::count,
           Presence::optional);
  v.number("idle_timeout_ms", c.idle_timeout_ms, Bounds{1, 24 * kMaxTimeoutMs}, Number::count,
           Presence::optional);
  v.optional_section("tls", c.tls);
  v.unsupported("tokens", "bearer tokens are configured in auth.tokens");
}

template <typename V>
void describe(V& v, TokenConfig& c) {
  v.text("name", c.name, Text::name, Presence::required);
  v.text("token_file", c.token_file, Text::path, Presence::optional);
  v.text("token_sha256", c.token_sha256, Text::sha256, Presence::optional);
  v.text_list("roles", c.roles, Text::role, Bounds{1, 3});
  v.text_list("prefixes", c.prefixes, Text::any, Bounds{0, 256});
  v.unsupported("token", "a token is never written in the configuration: give token_file (a "
                         "file holding it) or token_sha256 (its SHA-256 digest)");
}

template <typename V>
void describe(V& v, AuthConfig& c) {
  v.list("tokens", c.tokens, Bounds{0, 1024});
  v.enumeration("metrics", c.metrics, kEndpointAccesses);
  v.enumeration("health", c.health, kEndpointAccesses);
}

template <typename V>
void describe(V& v, LimitsConfig& c) {
  v.number("max_key_bytes", c.max_key_bytes, Bounds{1, 64 * kKiB}, Number::bytes,
           Presence::optional);
  v.number("max_value_bytes", c.max_value_bytes, Bounds{1, 4 * kGiB}, Number::bytes,
           Presence::optional);
  v.number("max_list_limit", c.max_list_limit, Bounds{1, 1'000'000}, Number::count,
           Presence::optional);
}

template <typename V>
void describe(V& v, WatchConfig& c) {
  v.number("max_watchers", c.max_watchers, Bounds{1, 1'000'000}, Number::count,
           Presence::optional);
  v.number("buffer_events", c.buffer_events, Bounds{1, 1'000'000}, Number::count,
           Presence::optional);
  v.number("keepalive_s", c.keepalive_s, Bounds{1, 3600}, Number::count, Presence::optional);
}

template <typename V>
void describe(V& v, LoggingConfig& c) {
  v.text("level", c.level, Text::log_level, Presence::optional);
  v.text_map("modules", c.modules, Text::name, Text::log_level, Bounds{0, 256});
  v.text("file", c.file, Text::any, Presence::optional);
}

template <typename V>
void describe(V& v, Config& c) {
  v.section("cluster", c.cluster);
  v.section("node", c.node);
  v.section("contact", c.contact);
  v.section("ports", c.ports);
  v.section("transport", c.transport);
  v.section("timeouts", c.timeouts);
  v.section("multicast", c.multicast);
  v.section("layout", c.layout);
  v.section("persistence", c.persistence);
  v.section("rest", c.rest);
  v.section("limits", c.limits);
  v.section("watch", c.watch);
  v.section("logging", c.logging);
  v.section("auth", c.auth);
  v.unsupported("tls", "TLS of the REST API is configured in rest.tls");
  v.unsupported("tokens", "bearer tokens are configured in auth.tokens");
}

}  // namespace squall::config::schema
