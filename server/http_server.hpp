// HttpServer: HTTP/1.1 on Boost.Beast over Boost.Asio, with the limits of the configuration.
//
// N threads run one io_context; each connection runs on its own strand. A connection reads
// one request at a time (keep-alive, pipelined requests are served in order) and hands each
// complete request to the handler. Limits, each answered without reading further input:
//   - request line + headers over max_header_bytes: 431, then close;
//   - body over max_body_bytes: 413, then close, refused from Content-Length before the body
//     is read, and when a chunked body grows past it;
//   - malformed requests: 400, then close; a peer that closes early is just closed;
//   - more than max_connections open: the new connection gets 503 and is closed;
//   - read_timeout_ms bounds one whole request from its first byte (slow senders are cut
//     off) and the write of its response; idle_timeout_ms closes an idle keep-alive
//     connection. Timed-out connections are closed without an answer.
// After an error answer the connection drains unread input for at most linger_ms before
// closing, so the client can read the answer instead of getting a reset.
//
// With options.tls set, every connection is TLS: the handshake must complete within the
// context's handshake_timeout_ms, and a failed or slow handshake just closes that connection
// (counted as squall_http_protocol_errors_total{kind="tls_handshake"}). Without it, plain
// HTTP.
//
// stop() is graceful: no new connections, idle and half-read connections close at once,
// requests being handled get their answers (bounded by stop_timeout_ms), then threads end.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>

#include "common/status.hpp"
#include "config/config.hpp"
#include "server/http_types.hpp"
#include "server/metrics.hpp"
#include "server/tls.hpp"

namespace squall::server {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: any free port (see HttpServer::port())
  std::uint32_t threads = 2;
  std::uint32_t max_connections = 1024;
  std::uint64_t max_header_bytes = 32 * 1024;
  std::uint64_t max_body_bytes = 16ULL << 20;
  std::uint32_t read_timeout_ms = 30000;
  std::uint32_t idle_timeout_ms = 60000;
  std::uint32_t stop_timeout_ms = 5000;
  std::uint32_t linger_ms = 500;
  std::shared_ptr<TlsServerContext> tls;  // null: plain HTTP

  Status validate() const;
};

// The options from the node's configuration; the body limit is limits.max_value_bytes.
HttpServerOptions http_server_options(const config::RestConfig& rest,
                                      const config::LimitsConfig& limits,
                                      std::uint32_t threads);

class HttpServer {
 public:
  // Binds, listens and starts the threads. `metrics` (may be null) gets connection figures
  // and must outlive the server.
  static Result<std::unique_ptr<HttpServer>> start(HttpServerOptions options,
                                                   HttpHandler handler,
                                                   MetricsRegistry* metrics);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound port (the chosen one when options.port was 0).
  std::uint16_t port() const { return port_; }
  // Connections currently open.
  std::size_t open_connections() const;
  bool tls() const;
  // TLS: reads the certificate files again for new connections (TlsServerContext::reload).
  // Without TLS: ok, nothing to do.
  Status reload_tls();
  // Graceful stop; idempotent; blocks until the threads ended. Not from a server thread.
  void stop();

  struct Shared;

 private:
  HttpServer() = default;
  Status listen();
  void accept();
  void on_accept(boost::system::error_code error, boost::asio::ip::tcp::socket socket);

  std::unique_ptr<Shared> shared_;
  std::uint16_t port_ = 0;
  bool stopped_ = false;
};

}  // namespace squall::server
