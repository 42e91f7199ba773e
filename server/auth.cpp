#include "server/auth.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

#include "common/log.hpp"

namespace squall::server {

namespace {

constexpr std::size_t kMinTokenBytes = 16;
constexpr std::size_t kMinSecretBytes = 16;
constexpr std::size_t kMaxSecretBytes = 4096;
constexpr std::string_view kNodeGrantName = "squall-node";
// The node token is an HMAC of this label, so it differs from every other use of the secret.
constexpr std::string_view kNodeTokenLabel = "squall rest forwarding v1";

std::string hex(const TokenDigest& digest) {
  std::string out;
  out.reserve(digest.size() * 2);
  for (std::byte b : digest) out += fmt::format("{:02x}", std::to_integer<unsigned>(b));
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// REQUIRES: 64 hexadecimal digits (validated by the configuration).
TokenDigest parse_digest(std::string_view text) {
  SQUALL_ASSERT(text.size() == 2 * kHmacBytes, "a digest of {} digits", text.size());
  TokenDigest digest{};
  for (std::size_t i = 0; i < digest.size(); ++i) {
    const int high = hex_value(text[2 * i]);
    const int low = hex_value(text[2 * i + 1]);
    SQUALL_ASSERT(high >= 0 && low >= 0, "a digest with a non-hex digit");
    digest[i] = static_cast<std::byte>(high * 16 + low);
  }
  return digest;
}

bool has_role(const std::vector<std::string>& roles, std::string_view role) {
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

Result<TokenGrant> grant_of(const config::TokenConfig& token) {
  TokenGrant grant;
  grant.name = token.name;
  if (token.token_file) {
    auto secret = read_secret_file(*token.token_file,
                                   fmt::format("auth token '{}'", token.name), kMinTokenBytes);
    if (!secret.is_ok()) return secret.status();
    grant.digest = sha256(secret.value());
  } else {
    SQUALL_ASSERT(token.token_sha256.has_value(), "token '{}' without a secret", token.name);
    grant.digest = parse_digest(*token.token_sha256);
  }
  grant.read = has_role(token.roles, "read");
  grant.write = has_role(token.roles, "write");
  grant.admin = has_role(token.roles, "admin");
  grant.prefixes = token.prefixes;
  return grant;
}

bool in_scope(const std::vector<std::string>& prefixes, std::string_view keys) {
  if (prefixes.empty()) return true;
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [&](const std::string& prefix) { return keys.starts_with(prefix); });
}

// The token of "Bearer <token>" (scheme case-insensitive, spaces around the token ignored).
std::optional<std::string_view> bearer_token(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    const auto c = static_cast<unsigned char>(authorization[i]);
    if (std::tolower(c) != kScheme[i]) return std::nullopt;
  }
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) {
    token.remove_prefix(1);
  }
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  if (token.empty()) return std::nullopt;
  return token;
}

struct Registry {
  std::mutex mutex;
  std::vector<AuthSource*> sources;  // GUARDED_BY(mutex)
};

Registry& registry() {
  static Registry instance;
  return instance;
}

}  // namespace

TokenDigest sha256(std::string_view bytes) {
  TokenDigest digest{};
  unsigned int length = 0;
  const int done = EVP_Digest(bytes.data(), bytes.size(),
                              reinterpret_cast<unsigned char*>(digest.data()), &length,
                              EVP_sha256(), nullptr);
  SQUALL_ASSERT(done == 1 && length == digest.size(), "SHA-256 failed");
  return digest;
}

Result<std::string> read_secret_file(const std::string& path, std::string_view what,
                                     std::size_t min_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error(fmt::format("{}: cannot read '{}'", what, path));
  std::string secret;
  char buffer[512];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    secret.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (secret.size() > kMaxSecretBytes) {
      return invalid_argument(fmt::format("{}: '{}' is longer than {} bytes", what, path,
                                          kMaxSecretBytes));
    }
  }
  const char* space = " \t\r\n";
  secret.erase(0, secret.find_first_not_of(space));
  const std::size_t last = secret.find_last_not_of(space);
  secret.erase(last == std::string::npos ? 0 : last + 1);
  if (secret.size() < min_bytes) {
    return invalid_argument(fmt::format("{}: '{}' holds {} bytes; at least {} are required",
                                        what, path, secret.size(), min_bytes));
  }
  return secret;
}

Authorizer::Authorizer(std::vector<TokenGrant> grants, config::EndpointAccess metrics,
                       config::EndpointAccess health)
    : grants_(std::move(grants)), metrics_(metrics), health_(health) {}

Result<std::shared_ptr<const Authorizer>> Authorizer::from_config(
    const config::Config& config) {
  std::vector<TokenGrant> grants;
  for (const config::TokenConfig& token : config.auth.tokens) {
    auto grant = grant_of(token);
    if (!grant.is_ok()) return grant.status();
    grants.push_back(std::move(grant.value()));
  }
  if (!grants.empty() && config.cluster.secret_file) {
    auto secret = read_secret_file(*config.cluster.secret_file, "cluster.secret_file",
                                   kMinSecretBytes);
    if (!secret.is_ok()) return secret.status();
    grants.push_back(node_grant(secret.value()));
  }
  if (!grants.empty()) {
    logger("server")->info("REST authentication on: {} tokens", config.auth.tokens.size());
  }
  return std::shared_ptr<const Authorizer>(
      std::make_shared<Authorizer>(std::move(grants), config.auth.metrics, config.auth.health));
}

const TokenGrant* Authorizer::authenticate(std::string_view authorization) const {
  const auto token = bearer_token(authorization);
  if (!token) return nullptr;
  const TokenDigest digest = sha256(*token);
  const TokenGrant* found = nullptr;
  for (const TokenGrant& grant : grants_) {
    // Every digest is compared, whether or not one matched already.
    const bool equal = hmac_equal(grant.digest, digest);
    if (equal && found == nullptr) found = &grant;
  }
  return found;
}

bool Authorizer::permits(const TokenGrant& grant, Access access, KeyScope scope) {
  bool role = grant.admin;
  if (access == Access::read) role = role || grant.read;
  if (access == Access::write) role = role || grant.write;
  if (!role) return false;
  if (scope.kind == KeyScope::Kind::none) return true;
  return in_scope(grant.prefixes, scope.value);
}

// --- AuthSource ------------------------------------------------------------------------------

Result<std::shared_ptr<AuthSource>> AuthSource::create(const config::Config& config) {
  auto authorizer = Authorizer::from_config(config);
  if (!authorizer.is_ok()) return authorizer.status();
  std::shared_ptr<AuthSource> source(new AuthSource());
  source->config_ = config;
  source->current_ = std::move(authorizer.value());
  Registry& all = registry();
  std::lock_guard lock(all.mutex);
  all.sources.push_back(source.get());
  return source;
}

std::shared_ptr<AuthSource> AuthSource::fixed(std::shared_ptr<const Authorizer> authorizer) {
  std::shared_ptr<AuthSource> source(new AuthSource());
  source->current_ = authorizer != nullptr ? std::move(authorizer)
                                           : std::make_shared<const Authorizer>();
  return source;
}

AuthSource::~AuthSource() {
  Registry& all = registry();
  std::lock_guard lock(all.mutex);
  std::erase(all.sources, this);
}

std::shared_ptr<const Authorizer> AuthSource::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

Status AuthSource::reload() {
  if (!config_) return Status::ok();
  auto authorizer = Authorizer::from_config(*config_);  // outside the lock: reads files
  if (!authorizer.is_ok()) {
    logger("server")->error("token reload failed, keeping the current tokens: {}",
                            authorizer.status().message());
    return authorizer.status();
  }
  std::lock_guard lock(mutex_);
  current_ = std::move(authorizer.value());
  return Status::ok();
}

Status reload_auth_sources() {
  Registry& all = registry();
  std::lock_guard lock(all.mutex);  // held: a source cannot go while it is reloaded
  Status first;
  for (AuthSource* source : all.sources) {
    Status reloaded = source->reload();
    if (first.is_ok() && !reloaded.is_ok()) first = reloaded;
  }
  return first;
}

TokenGrant node_grant(std::string_view cluster_secret) {
  const std::string token = node_authorization(cluster_secret).substr(7);  // after "Bearer "
  TokenGrant grant;
  grant.name = std::string(kNodeGrantName);
  grant.digest = sha256(token);
  grant.admin = true;
  return grant;
}

std::string node_authorization(std::string_view cluster_secret) {
  const Hmac mac = hmac_sha256(cluster_secret, std::as_bytes(std::span(kNodeTokenLabel)));
  return "Bearer squall-node." + hex(mac);
}

Result<std::string> node_authorization(const config::Config& config) {
  if (!config.auth.enabled() || !config.cluster.secret_file) return std::string();
  auto secret = read_secret_file(*config.cluster.secret_file, "cluster.secret_file",
                                 kMinSecretBytes);
  if (!secret.is_ok()) return secret.status();
  return node_authorization(secret.value());
}

}  // namespace squall::server
