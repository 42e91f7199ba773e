// Validation: every range (from the schema) and every relation between keys, in one place.
#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "config/detail.hpp"
#include "config/units.hpp"

namespace squall::config {
namespace detail {
namespace {

using schema::Bounds;
using schema::EnumTable;
using schema::Number;
using schema::Presence;
using schema::Text;

constexpr std::size_t kMaxTextBytes = 4096;

std::string show(std::uint64_t value, Number kind) {
  return kind == Number::bytes ? format_size(value) : fmt::format("{}", value);
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-';
}

bool is_hex_digit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool is_control_or_space(char c) {
  auto byte = static_cast<unsigned char>(c);
  return byte <= 0x20 || byte == 0x7f;
}

std::optional<std::string> length_error(std::string_view value, std::size_t min,
                                        std::size_t max) {
  if (value.size() < min) return std::string("must not be empty");
  if (value.size() > max) {
    return fmt::format("is too long ({} bytes; at most {})", value.size(), max);
  }
  return std::nullopt;
}

// Checks ranges and string rules by walking the schema over a Config.
class Checker {
 public:
  Checker(std::optional<FieldError>& error, std::string path)
      : error_(error), path_(std::move(path)) {}

  template <typename T>
  void number(std::string_view key, const T& value, Bounds bounds, Number kind, Presence) {
    if constexpr (requires { value.has_value(); }) {
      if (value) check_number(key, *value, bounds, kind);
    } else {
      check_number(key, value, bounds, kind);
    }
  }

  void boolean(std::string_view, bool) {}

  void text(std::string_view key, const std::string& value, Text rule, Presence) {
    if (auto problem = text_rule_error(value, rule)) fail(path(key), *problem);
  }
  void text(std::string_view key, const std::optional<std::string>& value, Text rule,
            Presence presence) {
    if (value) text(key, *value, rule, presence);
  }

  template <typename E>
  void enumeration(std::string_view key, E value, const EnumTable<E>& table) {
    bool known = std::any_of(table.names.begin(), table.names.end(),
                             [&](const auto& entry) { return entry.value == value; });
    if (!known) fail(path(key), fmt::format("invalid value (allowed: {})", allowed_names(table)));
  }

  void host_port(std::string_view key, const HostPort& value) {
    if (auto problem = text_rule_error(value.host, Text::host)) {
      fail(path(key), "host " + *problem);
    } else if (value.port == 0) {
      fail(path(key), "port 0 is out of range (allowed: 1 to 65535)");
    }
  }

  template <typename S>
  void section(std::string_view key, S& value) {
    Checker child(error_, path(key));
    schema::describe(child, value);
  }

  template <typename S>
  void optional_section(std::string_view key, std::optional<S>& value) {
    if (value) section(key, *value);
  }

  template <typename S>
  void list(std::string_view key, std::vector<S>& items, Bounds count) {
    if (items.size() < count.min || items.size() > count.max) {
      return fail(path(key), fmt::format("has {} entries (allowed: {} to {})", items.size(),
                                         count.min, count.max));
    }
    for (std::size_t i = 0; i < items.size(); ++i) {
      Checker child(error_, fmt::format("{}[{}]", path(key), i));
      schema::describe(child, items[i]);
    }
  }

  void text_map(std::string_view key, const std::map<std::string, std::string>& items,
                Text key_rule, Text value_rule, Bounds count) {
    if (items.size() < count.min || items.size() > count.max) {
      return fail(path(key), fmt::format("has {} entries (allowed: {} to {})", items.size(),
                                         count.min, count.max));
    }
    for (const auto& [name, value] : items) {
      std::string item_path = fmt::format("{}.{}", path(key), name);
      if (auto problem = text_rule_error(name, key_rule)) fail(item_path, "name " + *problem);
      if (auto problem = text_rule_error(value, value_rule)) fail(item_path, *problem);
    }
  }

  void text_list(std::string_view key, const std::vector<std::string>& items, Text rule,
                 Bounds count) {
    if (items.size() < count.min || items.size() > count.max) {
      return fail(path(key), fmt::format("has {} entries (allowed: {} to {})", items.size(),
                                         count.min, count.max));
    }
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (auto problem = text_rule_error(items[i], rule)) {
        fail(fmt::format("{}[{}]", path(key), i), *problem);
      }
    }
  }

  void unsupported(std::string_view, std::string_view) {}

 private:
  std::string path(std::string_view key) const {
    return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
  }
  void fail(std::string path, std::string message) {
    if (!error_) error_ = FieldError{std::move(path), std::move(message)};
  }
  void check_number(std::string_view key, std::uint64_t value, Bounds bounds, Number kind) {
    if (value < bounds.min || value > bounds.max) {
      fail(path(key), out_of_range_message(value, bounds, kind));
    }
  }

  std::optional<FieldError>& error_;
  std::string path_;
};

// ---- relations between keys -----------------------------------------------------------

using Check = std::optional<FieldError>;

Check check_pools(const Config& c) {
  const auto& pools = c.layout.pools;
  bool has_default = false;
  for (std::size_t i = 0; i < pools.size(); ++i) {
    std::string path = fmt::format("layout.pools[{}]", i);
    has_default = has_default || pools[i].prefix.empty();
    for (std::size_t j = 0; j < i; ++j) {
      if (pools[j].prefix == pools[i].prefix) {
        return FieldError{path + ".prefix",
                          fmt::format("duplicate pool prefix '{}' (also layout.pools[{}]); "
                                      "pool prefixes must be unique", pools[i].prefix, j)};
      }
    }
    if (pools[i].prefix.size() > c.limits.max_key_bytes) {
      return FieldError{path + ".prefix",
                        fmt::format("prefix is {} bytes, longer than limits.max_key_bytes ({})",
                                    pools[i].prefix.size(), c.limits.max_key_bytes)};
    }
    const RetentionConfig& retention = pools[i].retention;
    if (pools[i].storage == Storage::stateless &&
        (retention.max_versions != 0 || retention.max_age_s != 0)) {
      return FieldError{path + ".retention",
                        "a stateless pool stores nothing, so retention must be 0 (unlimited) "
                        "or left out"};
    }
  }
  if (!has_default) {
    return FieldError{"layout.pools", "no default pool with prefix \"\" (every key needs a pool)"};
  }
  return std::nullopt;
}

Check check_ports(const Config& c) {
  const std::pair<std::string_view, std::uint16_t> ports[] = {
      {"ports.membership", c.ports.membership},
      {"ports.state_transfer", c.ports.state_transfer},
      {"ports.fabric", c.ports.fabric},
      {"rest.listen", c.rest.listen.port}};
  for (std::size_t i = 0; i < std::size(ports); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (ports[i].second == ports[j].second) {
        return FieldError{std::string(ports[i].first),
                          fmt::format("port {} is also used by {}; ports.membership, "
                                      "ports.state_transfer, ports.fabric and the rest.listen "
                                      "port must all differ", ports[i].second, ports[j].first)};
      }
    }
  }
  return std::nullopt;
}

Check check_timeouts(const Config& c) {
  if (c.timeouts.failure_timeout_ms <= c.timeouts.heartbeat_ms) {
    return FieldError{"timeouts.failure_timeout_ms",
                      fmt::format("{} must be greater than timeouts.heartbeat_ms ({}), "
                                  "preferably at least twice it",
                                  c.timeouts.failure_timeout_ms, c.timeouts.heartbeat_ms)};
  }
  return std::nullopt;
}

Check check_multicast(const Config& c) {
  const MulticastConfig& m = c.multicast;
  if (m.smc_payload_bytes > m.max_payload_bytes) {
    return FieldError{"multicast.smc_payload_bytes",
                      fmt::format("{} exceeds multicast.max_payload_bytes ({}); "
                                  "smc_payload_bytes must be <= max_payload_bytes",
                                  format_size(m.smc_payload_bytes),
                                  format_size(m.max_payload_bytes))};
  }
  if (m.rdmc_block_bytes > m.max_payload_bytes) {
    return FieldError{"multicast.rdmc_block_bytes",
                      fmt::format("{} exceeds multicast.max_payload_bytes ({}); "
                                  "rdmc_block_bytes must be <= max_payload_bytes",
                                  format_size(m.rdmc_block_bytes),
                                  format_size(m.max_payload_bytes))};
  }
  std::uint64_t needed = pinned_memory_needed_bytes(c);
  if (needed > m.pinned_memory_budget_bytes) {
    return FieldError{
        "multicast.pinned_memory_budget_bytes",
        fmt::format("the multicast buffers need {} bytes = layout.shards {} x multicast.window "
                    "{} x layout.replicas_per_shard {} x multicast.max_payload_bytes {}, but "
                    "the budget is {} bytes ({}); raise the budget or lower one of those",
                    needed, c.layout.shards, m.window, c.layout.replicas_per_shard,
                    m.max_payload_bytes, m.pinned_memory_budget_bytes,
                    format_size(m.pinned_memory_budget_bytes))};
  }
  return std::nullopt;
}

Check check_limits(const Config& c) {
  std::uint64_t largest_update =
      c.limits.max_key_bytes + c.limits.max_value_bytes + kUpdateHeaderAllowanceBytes;
  if (largest_update > c.multicast.max_payload_bytes) {
    return FieldError{"limits.max_value_bytes",
                      fmt::format("the largest update needs {} bytes = limits.max_key_bytes {} "
                                  "+ limits.max_value_bytes {} + {} header bytes, more than "
                                  "multicast.max_payload_bytes ({}); lower the limits or raise "
                                  "max_payload_bytes",
                                  largest_update, c.limits.max_key_bytes,
                                  c.limits.max_value_bytes, kUpdateHeaderAllowanceBytes,
                                  c.multicast.max_payload_bytes)};
  }
  return std::nullopt;
}

Check check_persistence(const Config& c) {
  const PersistenceConfig& p = c.persistence;
  if (p.segment_bytes < c.multicast.max_payload_bytes) {
    return FieldError{"persistence.segment_bytes",
                      fmt::format("{} is smaller than multicast.max_payload_bytes ({}); the "
                                  "largest update must fit in one segment",
                                  format_size(p.segment_bytes),
                                  format_size(c.multicast.max_payload_bytes))};
  }
  if (p.max_log_bytes != 0 && p.max_log_bytes / 2 < p.segment_bytes) {
    return FieldError{"persistence.max_log_bytes",
                      fmt::format("{} is less than two segments (2 x persistence.segment_bytes "
                                  "= 2 x {}); use 0 for unlimited",
                                  format_size(p.max_log_bytes), format_size(p.segment_bytes))};
  }
  return std::nullopt;
}

Check check_rest_and_watch(const Config& c) {
  // A maximal key, fully percent-encoded, must fit in the request line.
  std::uint64_t needed_header = 3 * c.limits.max_key_bytes + 1024;
  if (c.rest.max_header_bytes < needed_header) {
    return FieldError{"rest.max_header_bytes",
                      fmt::format("{} is too small for limits.max_key_bytes ({}): requests need "
                                  "at least 3 x max_key_bytes + 1024 = {} bytes",
                                  c.rest.max_header_bytes, c.limits.max_key_bytes,
                                  needed_header)};
  }
  if (c.watch.max_watchers > c.rest.max_connections) {
    return FieldError{"watch.max_watchers",
                      fmt::format("{} exceeds rest.max_connections ({}); every watcher holds a "
                                  "connection", c.watch.max_watchers, c.rest.max_connections)};
  }
  if (std::uint64_t{c.watch.keepalive_s} * 1000 >= c.rest.idle_timeout_ms) {
    return FieldError{"watch.keepalive_s",
                      fmt::format("{} s is not shorter than rest.idle_timeout_ms ({} ms); idle "
                                  "watch streams would be closed between keepalives",
                                  c.watch.keepalive_s, c.rest.idle_timeout_ms)};
  }
  return std::nullopt;
}

Check check_tls(const Config& c) {
  if (!c.rest.tls) return std::nullopt;
  const TlsConfig& tls = *c.rest.tls;
  if (tls.client_certs != ClientCerts::off && !tls.ca_file) {
    return FieldError{"rest.tls.client_certs",
                      fmt::format("'{}' needs rest.tls.ca_file (the CAs client certificates "
                                  "are verified against)", name(tls.client_certs))};
  }
  return std::nullopt;
}

Check check_auth(const Config& c) {
  const auto& tokens = c.auth.tokens;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    std::string path = fmt::format("auth.tokens[{}]", i);
    if (tokens[i].token_file.has_value() == tokens[i].token_sha256.has_value()) {
      return FieldError{path, "give exactly one of token_file and token_sha256"};
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (tokens[j].name == tokens[i].name) {
        return FieldError{path + ".name",
                          fmt::format("duplicate token name '{}' (also auth.tokens[{}])",
                                      tokens[i].name, j)};
      }
    }
    for (std::size_t k = 0; k < tokens[i].prefixes.size(); ++k) {
      if (tokens[i].prefixes[k].size() > c.limits.max_key_bytes) {
        return FieldError{fmt::format("{}.prefixes[{}]", path, k),
                          fmt::format("is longer than limits.max_key_bytes ({})",
                                      c.limits.max_key_bytes)};
      }
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> text_rule_error(std::string_view value, Text rule) {
  switch (rule) {
    case Text::any: return length_error(value, 0, kMaxTextBytes);
    case Text::path:
      if (value.find('\0') != std::string_view::npos) return "must not contain a NUL byte";
      return length_error(value, 1, kMaxTextBytes);
    case Text::host:
      if (std::any_of(value.begin(), value.end(),
                      [](char c) { return is_control_or_space(c) || c == '/'; })) {
        return fmt::format("'{}' is not a host name or address", value);
      }
      return length_error(value, 1, 253);
    case Text::name:
      if (!std::all_of(value.begin(), value.end(), is_name_char)) {
        return fmt::format("'{}' may only contain letters, digits, '.', '_' and '-'", value);
      }
      return length_error(value, 1, 64);
    case Text::token:
      if (std::any_of(value.begin(), value.end(), is_control_or_space)) {
        return fmt::format("'{}' must not contain spaces or control characters", value);
      }
      return length_error(value, 1, 64);
    case Text::delimiter: return length_error(value, 1, 16);
    case Text::log_level: {
      auto level = parse_log_level(value);
      if (!level.is_ok()) return level.status().message();
      return std::nullopt;
    }
    case Text::role:
      if (value == "read" || value == "write" || value == "admin") return std::nullopt;
      return fmt::format("unknown role '{}' (allowed: read, write, admin)", value);
    case Text::sha256:
      if (value.size() == 64 && std::all_of(value.begin(), value.end(), is_hex_digit)) {
        return std::nullopt;
      }
      return std::string("must be 64 hexadecimal digits (the SHA-256 of the token, e.g. from "
                         "`printf %s TOKEN | sha256sum`)");
  }
  return "unknown rule";
}

std::string out_of_range_message(std::uint64_t value, Bounds bounds, Number kind) {
  return fmt::format("{} is out of range (allowed: {} to {})", show(value, kind),
                     show(bounds.min, kind), show(bounds.max, kind));
}

std::optional<FieldError> find_error(const Config& config) {
  std::optional<FieldError> error;
  Config copy = config;  // the schema walks mutable sections; nothing is changed
  Checker checker(error, "");
  schema::describe(checker, copy);
  if (error) return error;
  for (auto check : {check_pools, check_ports, check_timeouts, check_multicast, check_limits,
                     check_persistence, check_rest_and_watch, check_tls, check_auth}) {
    if (auto found = check(config)) return found;
  }
  return std::nullopt;
}

}  // namespace detail

Status validate(const Config& config) {
  if (auto error = detail::find_error(config)) {
    return invalid_argument(fmt::format("{}: {}", error->path, error->message));
  }
  return Status::ok();
}

std::vector<std::string> config_warnings(const Config& config) {
  std::vector<std::string> warnings;
  if (config.timeouts.failure_timeout_ms / 2 < config.timeouts.heartbeat_ms) {
    warnings.push_back(fmt::format(
        "timeouts.failure_timeout_ms ({}) is less than twice timeouts.heartbeat_ms ({}): one "
        "late heartbeat can get a healthy node suspected",
        config.timeouts.failure_timeout_ms, config.timeouts.heartbeat_ms));
  }
  if (config.transport.provider == Provider::verbs && config.transport.domain == "lo") {
    warnings.emplace_back(
        "transport.provider is verbs but transport.domain is 'lo'; verbs needs an RDMA device "
        "name such as mlx5_0");
  }
  if (!config.persistence.fsync) {
    warnings.emplace_back(
        "persistence.fsync is false: acknowledged writes can be lost if a machine crashes");
  }
  if (config.auth.enabled() && !config.rest.tls) {
    warnings.emplace_back(
        "auth.tokens are set but rest.tls is not: bearer tokens cross the network in clear "
        "text");
  }
  if (config.auth.enabled() && config.layout.shards > 1 && !config.cluster.secret_file) {
    warnings.emplace_back(
        "auth.tokens are set without cluster.secret_file: requests forwarded to another "
        "shard's node cannot authenticate as a member and are refused");
  }
  if (config.layout.replicas_per_shard == 1) {
    warnings.emplace_back(
        "layout.replicas_per_shard is 1: every shard has a single copy; losing its node "
        "loses the shard");
  }
  return warnings;
}

}  // namespace squall::config
