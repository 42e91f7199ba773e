#include "server/tls.hpp"

#include <openssl/ssl.h>

#include <algorithm>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <fmt/format.h>

#include "common/log.hpp"

namespace squall::server {
namespace ssl = boost::asio::ssl;

namespace {

// Session resumption with client certificates needs a session id context.
constexpr unsigned char kSessionIdContext[] = "squall-rest";

constexpr auto kOptions = ssl::context::default_workarounds | ssl::context::no_sslv2 |
                          ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                          ssl::context::no_tlsv1_1 | ssl::context::single_dh_use;

Status tls_error(std::string_view what, const std::string& path,
                 const boost::system::error_code& error) {
  return invalid_argument(fmt::format("TLS {} '{}': {}", what, path, error.message()));
}

// The certificate chain and its key; OpenSSL refuses a key that does not match.
Status use_identity(SslContext& context, const config::TlsConfig& tls) {
  boost::system::error_code error;
  context.use_certificate_chain_file(tls.cert_file, error);
  if (error) return tls_error("certificate", tls.cert_file, error);
  context.use_private_key_file(tls.key_file, ssl::context::pem, error);
  if (error) return tls_error("private key", tls.key_file, error);
  if (SSL_CTX_check_private_key(context.native_handle()) != 1) {
    return invalid_argument(fmt::format("TLS private key '{}' does not match certificate '{}'",
                                        tls.key_file, tls.cert_file));
  }
  return Status::ok();
}

struct Registry {
  std::mutex mutex;
  std::vector<TlsServerContext*> contexts;  // GUARDED_BY(mutex)
};

Registry& registry() {
  static Registry instance;
  return instance;
}

}  // namespace

Result<std::shared_ptr<SslContext>> make_server_context(const config::TlsConfig& tls) {
  auto context = std::make_shared<SslContext>(ssl::context::tls_server);
  boost::system::error_code error;
  context->set_options(kOptions, error);
  if (error) return invalid_argument("TLS options: " + error.message());
  SQUALL_TRY(use_identity(*context, tls));
  if (tls.client_certs != config::ClientCerts::off) {
    SQUALL_ASSERT(tls.ca_file.has_value(), "client certificates without a CA file");
    context->load_verify_file(*tls.ca_file, error);
    if (error) return tls_error("CA file", *tls.ca_file, error);
    auto mode = ssl::verify_peer;
    if (tls.client_certs == config::ClientCerts::require) {
      mode |= ssl::verify_fail_if_no_peer_cert;
    }
    context->set_verify_mode(mode, error);
    if (error) return invalid_argument("TLS verify mode: " + error.message());
    SSL_CTX_set_session_id_context(context->native_handle(), kSessionIdContext,
                                   sizeof kSessionIdContext - 1);
  }
  return context;
}

Result<std::shared_ptr<SslContext>> make_client_context(const config::TlsConfig& tls) {
  auto context = std::make_shared<SslContext>(ssl::context::tls_client);
  boost::system::error_code error;
  context->set_options(kOptions, error);
  if (error) return invalid_argument("TLS options: " + error.message());
  if (tls.ca_file) {
    context->load_verify_file(*tls.ca_file, error);
    if (error) return tls_error("CA file", *tls.ca_file, error);
  } else {
    context->set_default_verify_paths(error);
    if (error) return invalid_argument("TLS default CAs: " + error.message());
  }
  context->set_verify_mode(ssl::verify_peer, error);
  if (error) return invalid_argument("TLS verify mode: " + error.message());
  SQUALL_TRY(use_identity(*context, tls));
  return context;
}

Status prepare_client_stream_impl(SSL* ssl, const std::string& host) {
  boost::system::error_code error;
  (void)boost::asio::ip::make_address(host, error);
  // SNI carries names only (RFC 6066); an address is verified but not sent.
  // SSL_set_tlsext_host_name is a macro with an old-style cast; this is its expansion.
  if (error && SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                        const_cast<char*>(host.c_str())) != 1) {
    return invalid_argument(fmt::format("TLS server name '{}' refused", host));
  }
  return Status::ok();
}

// --- TlsServerContext ------------------------------------------------------------------------

Result<std::shared_ptr<TlsServerContext>> TlsServerContext::create(
    const config::TlsConfig& tls) {
  auto context = make_server_context(tls);
  if (!context.is_ok()) return context.status();
  std::shared_ptr<TlsServerContext> holder(new TlsServerContext(tls));
  holder->current_ = std::move(context.value());
  Registry& all = registry();
  std::lock_guard lock(all.mutex);
  all.contexts.push_back(holder.get());
  return holder;
}

TlsServerContext::~TlsServerContext() {
  Registry& all = registry();
  std::lock_guard lock(all.mutex);
  std::erase(all.contexts, this);
}

std::shared_ptr<SslContext> TlsServerContext::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

Status TlsServerContext::reload() {
  auto context = make_server_context(config_);  // outside the lock: reads files
  if (!context.is_ok()) {
    logger("server")->error("TLS reload failed, keeping the current certificate: {}",
                            context.status().message());
    return context.status();
  }
  std::lock_guard lock(mutex_);
  current_ = std::move(context.value());
  ++reloads_;
  logger("server")->info("TLS certificate reloaded from {}", config_.cert_file);
  return Status::ok();
}

std::uint64_t TlsServerContext::reload_count() const {
  std::lock_guard lock(mutex_);
  return reloads_;
}

Status reload_tls_contexts() {
  Registry& all = registry();
  // Held throughout: a context cannot be destroyed while it is being reloaded.
  std::lock_guard lock(all.mutex);
  Status first;
  for (TlsServerContext* context : all.contexts) {
    Status reloaded = context->reload();
    if (first.is_ok() && !reloaded.is_ok()) first = reloaded;
  }
  return first;
}

}  // namespace squall::server
