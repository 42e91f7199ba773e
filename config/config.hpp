// Squall's node configuration: typed sections, loading from YAML, overrides, validation.
//
// One YAML file per node (docs/configuration.md lists every key, its default and range).
// The daemon loads it once at start-up with load_config_file(), which parses, applies
// `--set key.path=value` overrides and validates; the resulting Config is then passed
// explicitly to every layer. There is no global configuration object.
//
// Every field below has the default documented beside it, except node.id and
// node.data_dir, which a file must give. A default-constructed Config plus those two fields
// is a valid configuration.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/status.hpp"

namespace squall::config {

inline constexpr std::uint64_t kKiB = 1024;
inline constexpr std::uint64_t kMiB = 1024 * kKiB;
inline constexpr std::uint64_t kGiB = 1024 * kMiB;

// Bytes an update message may need beyond its key and value (operation, versions, timestamps,
// framing). Validation requires limits.max_key_bytes + limits.max_value_bytes + this
// <= multicast.max_payload_bytes, so the largest legal write always fits one message.
inline constexpr std::uint64_t kUpdateHeaderAllowanceBytes = 256;

// Libfabric provider. `sockets` is refused at load time (deprecated, breaks ordered writes).
enum class Provider : std::uint8_t { tcp, verbs };

// RDMC relay schedule for large messages (see docs/configuration.md for the step counts).
enum class RdmcAlgorithm : std::uint8_t { binomial_pipeline, chain, sequential, tree };

// How a pool stores its keys. `volatile_` is YAML `volatile` (a C++ keyword).
enum class Storage : std::uint8_t {
  persistent,  // versioned and logged to disk
  volatile_,   // versioned, memory only (lost when every replica restarts)
  stateless,   // not stored: delivered to watchers only
};

// Client certificates on the REST port (rest.tls.client_certs).
enum class ClientCerts : std::uint8_t {
  off,       // not asked for
  optional,  // asked for; one that is sent must verify against rest.tls.ca_file
  require,   // a connection without a certificate that verifies is refused
};

// Who may call /metrics, or /healthz and /readyz, when tokens are configured.
enum class EndpointAccess : std::uint8_t { open, admin };

std::string_view name(Provider provider);
std::string_view name(RdmcAlgorithm algorithm);
std::string_view name(Storage storage);
std::string_view name(ClientCerts mode);
std::string_view name(EndpointAccess access);

struct ClusterConfig {
  std::string name = "squall";  // 1-64 characters of [A-Za-z0-9._-]
  // File holding the cluster's shared secret (at least 16 bytes after trimming whitespace).
  // Set: every membership message is authenticated with it (HMAC-SHA256), and nodes without
  // it cannot join, leave or restart the group. Unset: messages carry a MAC under the empty
  // key (integrity only). docs/security.md.
  std::optional<std::string> secret_file;
  bool operator==(const ClusterConfig&) const = default;
};

struct NodeConfig {
  NodeId id;                         // required; unique in the cluster, stable across restarts
  std::string data_dir;              // required; logs, checkpoints and the persisted view
  std::string address = "127.0.0.1";  // host other nodes use to reach this node
  bool operator==(const NodeConfig&) const = default;
};

// The node a joining node contacts (the leader's membership port). Unset fields mean "this
// node": Config::contact_address() and Config::contact_port() resolve them.
struct ContactConfig {
  std::optional<std::string> address;  // default: node.address
  std::optional<std::uint16_t> port;   // default: ports.membership
  bool operator==(const ContactConfig&) const = default;
};

// TCP/fabric ports this node listens on. The REST port is part of rest.listen.
struct PortsConfig {
  std::uint16_t membership = 23580;      // joins, view installation
  std::uint16_t state_transfer = 23581;  // log suffixes and checkpoints for joiners
  std::uint16_t fabric = 23582;          // the fabric bootstrap listener
  bool operator==(const PortsConfig&) const = default;
};

struct TransportConfig {
  Provider provider = Provider::tcp;
  std::string domain = "lo";                     // interface (tcp) or device (verbs, mlx5_0)
  std::uint32_t tx_depth = 256;                  // send queue depth per endpoint
  std::uint32_t rx_depth = 256;                  // receive queue depth per endpoint
  std::uint64_t max_message_bytes = 64 * kKiB;   // largest two-sided message
  bool operator==(const TransportConfig&) const = default;
};

struct TimeoutsConfig {
  std::uint32_t heartbeat_ms = 100;          // SST push period when idle
  std::uint32_t failure_timeout_ms = 1000;   // silence after which a member is suspected
  std::uint32_t join_timeout_ms = 10000;     // how long a joiner waits for the leader
  std::uint32_t request_timeout_ms = 5000;   // bound on one client request
  bool operator==(const TimeoutsConfig&) const = default;
};

struct MulticastConfig {
  std::uint32_t window = 16;                         // in-flight messages per sender
  std::uint64_t smc_payload_bytes = 8 * kKiB;        // SST multicast slot payload
  std::uint64_t rdmc_block_bytes = 1 * kMiB;         // RDMC block size
  RdmcAlgorithm rdmc_algorithm = RdmcAlgorithm::binomial_pipeline;
  std::uint64_t max_payload_bytes = 17 * kMiB;       // largest multicast message
  std::uint64_t pinned_memory_budget_bytes = 1 * kGiB;  // see pinned_memory_needed_bytes()
  bool operator==(const MulticastConfig&) const = default;
};

struct RetentionConfig {
  std::uint64_t max_versions = 0;  // versions kept per key; 0 = unlimited
  std::uint64_t max_age_s = 0;     // age after which old versions go; 0 = unlimited
  bool operator==(const RetentionConfig&) const = default;
};

// Sharding affinity: keys that share their affinity key land on the same shard.
struct AffinityConfig {
  std::string delimiter;  // 1-16 bytes; see affinity_key()
  bool operator==(const AffinityConfig&) const = default;
};

struct PoolConfig {
  std::string prefix;                     // keys starting with it (longest prefix wins)
  Storage storage = Storage::persistent;
  RetentionConfig retention;              // must be all zero for stateless pools
  std::optional<AffinityConfig> affinity;  // unset: the whole key is hashed
  bool operator==(const PoolConfig&) const = default;
};

struct LayoutConfig {
  std::uint32_t shards = 1;
  std::uint32_t replicas_per_shard = 3;
  // Always contains the default pool "" (the loader adds it, persistent, when not given).
  std::vector<PoolConfig> pools = {PoolConfig{}};
  bool operator==(const LayoutConfig&) const = default;
};

struct PersistenceConfig {
  std::uint64_t segment_bytes = 64 * kMiB;             // log segment file size
  bool fsync = true;                                   // false: faster, loses writes on crash
  std::uint32_t group_commit_max_delay_us = 0;         // longest wait to batch an fsync
  std::uint64_t checkpoint_interval_versions = 100000;  // 0 = no periodic checkpoints
  std::uint64_t max_log_bytes = 0;                     // per shard replica; 0 = unlimited
  bool operator==(const PersistenceConfig&) const = default;
};

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
  std::string to_string() const;  // "host:port", IPv6 hosts in brackets
  bool operator==(const HostPort&) const = default;
};

// Parses "host:port" or "[v6-address]:port". Port 1-65535.
Result<HostPort> parse_host_port(std::string_view text);

// TLS on the REST port (docs/security.md). The files are read at start-up and again on
// SIGHUP; new connections use what was read last.
struct TlsConfig {
  std::string cert_file;               // required: PEM certificate chain, leaf first
  std::string key_file;                // required: PEM private key of the leaf
  std::optional<std::string> ca_file;  // PEM CAs: client certificates, and peers' REST
  ClientCerts client_certs = ClientCerts::off;  // needs ca_file unless off
  std::uint32_t handshake_timeout_ms = 10000;   // a handshake not done by then is closed
  bool operator==(const TlsConfig&) const = default;
};

struct RestConfig {
  HostPort listen{"127.0.0.1", 8080};
  std::uint32_t max_connections = 1024;
  std::uint64_t max_header_bytes = 32 * kKiB;  // request line + headers
  std::uint32_t read_timeout_ms = 30000;       // to receive one whole request
  std::uint32_t idle_timeout_ms = 60000;       // idle keep-alive connection is closed after
  std::optional<TlsConfig> tls;                // unset: plain HTTP
  bool operator==(const RestConfig&) const = default;
};

// One bearer token of the REST API. The secret itself never appears in the configuration:
// either a file holding it (read at start-up and on SIGHUP) or its SHA-256 digest.
struct TokenConfig {
  std::string name;                         // for logs and metrics; unique
  std::optional<std::string> token_file;    // exactly one of token_file, token_sha256
  std::optional<std::string> token_sha256;  // 64 hex digits: SHA-256 of the token's bytes
  std::vector<std::string> roles;           // read, write, admin (1-3 of them)
  std::vector<std::string> prefixes;        // key prefixes it may touch; empty: every key
  bool operator==(const TokenConfig&) const = default;
};

// Bearer-token authentication of the REST API; off while `tokens` is empty.
struct AuthConfig {
  std::vector<TokenConfig> tokens;
  EndpointAccess metrics = EndpointAccess::open;  // GET /metrics
  EndpointAccess health = EndpointAccess::open;   // GET /healthz and /readyz
  bool enabled() const { return !tokens.empty(); }
  bool operator==(const AuthConfig&) const = default;
};

struct LimitsConfig {
  std::uint64_t max_key_bytes = 4096;
  std::uint64_t max_value_bytes = 16 * kMiB;
  std::uint32_t max_list_limit = 10000;  // largest `limit` a list request may ask for
  bool operator==(const LimitsConfig&) const = default;
};

struct WatchConfig {
  std::uint32_t max_watchers = 512;    // concurrent watch streams on this node
  std::uint32_t buffer_events = 1024;  // per watcher; a full buffer disconnects it
  std::uint32_t keepalive_s = 15;      // idle stream comment period
  bool operator==(const WatchConfig&) const = default;
};

struct LoggingConfig {
  std::string level = "info";                  // trace|debug|info|warn|error|critical|off
  std::map<std::string, std::string> modules;  // module -> level
  std::string file;                            // empty: stderr
  LogSettings to_log_settings() const;
  bool operator==(const LoggingConfig&) const = default;
};

struct Config {
  ClusterConfig cluster;
  NodeConfig node;
  ContactConfig contact;
  PortsConfig ports;
  TransportConfig transport;
  TimeoutsConfig timeouts;
  MulticastConfig multicast;
  LayoutConfig layout;
  PersistenceConfig persistence;
  RestConfig rest;
  LimitsConfig limits;
  WatchConfig watch;
  LoggingConfig logging;
  AuthConfig auth;

  std::string contact_address() const { return contact.address.value_or(node.address); }
  std::uint16_t contact_port() const { return contact.port.value_or(ports.membership); }
  // True when this node is its own contact (it starts the cluster as its first member).
  bool contact_is_self() const {
    return contact_address() == node.address && contact_port() == ports.membership;
  }
  bool operator==(const Config&) const = default;
};

// Loads a configuration: parse, apply overrides in order, validate. Overrides are
// "key.path=value" strings (docs/configuration.md, "Overrides"). On failure the Status
// (invalid_argument; io_error / not_found for an unreadable file) describes the first error
// found as "<file>:<line>:<column>: <key.path>: <what is wrong> (allowed: ...)".
Result<Config> load_config_file(const std::string& path,
                                const std::vector<std::string>& overrides = {});
Result<Config> load_config_string(std::string_view text, std::string_view source_name,
                                  const std::vector<std::string>& overrides = {});

// Checks every range and relation; the single place where a Config is judged. The error
// names the key path but no file position (load_config_* add that).
Status validate(const Config& config);

// Legal but doubtful settings (e.g. fsync off), one sentence each, for the daemon to log.
std::vector<std::string> config_warnings(const Config& config);

// The effective configuration as YAML (every key, defaults included); loads back equal.
std::string to_yaml(const Config& config);

// Pinned multicast memory this node may need:
//   layout.shards x multicast.window x layout.replicas_per_shard x multicast.max_payload_bytes
// (a node may serve every shard, each with `replicas_per_shard` senders of `window`
// messages). Saturates at UINT64_MAX. Validation requires it <= pinned_memory_budget_bytes.
std::uint64_t pinned_memory_needed_bytes(const Config& config);

// The pool of `key`: the one with the longest prefix of it. REQUIRES: layout validated.
const PoolConfig& pool_for_key(const LayoutConfig& layout, std::string_view key);

// The part of `key` hashed to choose its shard: without affinity, the whole key; with a
// delimiter, the key up to (excluding) the first delimiter found after the pool prefix, or
// the whole key if there is none. E.g. pool "users/", delimiter "/": "users/42/name" and
// "users/42/mail" both hash "users/42". REQUIRES: key starts with pool.prefix.
std::string_view affinity_key(const PoolConfig& pool, std::string_view key);

}  // namespace squall::config
