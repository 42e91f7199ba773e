#include "server/forwarder.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include "common/log.hpp"
#include "config/config.hpp"

namespace squall::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// One forwarded request: its attempts at the targets, one after the other.
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  using Finish = std::function<void(std::uint64_t id, Result<HttpResponse>)>;

  Exchange(asio::io_context& io, std::uint64_t id, const ForwarderOptions& options,
           std::vector<std::string> targets, HttpRequest request, Finish finish)
      : io_(io),
        id_(id),
        options_(options),
        targets_(std::move(targets)),
        request_(std::move(request)),
        finish_(std::move(finish)),
        resolver_(io),
        deadline_(std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(options.timeout_ms)) {}

  void start() { attempt(); }
  void cancel() {
    beast::error_code ignored;
    resolver_.cancel();
    if (stream_) stream_->socket().close(ignored);
  }

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
    stream_.emplace(io_);
    buffer_.clear();
    parser_.emplace();
    parser_->body_limit(options_.max_body_bytes);
    request_.set(http::field::host, targets_[index_]);
    // The whole request has timeout_ms; each attempt gets an equal share of what is left,
    // so a target that accepts but never answers (a frozen node) leaves time for the others.
    const auto left = deadline_ - std::chrono::steady_clock::now();
    if (left <= std::chrono::milliseconds(0)) {
      return finish_(id_, Status(Code::timed_out, "forwarding timed out: " + last_error_));
    }
    stream_->expires_after(left / static_cast<long>(targets_.size() - index_));
    resolver_.async_resolve(
        target->host, std::to_string(target->port),
        [self = shared_from_this()](beast::error_code error, tcp::resolver::results_type found) {
          if (error) return self->failed("resolve", error);
          self->stream_->async_connect(found, [self](beast::error_code connect_error,
                                                     const tcp::endpoint&) {
            if (connect_error) return self->failed("connect", connect_error);
            self->write();
          });
        });
  }

  void write() {
    http::async_write(*stream_, request_,
                      [self = shared_from_this()](beast::error_code error, std::size_t) {
                        if (error) return self->failed("write", error);
                        self->read();
                      });
  }

  void read() {
    http::async_read(*stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code error, std::size_t) {
                       if (error) return self->failed("read", error);
                       HttpResponse response = self->parser_->release();
                       if (response.result() == http::status::service_unavailable) {
                         self->last_error_ = "503 from " + self->targets_[self->index_];
                         return self->next();
                       }
                       self->close();
                       self->finish_(self->id_, std::move(response));
                     });
  }

  void failed(std::string_view step, const beast::error_code& error) {
    last_error_ = fmt::format("{} {}: {}", step, targets_[index_], error.message());
    next();
  }

  void next() {
    close();
    ++index_;
    attempt();
  }

  void close() {
    beast::error_code ignored;
    if (stream_) stream_->socket().shutdown(tcp::socket::shutdown_both, ignored);
    if (stream_) stream_->socket().close(ignored);
  }

  asio::io_context& io_;
  const std::uint64_t id_;
  const ForwarderOptions& options_;
  std::vector<std::string> targets_;
  HttpRequest request_;
  Finish finish_;
  tcp::resolver resolver_;
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
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
        options_(options),
        targets_(std::move(targets)),
        request_(std::move(request)),
        idle_(std::chrono::milliseconds(std::max<std::uint32_t>(idle_ms, 1))),
        handler_(std::move(handler)),
        forget_(std::move(forget)),
        resolver_(io),
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
    stream_.emplace(io_);
    buffer_.clear();
    parser_.emplace();
    parser_->body_limit(options_.max_body_bytes);
    request_.set(http::field::host, targets_[index_]);
    stream_->expires_after(left / static_cast<long>(targets_.size() - index_));
    resolver_.async_resolve(
        target->host, std::to_string(target->port),
        [self = shared_from_this()](beast::error_code error, tcp::resolver::results_type found) {
          if (error) return self->failed("resolve", error);
          self->stream_->async_connect(found, [self](beast::error_code connect_error,
                                                     const tcp::endpoint&) {
            if (connect_error) return self->failed("connect", connect_error);
            self->write();
          });
        });
  }

  void write() {
    http::async_write(*stream_, request_,
                      [self = shared_from_this()](beast::error_code error, std::size_t) {
                        if (error) return self->failed("write", error);
                        http::async_read_header(
                            *self->stream_, self->buffer_, *self->parser_,
                            [self](beast::error_code read_error, std::size_t) {
                              if (read_error) return self->failed("read", read_error);
                              self->header();
                            });
                      });
  }

  void header() {
    if (done_) return;
    const http::status status = parser_->get().result();
    if (status == http::status::service_unavailable) {
      last_error_ = "503 from " + targets_[index_];
      return next();
    }
    if (status != http::status::ok) {  // an error answer: read it whole and pass it on
      http::async_read(*stream_, buffer_, *parser_,
                       [self = shared_from_this()](beast::error_code error, std::size_t) {
                         if (error) return self->failed("read", error);
                         self->done_ = true;
                         self->close_socket();
                         self->handler_.opened(self->parser_->release());
                         self->forget_();
                       });
      return;
    }
    streaming_ = true;
    parser_->body_limit(boost::none);  // bounded by the reader, who closes when it must
    on_chunk_ = [this](std::uint64_t, beast::string_view body, beast::error_code&) {
      if (!done_ && !body.empty()) handler_.data(to_std(body));
      return body.size();
    };
    parser_->on_chunk_body(on_chunk_);
    HttpResponse head = parser_->get();
    handler_.opened(std::move(head));
    read_body();
  }

  void read_body() {
    if (done_) return;
    stream_->expires_after(idle_);
    http::async_read_some(*stream_, buffer_, *parser_,
                          [self = shared_from_this()](beast::error_code error, std::size_t) {
                            if (self->done_) return;
                            if (error) {
                              return self->finish(unavailable(
                                  fmt::format("the stream from {} broke: {}",
                                              self->targets_[self->index_], error.message())));
                            }
                            if (self->parser_->is_done()) {
                              return self->finish(unavailable(fmt::format(
                                  "{} ended the stream", self->targets_[self->index_])));
                            }
                            self->read_body();
                          });
  }

  void failed(std::string_view step, const beast::error_code& error) {
    if (done_) return;
    if (streaming_) return finish(unavailable(fmt::format("{}: {}", step, error.message())));
    last_error_ = fmt::format("{} {}: {}", step, targets_[index_], error.message());
    next();
  }

  void next() {
    close_socket();
    ++index_;
    attempt();
  }

  void finish(Status why) {
    if (done_) return;
    done_ = true;
    resolver_.cancel();
    close_socket();
    if (streaming_) {
      handler_.ended(std::move(why));
    } else {
      handler_.opened(std::move(why));
    }
    forget_();
  }

  void close_socket() {
    beast::error_code ignored;
    if (stream_) stream_->socket().shutdown(tcp::socket::shutdown_both, ignored);
    if (stream_) stream_->socket().close(ignored);
  }

  asio::io_context& io_;
  const ForwarderOptions& options_;
  std::vector<std::string> targets_;
  HttpRequest request_;
  const std::chrono::milliseconds idle_;
  Forwarder::StreamHandler handler_;
  std::function<void()> forget_;
  tcp::resolver resolver_;
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
  std::function<std::size_t(std::uint64_t, beast::string_view, beast::error_code&)> on_chunk_;
  const std::chrono::steady_clock::time_point deadline_;
  std::size_t index_ = 0;
  std::string last_error_ = "no target";
  bool streaming_ = false;  // the 200 header was passed on
  bool done_ = false;
};

}  // namespace

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
