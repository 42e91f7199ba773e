#include "server/http_session.hpp"

#include <array>
#include <sstream>

#include <boost/beast/core/string.hpp>
#include <fmt/format.h>

#include "common/log.hpp"
#include "server/rest_response.hpp"

namespace squall::server {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

namespace {

constexpr std::size_t kFirstReadBytes = 4096;
constexpr std::size_t kLingerReadBytes = 16 * 1024;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::string_view kCrlf = "\r\n";
constexpr std::size_t kKeepStreamBufferBytes = 1 << 20;

std::chrono::milliseconds ms(std::uint32_t value) { return std::chrono::milliseconds(value); }

// Errors that mean the peer went away or our own timer/close fired: nothing to answer.
bool is_disconnect(beast::error_code error) {
  return error == http::error::end_of_stream || error == http::error::partial_message ||
         error == net::error::eof || error == net::error::connection_reset ||
         error == net::error::operation_aborted || error == net::error::broken_pipe ||
         error == net::error::bad_descriptor || error == beast::error::timeout;
}

}  // namespace

HttpSession::HttpSession(net::ip::tcp::socket socket, HttpServer::Shared& shared)
    : registration_{shared, this},
      shared_(shared),
      // Room for the largest header the parser accepts, and some pipelined input.
      buffer_(shared.options.max_header_bytes + kFirstReadBytes) {
  if (shared.options.tls) {
    tls_context_ = shared.options.tls->current();
    tls_.emplace(std::move(socket), *tls_context_);
  } else {
    plain_.emplace(std::move(socket));
  }
}

void HttpSession::start() {
  beast::error_code ignored;
  tcp().socket().set_option(net::ip::tcp::no_delay(true), ignored);
  if (!tls_) return wait_for_request();
  // The handshake, bounded: a client that connects and says nothing holds no slot for long.
  phase_ = Phase::handshaking;
  tcp().expires_after(ms(shared_.options.tls->handshake_timeout_ms()));
  tls_->async_handshake(net::ssl::stream_base::server,
                        beast::bind_front_handler(&HttpSession::on_handshake,
                                                  shared_from_this()));
}

void HttpSession::on_handshake(beast::error_code error) {
  if (phase_ != Phase::handshaking) return;
  if (error) {
    shared_.count_error("tls_handshake");
    logger("server")->debug("TLS handshake failed: {}", error.message());
    return close();
  }
  wait_for_request();
}

void HttpSession::stop() {
  stopping_ = true;
  if (phase_ == Phase::streaming) return stop_stream();
  if (phase_ == Phase::handshaking || phase_ == Phase::idle || phase_ == Phase::reading ||
      phase_ == Phase::lingering) {
    close();
  }
}

// Idle: wait (idle timeout) for the first byte of the next request, unless one is buffered.
void HttpSession::wait_for_request() {
  if (stopping_) return close();
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(shared_.options.max_header_bytes));
  parser_->body_limit(shared_.options.max_body_bytes);
  if (buffer_.size() > 0) return read_header();
  phase_ = Phase::idle;
  tcp().expires_after(ms(shared_.options.idle_timeout_ms));
  io([this](auto& stream) {
    stream.async_read_some(buffer_.prepare(kFirstReadBytes),
                           beast::bind_front_handler(&HttpSession::on_first_bytes,
                                                     shared_from_this()));
  });
}

void HttpSession::on_first_bytes(beast::error_code error, std::size_t bytes) {
  if (error) return close();
  buffer_.commit(bytes);
  read_header();
}

// Reading: the whole request, header then body, within one read timeout.
void HttpSession::read_header() {
  phase_ = Phase::reading;
  tcp().expires_after(ms(shared_.options.read_timeout_ms));
  io([this](auto& stream) {
    http::async_read_header(stream, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code error, std::size_t) {
                              self->on_header(error);
                            });
  });
}

void HttpSession::on_header(beast::error_code error) {
  if (error) return on_read_error(error);
  if (parser_->is_done()) return dispatch();
  const auto& header = parser_->get();
  if (beast::iequals(header[http::field::expect], "100-continue")) {
    io([this](auto& stream) {
      net::async_write(stream, net::buffer(kContinue.data(), kContinue.size()),
                       [self = shared_from_this()](beast::error_code write_error,
                                                   std::size_t) {
                         self->on_continue_sent(write_error);
                       });
    });
    return;
  }
  read_body();
}

void HttpSession::on_continue_sent(beast::error_code error) {
  if (error) return close();
  read_body();
}

void HttpSession::read_body() {
  io([this](auto& stream) {
    http::async_read(stream, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code error, std::size_t) {
                       if (error) return self->on_read_error(error);
                       self->dispatch();
                     });
  });
}

void HttpSession::on_read_error(beast::error_code error) {
  if (error == http::error::header_limit || error == http::error::buffer_overflow) {
    return fail(431, "headers_too_large", "request line and headers exceed the limit");
  }
  if (error == http::error::body_limit) {
    return fail(413, "payload_too_large", "request body exceeds the value size limit");
  }
  if (error == beast::error::timeout) shared_.count_error("read_timeout");
  // Anything but a parse error (an I/O failure, a peer gone) has nobody left to answer.
  const auto& parse_errors = http::make_error_code(http::error::end_of_stream).category();
  if (is_disconnect(error) || error.category() != parse_errors) return close();
  fail(400, "bad_request", "malformed HTTP request");
}

// Handling: the handler owns the request; the responder brings the answer back here.
void HttpSession::dispatch() {
  phase_ = Phase::handling;
  tcp().expires_never();
  HttpRequest request = parser_->release();
  parser_.reset();
  auto self = shared_from_this();
  HttpResponder respond(
      [self](HttpResponse response) {
        net::post(self->executor(), [self, response = std::move(response)]() mutable {
          self->send(std::move(response));
        });
      },
      [self](HttpResponse header, std::unique_ptr<HttpStreamSource> source) {
        net::post(self->executor(), [self, header = std::move(header),
                                     source = std::move(source)]() mutable {
          self->start_stream(std::move(header), std::move(source));
        });
      });
  request_keep_alive_ = request.keep_alive();
  request_is_head_ = request.method() == http::verb::head;
  try {
    shared_.handler(std::move(request), std::move(respond));
  } catch (const std::exception& exception) {
    logger("server")->error("request handler threw: {}", exception.what());
    HttpResponse response = error_response(HttpStatus::internal_server_error, "internal",
                                           "internal error");
    // The responder copies may still answer; the first answer wins (send() checks phase).
    send(std::move(response));
  }
}

void HttpSession::send(HttpResponse response) {
  if (phase_ != Phase::handling) return;  // closed meanwhile, or a second answer
  phase_ = Phase::writing;
  const bool keep_alive =
      request_keep_alive_ && response.keep_alive() && !stopping_ && !shared_.stopping.load();
  response.version(11);
  response.keep_alive(keep_alive);
  response.prepare_payload();
  if (request_is_head_) {
    // A HEAD answer has the header of the GET answer and no body.
    const std::size_t size_bytes = response.body().size();
    response.body().clear();
    response.content_length(size_bytes);
  }
  response_.emplace(std::move(response));
  tcp().expires_after(ms(shared_.options.read_timeout_ms));
  io([this, keep_alive](auto& stream) {
    http::async_write(stream, *response_,
                      [self = shared_from_this(), keep_alive](beast::error_code error,
                                                              std::size_t) {
                        self->on_written(error, keep_alive);
                      });
  });
}

void HttpSession::on_written(beast::error_code error, bool keep_alive) {
  response_.reset();
  if (error || !keep_alive || stopping_) {
    beast::error_code ignored;
    tcp().socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
    return close();
  }
  wait_for_request();
}

// An answer from the HTTP layer itself; the connection's input can no longer be trusted, so
// it is closed after the answer (with a bounded drain: see linger()).
void HttpSession::fail(unsigned status, const char* code, const char* message) {
  shared_.count_error(code);
  phase_ = Phase::writing;
  HttpResponse response = error_response(static_cast<HttpStatus>(status), code, message);
  response.version(11);
  response.keep_alive(false);
  response.prepare_payload();
  response_.emplace(std::move(response));
  tcp().expires_after(ms(shared_.options.read_timeout_ms));
  io([this](auto& stream) {
    http::async_write(stream, *response_,
                      [self = shared_from_this()](beast::error_code error, std::size_t) {
                        self->response_.reset();
                        if (error) return self->close();
                        self->linger();
                      });
  });
}

void HttpSession::linger() {
  phase_ = Phase::lingering;
  if (stopping_) return close();
  beast::error_code ignored;
  tcp().socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  drain_.resize(kLingerReadBytes);
  tcp().expires_after(ms(shared_.options.linger_ms));
  io([this](auto& stream) {
    stream.async_read_some(net::buffer(drain_),
                           [self = shared_from_this()](beast::error_code error, std::size_t) {
                             self->on_linger_read(error);
                           });
  });
}

void HttpSession::on_linger_read(beast::error_code error) {
  if (error) return close();
  // Keep discarding until the peer closes or the (unchanged) linger deadline passes.
  io([this](auto& stream) {
    stream.async_read_some(net::buffer(drain_),
                           [self = shared_from_this()](beast::error_code next, std::size_t) {
                             self->on_linger_read(next);
                           });
  });
}

void HttpSession::close() {
  if (phase_ == Phase::closed) return;
  phase_ = Phase::closed;
  beast::error_code ignored;
  tcp().socket().close(ignored);
  source_.reset();  // a stream's resources (its watcher) go now, not with the last reference
  if (stream_timer_) stream_timer_->cancel();
}

// --- Streaming -------------------------------------------------------------------------------
//
// The header goes out with Transfer-Encoding: chunked and Connection: close; then each batch
// of the source is one chunk. Exactly one write is in flight at a time and the source is
// asked for more only when it completed: the socket's send buffer is the only queue, so a
// client that stops reading stops the source (which then sheds load on its own terms) and
// each write must complete within read_timeout_ms or the connection is closed. A read stays
// pending the whole time so a client that goes away ends the stream at once.

void HttpSession::start_stream(HttpResponse header, std::unique_ptr<HttpStreamSource> source) {
  if (phase_ != Phase::handling) return;  // closed meanwhile, or a second answer
  if (request_is_head_) {
    // The header of the GET answer, without a body.
    source.reset();
    header.body().clear();
    return send(std::move(header));
  }
  if (stopping_ || shared_.stopping.load()) {
    source.reset();
    return send(unavailable_response("the server is stopping", 1));
  }
  phase_ = Phase::streaming;
  source_ = std::move(source);
  header.version(11);
  header.keep_alive(false);
  header.body().clear();
  header.chunked(true);
  std::ostringstream text;
  text << header.base();
  stream_out_ = text.str();
  payload_.clear();
  stream_timer_.emplace(executor());
  std::weak_ptr<HttpSession> weak = weak_from_this();
  source_->start([weak, strand = executor()] {
    net::post(strand, [weak] {
      if (auto self = weak.lock()) self->pump();
    });
  });
  read_while_streaming();
  write_stream(false, {});
}

void HttpSession::read_while_streaming() {
  drain_.resize(kLingerReadBytes);
  tcp().expires_never();  // only the read's deadline: a pending write keeps its own
  io([this](auto& stream) {
    stream.async_read_some(net::buffer(drain_),
                           [self = shared_from_this()](beast::error_code error, std::size_t) {
                             if (self->phase_ != Phase::streaming) return;
                             if (error) return self->close();  // the client went away
                             self->read_while_streaming();     // input is discarded
                           });
  });
}

// Asks the source for the next chunk unless a write is in flight; ends the body once the
// source is over (or gone).
void HttpSession::pump() {
  if (phase_ != Phase::streaming || stream_writing_) return;
  if (!stream_ending_) {
    payload_.clear();
    const HttpStreamSource::Next next = source_->next(payload_);
    if (next == HttpStreamSource::Next::wait) return;
    if (next == HttpStreamSource::Next::data) {
      SQUALL_ASSERT(!payload_.empty(), "a stream source returned empty data");
      stream_out_ = fmt::format("{:x}\r\n", payload_.size());
      return write_stream(false, kCrlf);
    }
    stream_ending_ = true;
  }
  source_.reset();
  payload_.clear();
  stream_out_ = "0\r\n\r\n";
  write_stream(true, {});
}

// Writes stream_out_, payload_ and `suffix` (static). A write to a stalled client fails after
// read_timeout_ms (linger_ms once the server is stopping) and closes the connection.
void HttpSession::write_stream(bool last, std::string_view suffix) {
  stream_writing_ = true;
  tcp().expires_after(
      ms(stopping_ ? shared_.options.linger_ms : shared_.options.read_timeout_ms));
  const std::array<net::const_buffer, 3> buffers{net::buffer(stream_out_),
                                                 net::buffer(payload_),
                                                 net::buffer(suffix.data(), suffix.size())};
  io([this, &buffers, last](auto& stream) {
    net::async_write(stream, buffers,
                     [self = shared_from_this(), last](beast::error_code error, std::size_t) {
                       self->on_stream_written(error, last);
                     });
  });
}

void HttpSession::on_stream_written(beast::error_code error, bool last) {
  stream_writing_ = false;
  // One very large event must not pin its buffer for the rest of the stream.
  if (payload_.capacity() > kKeepStreamBufferBytes) payload_ = std::string();
  if (phase_ != Phase::streaming) return;
  if (error || last) {
    beast::error_code ignored;
    if (!error) tcp().socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
    return close();
  }
  arm_heartbeat();
  pump();
}

// Restarts the idle period after a write; when it passes with nothing written, the source's
// heartbeat goes out.
void HttpSession::arm_heartbeat() {
  if (source_ == nullptr || stream_ending_) return;
  const std::uint32_t period_ms = source_->heartbeat_ms();
  if (period_ms == 0) return;
  const std::uint64_t generation = ++timer_generation_;
  stream_timer_->expires_after(ms(period_ms));
  stream_timer_->async_wait(
      [self = shared_from_this(), generation](beast::error_code error) {
        if (!error) self->on_heartbeat(generation);
      });
}

void HttpSession::on_heartbeat(std::uint64_t generation) {
  if (generation != timer_generation_ || phase_ != Phase::streaming || stream_writing_ ||
      stream_ending_) {
    return;
  }
  payload_.clear();
  source_->heartbeat(payload_);
  if (payload_.empty()) return arm_heartbeat();
  stream_out_ = fmt::format("{:x}\r\n", payload_.size());
  write_stream(false, kCrlf);
}

// Server stop: the source goes now; the body ends after the write in flight, if any; a client
// that does not take it within linger_ms is cut off.
void HttpSession::stop_stream() {
  stream_ending_ = true;
  source_.reset();
  const std::uint64_t generation = ++timer_generation_;
  stream_timer_->expires_after(ms(shared_.options.linger_ms));
  stream_timer_->async_wait([self = shared_from_this(), generation](beast::error_code error) {
    if (!error && generation == self->timer_generation_) self->close();
  });
  pump();
}

}  // namespace squall::server
