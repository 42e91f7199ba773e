// Internals of HttpServer: the state shared by its connections, and one connection.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "server/http_server.hpp"

namespace squall::server {

class HttpSession;

struct HttpServer::Shared {
  HttpServerOptions options;
  HttpHandler handler;
  MetricsRegistry* metrics = nullptr;  // may be null
  Gauge* connections_open = nullptr;
  Counter* connections_refused = nullptr;
  Counter* request_errors_total = nullptr;

  std::atomic<bool> stopping{false};
  mutable std::mutex mutex;
  std::condition_variable sessions_changed;
  std::unordered_map<HttpSession*, std::weak_ptr<HttpSession>> sessions;  // GUARDED_BY(mutex)

  // Declared after the registry: destroying the io_context destroys the sessions its pending
  // handlers hold, and they unregister themselves.
  boost::asio::io_context io;
  std::optional<boost::asio::ip::tcp::acceptor> acceptor;
  std::optional<boost::asio::steady_timer> accept_backoff;  // on the acceptor's strand
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;

  void add(const std::shared_ptr<HttpSession>& session);
  void remove(HttpSession* session);
  // Counts an error answered by the HTTP layer itself (label `kind`).
  void count_error(const char* kind);
};

// One connection. Lives as long as an operation or a responder refers to it; every member
// function runs on the connection's strand.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(boost::asio::ip::tcp::socket socket, HttpServer::Shared& shared);
  ~HttpSession() = default;
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  void start();
  // Closes the connection unless a request is being handled or answered (then it closes
  // after the answer). A stream ends at once: its source is released, the body is ended
  // (bounded by linger_ms) and the connection closes.
  void stop();
  boost::asio::any_io_executor executor() { return tcp().get_executor(); }

 private:
  enum class Phase : std::uint8_t { handshaking, idle, reading, handling, writing, streaming,
                                    lingering, closed };
  using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

  // The TCP layer (timeouts, shutdown, close) under TLS or not.
  boost::beast::tcp_stream& tcp() { return tls_ ? tls_->next_layer() : *plain_; }
  // Calls `operation` with the stream requests and answers travel on (TLS or plain).
  template <typename Operation>
  void io(Operation&& operation) {
    if (tls_) {
      operation(*tls_);
    } else {
      operation(*plain_);
    }
  }
  void on_handshake(boost::beast::error_code error);
  using Parser = boost::beast::http::request_parser<boost::beast::http::string_body>;

  void wait_for_request();
  void on_first_bytes(boost::beast::error_code error, std::size_t bytes);
  void read_header();
  void on_header(boost::beast::error_code error);
  void on_continue_sent(boost::beast::error_code error);
  void read_body();
  void on_body(boost::beast::error_code error);
  void dispatch();
  void send(HttpResponse response);
  void on_written(boost::beast::error_code error, bool keep_alive);
  void on_read_error(boost::beast::error_code error);
  void fail(unsigned status, const char* code, const char* message);
  // Streaming: a chunked body pulled from an HttpStreamSource,
  // one write at a time, while a read watches for the client going away.
  void start_stream(HttpResponse header, std::unique_ptr<HttpStreamSource> source);
  void read_while_streaming();
  void pump();
  void write_stream(bool last, std::string_view suffix);
  void on_stream_written(boost::beast::error_code error, bool last);
  void arm_heartbeat();
  void on_heartbeat(std::uint64_t generation);
  void stop_stream();
  void linger();
  void on_linger_read(boost::beast::error_code error);
  void close();

  // Unregisters the session from the server when destroyed. Declared first, so destroyed
  // last: stop() may tear the io_context down as soon as the last session is unregistered,
  // and the stream below must be gone by then (the last reference to a session may be
  // dropped on a backend thread, concurrently with stop()).
  struct Registration {
    HttpServer::Shared& shared;
    HttpSession* session;
    ~Registration() { shared.remove(session); }
  };
  Registration registration_;
  std::shared_ptr<SslContext> tls_context_;  // the context this connection started with
  std::optional<TlsStream> tls_;             // exactly one of tls_ and plain_ is set
  std::optional<boost::beast::tcp_stream> plain_;
  HttpServer::Shared& shared_;
  boost::beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  std::optional<HttpResponse> response_;  // the answer being written
  std::vector<char> drain_;               // linger scratch
  Phase phase_ = Phase::idle;
  bool stopping_ = false;
  bool request_keep_alive_ = false;  // the request being handled asked to keep the connection
  bool request_is_head_ = false;     // ... and was a HEAD request

  // Streaming state (phase streaming).
  std::unique_ptr<HttpStreamSource> source_;  // null once the stream is ending
  std::string stream_out_;  // being written: the header, a chunk's size line or the last chunk
  std::string payload_;     // being written after it: a chunk's data (source scratch)
  std::optional<boost::asio::steady_timer> stream_timer_;  // heartbeat, then stop deadline
  std::uint64_t timer_generation_ = 0;        // tells a stale timer completion from the current
  bool stream_writing_ = false;               // a write is in flight
  bool stream_ending_ = false;                // write the last chunk next, then close
};

}  // namespace squall::server
