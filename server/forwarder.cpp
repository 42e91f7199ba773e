#include "server/forwarder.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <fmt/format.h>

#include "common/assert.hpp"
#include "common/log.hpp"
#include "server/auth.hpp"

namespace squall::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

using Parser = http::response_parser<http::string_body>;

// One attempt's connection to a target: plain TCP, or TLS when ForwarderOptions::tls is set
// (SNI and the peer's certificate checked against the target's host, the client handshake
// right after the connect). Exchange and StreamExchange read and write through visit(), so
// both kinds of stream share one code path. Single-threaded (the client thread).
class Connection {
 public:
  // `step` names what failed ("resolve", "connect", "tls", "handshake"); `error` is empty
  // when the connection is open.
  using Opened = std::function<void(std::string_view step, std::string error)>;

  Connection(asio::io_context& io, const ForwarderOptions& options)
      : io_(io), options_(options), resolver_(io) {}

  // Drops the previous connection, then resolves, connects and (TLS) shakes hands with
  // `target`, all of it and the exchange that follows within `budget`. `opened` once.
  void open(const config::HostPort& target, std::chrono::steady_clock::duration budget,
            Opened opened) {
    close();
    plain_.reset();
    tls_.reset();
    if (options_.tls) {
      tls_.emplace(io_, *options_.tls);
    } else {
      plain_.emplace(io_);
    }
    host_ = target.host;
    buffer.clear();
    parser.emplace();
    parser->body_limit(options_.max_body_bytes);
    tcp().expires_after(budget);
    resolver_.async_resolve(
        target.host, std::to_string(target.port),
        [this, opened = std::move(opened)](beast::error_code error,
                                           tcp::resolver::results_type found) mutable {
          if (error) return opened("resolve", error.message());
          tcp().async_connect(found, [this, opened = std::move(opened)](
                                         beast::error_code connect_error,
                                         const tcp::endpoint&) mutable {
            if (connect_error) return opened("connect", connect_error.message());
            handshake(std::move(opened));
          });
        });
  }

  // Calls `visit` with the open stream: beast::tcp_stream or its ssl_stream.
  template <typename Visit>
  void visit(Visit&& visit) {
    SQUALL_ASSERT(tls_ || plain_, "no connection opened");
    if (tls_) {
      visit(*tls_);
    } else {
      visit(*plain_);
    }
  }

  void expires_after(std::chrono::steady_clock::duration budget) { tcp().expires_after(budget); }

  // Cancels a resolve under way and closes the socket (pending operations end aborted).
  void close() {
    beast::error_code ignored;
    resolver_.cancel();
    if (!tls_ && !plain_) return;
    tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp().socket().close(ignored);
  }

  beast::flat_buffer buffer;     // reset by open()
  std::optional<Parser> parser;  // reset by open(), limited to options.max_body_bytes

 private:
  beast::tcp_stream& tcp() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }

  void handshake(Opened opened) {
    if (!tls_) return opened("", "");
    const Status prepared = prepare_client_stream(*tls_, host_);
    if (!prepared.is_ok()) return opened("tls", prepared.message());
    tls_->async_handshake(asio::ssl::stream_base::client,
                          [opened = std::move(opened)](beast::error_code error) {
                            opened("handshake", error ? error.message() : std::string());
                          });
  }

  asio::io_context& io_;
  const ForwarderOptions& options_;
  tcp::resolver resolver_;
  std::optional<beast::tcp_stream> plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
  std::string host_;
};

// The request as it goes to every target: this node's Authorization (the node token) in
// place of any the request carries, so a client's token never leaves the node it was sent to.
HttpRequest outgoing(HttpRequest request, const ForwarderOptions& options) {
  request.erase(http::field::authorization);
  if (!options.authorization.empty()) {
    request.set(http::field::authorization, options.authorization);
  }
  return request;
}

// One forwarded request: its attempts at the targets, one after the other.
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  using Finish = std::function<void(std::uint64_t id, Result<HttpResponse>)>;

  Exchange(asio::io_context& io, std::uint64_t id, const ForwarderOptions& options,
           std::vector<std::string> targets, HttpRequest request, Finish finish)
      : id_(id),
        targets_(std::move(targets)),
        request_(outgoing(std::move(request), options)),
        finish_(std::move(finish)),
        connection_(io, options),
        deadline_(std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(options.timeout_ms)) {}

  void start() { attempt(); }
  void cancel() { connection_.close(); }

 private:
  void attempt() {
    if (index_ >= targets_.size()) {
      return finish_(id_, unavailable(fmt::format("no member answered ({})", last_error_)));
    }
    auto target = config::parse_host_port(targets_[index_]);
    if (!target) {
      last_error_ = target.status().message();
      return next();
    }
    request_.set(http::field::host, targets_[index_]);
    // The whole request has timeout_ms; each attempt gets an equal share of what is left,
    // so a target that accepts but never answers (a frozen node) leaves time for the others.
    const auto left = deadline_ - std::chrono::steady_clock::now();
    if (left <= std::chrono::milliseconds(0)) {
      return finish_(id_, Status(Code::timed_out, "forwarding timed out: " + last_error_));
    }
    connection_.open(*target, left / static_cast<long>(targets_.size() - index_),
                     [self = shared_from_this()](std::string_view step, std::string error) {
                       if (!error.empty()) return self->failed(step, error);
                       self->write();
                     });
  }

  void write() {
    connection_.visit([this](auto& stream) {
      http::async_write(stream, request_,
                        [self = shared_from_this()](beast::error_code error, std::size_t) {
                          if (error) return self->failed("write", error.message());
                          self->read();
                        });
    });
  }

  void read() {
    connection_.visit([this](auto& stream) {
      http::async_read(stream, connection_.buffer, *connection_.parser,
                       [self = shared_from_this()](beast::error_code error, std::size_t) {
                         if (error) return self->failed("read", error.message());
                         self->answered();
                       });
    });
  }

  void answered() {
    HttpResponse response = connection_.parser->release();
    if (response.result() == http::status::service_unavailable) {
      last_error_ = "503 from " + targets_[index_];
      return next();
    }
    connection_.close();
    finish_(id_, std::move(response));
  }

  void failed(std::string_view step, std::string_view error) {
    last_error_ = fmt::format("{} {}: {}", step, targets_[index_], error);
    next();
  }

  void next() {
    connection_.close();
    ++index_;
    attempt();
  }

  const std::uint64_t id_;
  std::vector<std::string> targets_;
  HttpRequest request_;
  Finish finish_;
  Connection connection_;
  const std::chrono::steady_clock::time_point deadline_;
  std::size_t index_ = 0;
  std::string last_error_ = "no target";
};

// One streamed answer: the attempts at the targets as in Exchange, then the body piece by
// piece. Everything runs on the client thread; close() posts there.
class StreamExchange final : public Forwarder::StreamHandle,
                             public std::enable_shared_from_this<StreamExchange> {
 public:
  StreamExchange(asio::io_context& io, const ForwarderOptions& options,
                 std::vector<std::string> targets, HttpRequest request, std::uint32_t idle_ms,
                 Forwarder::StreamHandler handler, std::function<void()> forget)
      : io_(io),
        targets_(std::move(targets)),
        request_(outgoing(std::move(request), options)),
        idle_(std::chrono::milliseconds(std::max<std::uint32_t>(idle_ms, 1))),
        handler_(std::move(handler)),
        forget_(std::move(forget)),
        connection_(io, options),
        deadline_(std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(options.timeout_ms)) {}

  void start() { attempt(); }
  void close() override {
    asio::post(io_, [self = shared_from_this()] { self->finish(Status(Code::aborted, "closed")); });
  }
  // After the client thread ended (Forwarder::stop): no other call runs concurrently.
  void abandon() { finish(unavailable("the node is shutting down")); }

 private:
  void attempt() {
    if (done_) return;
    if (index_ >= targets_.size()) {
      return finish(unavailable(fmt::format("no member answered ({})", last_error_)));
    }
    auto target = config::parse_host_port(targets_[index_]);
    const auto left = deadline_ - std::chrono::steady_clock::now();
    if (!target || left <= std::chrono::milliseconds(0)) {
      last_error_ = target ? "timed out" : target.status().message();
      return next();
    }
    request_.set(http::field::host, targets_[index_]);
    connection_.open(*target, left / static_cast<long>(targets_.size() - index_),
                     [self = shared_from_this()](std::string_view step, std::string error) {
                       if (!error.empty()) return self->failed(step, error);
                       self->write();
                     });
  }

  void write() {
    connection_.visit([this](auto& stream) {
      http::async_write(
          stream, request_,
          [self = shared_from_this(), &stream](beast::error_code error, std::size_t) {
            if (error) return self->failed("write", error.message());
            http::async_read_header(stream, self->connection_.buffer, *self->connection_.parser,
                                    [self](beast::error_code read_error, std::size_t) {
                                      if (read_error) {
                                        return self->failed("read", read_error.message());
                                      }
                                      self->header();
                                    });
          });
    });
  }

  void header() {
    if (done_) return;
    Parser& parser = *connection_.parser;
    const http::status status = parser.get().result();
    if (status == http::status::service_unavailable) {
      last_error_ = "503 from " + targets_[index_];
      return next();
    }
    if (status != http::status::ok) {  // an error answer: read it whole and pass it on
      connection_.visit([this](auto& stream) {
        http::async_read(stream, connection_.buffer, *connection_.parser,
                         [self = shared_from_this()](beast::error_code error, std::size_t) {
                           if (error) return self->failed("read", error.message());
                           self->done_ = true;
                           self->connection_.close();
                           self->handler_.opened(self->connection_.parser->release());
                           self->forget_();
                         });
      });
      return;
    }
    streaming_ = true;
    parser.body_limit(boost::none);  // bounded by the reader, who closes when it must
    on_chunk_ = [this](std::uint64_t, beast::string_view body, beast::error_code&) {
      if (!done_ && !body.empty()) handler_.data(to_std(body));
      return body.size();
    };
    parser.on_chunk_body(on_chunk_);
    HttpResponse head = parser.get();
    handler_.opened(std::move(head));
    read_body();
  }

  void read_body() {
    if (done_) return;
    connection_.expires_after(idle_);
    connection_.visit([this](auto& stream) {
      http::async_read_some(stream, connection_.buffer, *connection_.parser,
                            [self = shared_from_this()](beast::error_code error, std::size_t) {
                              self->body_read(error);
                            });
    });
  }

  void body_read(const beast::error_code& error) {
    if (done_) return;
    if (error) {
      return finish(unavailable(
          fmt::format("the stream from {} broke: {}", targets_[index_], error.message())));
    }
    if (connection_.parser->is_done()) {
      return finish(unavailable(fmt::format("{} ended the stream", targets_[index_])));
    }
    read_body();
  }

  void failed(std::string_view step, std::string_view error) {
    if (done_) return;
    if (streaming_) return finish(unavailable(fmt::format("{}: {}", step, error)));
    last_error_ = fmt::format("{} {}: {}", step, targets_[index_], error);
    next();
  }

  void next() {
    connection_.close();
    ++index_;
    attempt();
  }

  void finish(Status why) {
    if (done_) return;
    done_ = true;
    connection_.close();
    if (streaming_) {
      handler_.ended(std::move(why));
    } else {
      handler_.opened(std::move(why));
    }
    forget_();
  }

  asio::io_context& io_;
  std::vector<std::string> targets_;
  HttpRequest request_;
  const std::chrono::milliseconds idle_;
  Forwarder::StreamHandler handler_;
  std::function<void()> forget_;
  Connection connection_;
  std::function<std::size_t(std::uint64_t, beast::string_view, beast::error_code&)> on_chunk_;
  const std::chrono::steady_clock::time_point deadline_;
  std::size_t index_ = 0;
  std::string last_error_ = "no target";
  bool streaming_ = false;  // the 200 header was passed on
  bool done_ = false;
};

}  // namespace

Result<ForwarderOptions> forwarder_options(const config::Config& config) {
  ForwarderOptions options;
  options.timeout_ms = config.timeouts.request_timeout_ms;
  options.max_body_bytes = config.limits.max_value_bytes + config.limits.max_key_bytes +
                           config::kMiB;
  auto authorization = node_authorization(config);
  if (!authorization) return authorization.status().with_context("forwarding");
  options.authorization = std::move(authorization).value();
  if (config.rest.tls) {
    auto context = make_client_context(*config.rest.tls);
    if (!context) return context.status().with_context("forwarding over TLS");
    options.tls = std::move(context).value();
  }
  return options;
}

struct Forwarder::Impl {
  ForwarderOptions options;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;

  std::mutex mutex;
  bool stopped = false;                                         // GUARDED_BY(mutex)
  std::uint64_t next_id = 0;                                    // GUARDED_BY(mutex)
  std::map<std::uint64_t, std::pair<std::shared_ptr<Exchange>, Done>> live;  // GUARDED_BY
  std::map<std::uint64_t, std::shared_ptr<StreamExchange>> streams;          // GUARDED_BY

  void finish(std::uint64_t id, Result<HttpResponse> result) {
    Done done;
    {
      std::lock_guard lock(mutex);
      auto found = live.find(id);
      if (found == live.end()) return;
      done = std::move(found->second.second);
      live.erase(found);
    }
    done(std::move(result));
  }
};

Forwarder::Forwarder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Forwarder>> Forwarder::start(ForwarderOptions options) {
  if (options.timeout_ms == 0 || options.max_in_flight == 0) {
    return invalid_argument("forwarder timeout and in-flight bound must be positive");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->work.emplace(impl->io.get_executor());
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<Forwarder>(new Forwarder(std::move(impl)));
}

Forwarder::~Forwarder() { stop(); }

void Forwarder::send(std::vector<std::string> targets, HttpRequest request, Done done) {
  Impl& impl = *impl_;
  std::shared_ptr<Exchange> exchange;
  Status refused;
  {
    std::lock_guard lock(impl.mutex);
    if (impl.stopped) {
      refused = unavailable("the node is shutting down");
    } else if (impl.live.size() >= impl.options.max_in_flight) {
      refused = Status(Code::would_block, "too many forwarded requests in flight");
    } else {
      const std::uint64_t id = impl.next_id++;
      exchange = std::make_shared<Exchange>(
          impl.io, id, impl.options, std::move(targets), std::move(request),
          [&impl](std::uint64_t finished, Result<HttpResponse> result) {
            impl.finish(finished, std::move(result));
          });
      impl.live.emplace(id, std::make_pair(exchange, std::move(done)));
    }
  }
  if (!exchange) return done(refused);
  asio::post(impl.io, [exchange] { exchange->start(); });
}

std::shared_ptr<Forwarder::StreamHandle> Forwarder::open_stream(
    std::vector<std::string> targets, HttpRequest request, std::uint32_t idle_ms,
    StreamHandler handler) {
  Impl& impl = *impl_;
  std::shared_ptr<StreamExchange> exchange;
  Status refused;
  {
    std::lock_guard lock(impl.mutex);
    if (impl.stopped) {
      refused = unavailable("the node is shutting down");
    } else if (impl.streams.size() >= impl.options.max_in_flight) {
      refused = Status(Code::would_block, "too many forwarded streams open");
    } else {
      const std::uint64_t id = impl.next_id++;
      auto forget = [&impl, id] {
        std::lock_guard forget_lock(impl.mutex);
        impl.streams.erase(id);
      };
      exchange = std::make_shared<StreamExchange>(impl.io, impl.options, std::move(targets),
                                                  std::move(request), idle_ms,
                                                  std::move(handler), std::move(forget));
      impl.streams.emplace(id, exchange);
    }
  }
  if (!exchange) {
    handler.opened(refused);
    return nullptr;
  }
  asio::post(impl.io, [exchange] { exchange->start(); });
  return exchange;
}

void Forwarder::stop() {
  Impl& impl = *impl_;
  {
    std::lock_guard lock(impl.mutex);
    if (impl.stopped) return;
    impl.stopped = true;
  }
  impl.work.reset();
  impl.io.stop();
  if (impl.thread.joinable()) impl.thread.join();
  std::map<std::uint64_t, std::pair<std::shared_ptr<Exchange>, Done>> left;
  {
    std::lock_guard lock(impl.mutex);
    left.swap(impl.live);
  }
  for (auto& [id, entry] : left) {
    entry.first->cancel();
    entry.second(unavailable("the node is shutting down"));
  }
  std::map<std::uint64_t, std::shared_ptr<StreamExchange>> streams;
  {
    std::lock_guard lock(impl.mutex);
    streams = impl.streams;  // abandon() erases its entry (forget) under the mutex
  }
  for (auto& [id, stream] : streams) stream->abandon();
}

}  // namespace squall::server
