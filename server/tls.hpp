// TLS for the REST API (docs/security.md): the server side of HttpServer, reloadable while
// connections run, and the client side for a node that talks to a peer's REST port.
//
// Contexts are OpenSSL's through Boost.Asio. A TlsServerContext holds the context built from
// rest.tls; reload() builds a new one from the same files and swaps it in: connections
// accepted later use it, open ones keep the one they started with (each holds a reference).
// A reload that fails (a missing file, a key that does not match its certificate) changes
// nothing and says why.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "common/status.hpp"
#include "config/config.hpp"

namespace squall::server {

using SslContext = boost::asio::ssl::context;

// A server context from rest.tls: TLS 1.2 or later, the certificate chain and key, and
// client certificates verified against ca_file as client_certs says.
Result<std::shared_ptr<SslContext>> make_server_context(const config::TlsConfig& tls);

// A client context for connecting to other nodes' REST ports when rest.tls is set: TLS 1.2
// or later, peers verified against ca_file (the system's CAs when unset), and this node's own
// certificate and key presented as its client certificate (so peers that require client
// certificates accept it when both are signed by the same CA).
Result<std::shared_ptr<SslContext>> make_client_context(const config::TlsConfig& tls);

// Prepares a client stream for the handshake with `host` (a name or an address): SNI (for
// names) and verification of the peer's certificate against that name or address.
// TlsStream: boost::asio::ssl::stream<...> or boost::beast::ssl_stream<...>.
template <typename TlsStream>
Status prepare_client_stream(TlsStream& stream, const std::string& host);

class TlsServerContext {
 public:
  // Builds the first context; fails like make_server_context(). The result is registered
  // for reload_tls_contexts() for as long as it lives.
  static Result<std::shared_ptr<TlsServerContext>> create(const config::TlsConfig& tls);
  ~TlsServerContext();
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

  // The context new connections use. Thread-safe.
  std::shared_ptr<SslContext> current() const;
  // Reads the files again and swaps the new context in; on error keeps the current one.
  // Thread-safe. Counts reloads (reload_count()).
  Status reload();
  std::uint64_t reload_count() const;
  std::uint32_t handshake_timeout_ms() const { return config_.handshake_timeout_ms; }
  const config::TlsConfig& config() const { return config_; }

 private:
  explicit TlsServerContext(config::TlsConfig tls) : config_(std::move(tls)) {}

  const config::TlsConfig config_;
  mutable std::mutex mutex_;
  std::shared_ptr<SslContext> current_;  // GUARDED_BY(mutex_)
  std::uint64_t reloads_ = 0;            // GUARDED_BY(mutex_)
};

// Reloads every TlsServerContext of the process (squalld: on SIGHUP). Returns the first
// error; the others are still reloaded. ok when there is none.
Status reload_tls_contexts();

// --- inline ----------------------------------------------------------------------------------

Status prepare_client_stream_impl(SSL* ssl, const std::string& host);

template <typename TlsStream>
Status prepare_client_stream(TlsStream& stream, const std::string& host) {
  SQUALL_TRY(prepare_client_stream_impl(stream.native_handle(), host));
  boost::system::error_code error;
  stream.set_verify_mode(boost::asio::ssl::verify_peer, error);
  if (!error) stream.set_verify_callback(boost::asio::ssl::host_name_verification(host), error);
  if (error) return invalid_argument("TLS peer verification: " + error.message());
  return Status::ok();
}

}  // namespace squall::server
