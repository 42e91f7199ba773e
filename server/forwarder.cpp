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
}

}  // namespace squall::server
