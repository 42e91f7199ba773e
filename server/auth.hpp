// Bearer-token authentication and authorization of the REST API (docs/security.md).
//
// Tokens come from auth.tokens: each has a name, the SHA-256 of its secret (read from
// token_file at start-up, or given as token_sha256), roles and key prefixes. A request's
// `Authorization: Bearer <token>` is hashed with SHA-256 and compared with every configured
// digest in constant time (no early exit: the time taken does not depend on which token, if
// any, matched). Secrets are never logged; only token names are.
//
// Roles: read (GET of keys, lists, history, watch), write (PUT and DELETE of keys,
// conditional or not), admin (everything: read, write, /v1/cluster, and /metrics, /healthz,
// /readyz when those are admin-only). Prefixes bound the keys a token reaches, for every
// role: a key must start with one of them; a list or a watch must ask for a prefix that
// starts with one of them (a wider one is refused, never clipped). No prefixes: every key.
//
// Forwarding between nodes: a node forwards a request it has already authorized to a peer
// with node_authorization(), a token derived from the cluster secret; peers accept it as an
// admin without prefixes. Without a cluster secret there is no node token.
//
// Token rotation: an AuthSource holds the Authorizer a server uses; reload() (squalld: on
// SIGHUP, through reload_auth_sources()) reads the token files and the cluster secret again.
// Requests already past authentication finish under the tokens they were checked with.
// Roles, prefixes and the list of tokens come from the configuration, read once: changing
// them needs a restart.
//
// Pure logic apart from from_config() (which reads the token files); thread-safe once built.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/hmac.hpp"
#include "common/status.hpp"
#include "config/config.hpp"

namespace squall::server {

// A SHA-256 digest (the same 32 bytes as an HMAC-SHA256).
using TokenDigest = Hmac;

TokenDigest sha256(std::string_view bytes);

// What a request needs.
enum class Access : std::uint8_t { read, write, admin };

// The keys a request touches, for the prefix rule.
struct KeyScope {
  enum class Kind : std::uint8_t {
    none,    // no key (cluster, metrics, health)
    key,     // one key
    prefix,  // every key starting with `value` ("" is every key)
  };
  Kind kind = Kind::none;
  std::string_view value;
};

struct TokenGrant {
  std::string name;
  TokenDigest digest{};
  bool read = false;
  bool write = false;
  bool admin = false;
  std::vector<std::string> prefixes;  // empty: every key
};

class Authorizer {
 public:
  // Auth off: enabled() is false.
  Authorizer() = default;
  Authorizer(std::vector<TokenGrant> grants, config::EndpointAccess metrics,
             config::EndpointAccess health);

  // From auth.tokens (reading each token_file: its content without surrounding whitespace,
  // at least 16 bytes) and, when auth is on and cluster.secret_file is set, the node token.
  // Errors name the token and file, never the content.
  static Result<std::shared_ptr<const Authorizer>> from_config(const config::Config& config);

  bool enabled() const { return !grants_.empty(); }
  config::EndpointAccess metrics_access() const { return metrics_; }
  config::EndpointAccess health_access() const { return health_; }

  // The grant whose token is in `authorization` ("Bearer <token>", the scheme in any case),
  // or null (no header, another scheme, an unknown token). Constant time in which grant.
  const TokenGrant* authenticate(std::string_view authorization) const;
  // Whether `grant` allows `access` to `scope`.
  static bool permits(const TokenGrant& grant, Access access, KeyScope scope);

 private:
  std::vector<TokenGrant> grants_;
  config::EndpointAccess metrics_ = config::EndpointAccess::open;
  config::EndpointAccess health_ = config::EndpointAccess::open;
};

class AuthSource {
 public:
  // From the configuration (Authorizer::from_config); registered for reload_auth_sources()
  // for as long as it lives.
  static Result<std::shared_ptr<AuthSource>> create(const config::Config& config);
  // A fixed Authorizer (tests, or no configuration): reload() keeps it.
  static std::shared_ptr<AuthSource> fixed(std::shared_ptr<const Authorizer> authorizer);
  ~AuthSource();
  AuthSource(const AuthSource&) = delete;
  AuthSource& operator=(const AuthSource&) = delete;

  // The tokens to check a request with; hold the pointer while using its grants.
  std::shared_ptr<const Authorizer> current() const;
  // Reads the files again and swaps the result in; on error keeps the current tokens.
  Status reload();

 private:
  AuthSource() = default;

  std::optional<config::Config> config_;  // none: fixed
  mutable std::mutex mutex_;
  std::shared_ptr<const Authorizer> current_;  // GUARDED_BY(mutex_)
};

// Reloads every AuthSource of the process (squalld: on SIGHUP). The first error; the others
// are still reloaded.
Status reload_auth_sources();

// The grant of the node token under `cluster_secret`: name "squall-node", admin, every key.
TokenGrant node_grant(std::string_view cluster_secret);
// "Bearer <node token>": the Authorization a node puts on requests it forwards to peers.
std::string node_authorization(std::string_view cluster_secret);
// The same from a configuration: reads cluster.secret_file; "" when auth is off or no secret
// is configured (peers then refuse forwarded requests with 401 when they have auth on).
Result<std::string> node_authorization(const config::Config& config);

// Reads a secret file: its content without surrounding whitespace, at least `min_bytes`.
Result<std::string> read_secret_file(const std::string& path, std::string_view what,
                                     std::size_t min_bytes);

}  // namespace squall::server
