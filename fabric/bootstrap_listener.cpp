#include "fabric/bootstrap_listener.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include <boost/asio.hpp>
#include <fmt/format.h>

#include "common/log.hpp"

namespace squall::fabric {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Milliseconds = std::chrono::milliseconds;
using ErrorCode = boost::system::error_code;

constexpr std::uint32_t kAcceptErrorPauseMs = 100;

// An accepted connection until it is handed over or refused. Listener thread only.
struct Pending {
  explicit Pending(tcp::socket accepted)
      : socket(std::move(accepted)), timer(socket.get_executor()) {}

  tcp::socket socket;
  asio::steady_timer timer;  // hello timeout, then hold timeout
  std::array<std::byte, kHelloHeaderBytes> header{};
  Bytes body;
  Hello hello;
  std::string remote;
  std::array<std::byte, 1> probe{};  // watches a held connection for EOF
  bool done = false;                 // handed over or refused: nothing more to do
};
using PendingPtr = std::shared_ptr<Pending>;

std::string describe(const tcp::socket& socket) {
  ErrorCode error;
  auto endpoint = socket.remote_endpoint(error);
  if (error) return "unknown peer";
  return fmt::format("{}:{}", endpoint.address().to_string(), endpoint.port());
}

Status check_range(std::string_view field, std::uint64_t value, std::uint64_t low,
                   std::uint64_t high) {
  if (value < low || value > high) {
    return invalid_argument(fmt::format("bootstrap listener {} = {} is outside {}..{}", field,
                                        value, low, high));
  }
  return Status::ok();
}

}  // namespace

Status BootstrapListenerOptions::validate() const {
  SQUALL_TRY(check_range("hello_timeout_ms", hello_timeout_ms, 100, 600'000));
  SQUALL_TRY(check_range("hold_timeout_ms", hold_timeout_ms, 0, 600'000));
  SQUALL_TRY(check_range("max_pending_inbound", max_pending_inbound, 1, 65'536));
  SQUALL_TRY(check_range("max_held", max_held, 0, 65'536));
  SQUALL_TRY(check_range("max_retired_channels", max_retired_channels, 1, 1U << 20));
  return Status::ok();
}

class BootstrapListener::Impl {
 public:
  explicit Impl(BootstrapListenerOptions options)
      : options_(options), acceptor_(io_), work_(asio::make_work_guard(io_)),
        log_(logger("fabric")) {}

  ~Impl() {
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    held_.clear();  // queued handlers still own sockets; io_ destroys them after this
  }

  Status listen(const std::string& host, std::uint16_t port);
  void run() {
    accept_next();
    thread_ = std::thread([this] { io_.run(); });
  }
  std::uint16_t port() const { return port_; }
  BootstrapListenerStats stats() const;
  Status register_channel(std::uint32_t channel, InboundHandler* handler);
  void unregister_channel(std::uint32_t channel, InboundHandler* handler);

 private:
  void accept_next();
  void on_accepted(tcp::socket socket);
  void read_body(const PendingPtr& pending);
  enum class Routed : std::uint8_t { handed_over, retired, unknown };
  Routed try_hand_over(const PendingPtr& pending);
  void refuse_retired(const PendingPtr& pending);
  void route(const PendingPtr& pending);
  void hand_over(const PendingPtr& pending, InboundHandler& handler);
  void hold(const PendingPtr& pending);
  void release_held(std::uint32_t channel);
  void drop_held(const PendingPtr& pending);
  void refuse(const PendingPtr& pending, const std::string& why);

  BootstrapListenerOptions options_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::shared_ptr<spdlog::logger> log_;
  std::uint16_t port_ = 0;
  std::size_t reading_ = 0;               // accepted, hello not yet read; listener thread
  std::deque<PendingPtr> held_;           // oldest first; listener thread only

  std::mutex mutex_;                      // the registry: owners' threads and listener thread
  std::map<std::uint32_t, InboundHandler*> channels_;  // GUARDED_BY(mutex_)
  std::set<std::uint32_t> retired_;                    // GUARDED_BY(mutex_)
  std::deque<std::uint32_t> retired_order_;            // GUARDED_BY(mutex_), oldest first

  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> handed_over_{0};
  std::atomic<std::uint64_t> held_total_{0};
  std::atomic<std::uint64_t> refused_{0};
  std::atomic<std::uint64_t> refused_retired_{0};
  std::atomic<std::uint64_t> refused_unclaimed_{0};
};

Status BootstrapListener::Impl::listen(const std::string& host, std::uint16_t port) {
  ErrorCode error;
  tcp::resolver resolver(io_);
  auto results = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, error);
  if (error || results.empty()) {
    return invalid_argument(fmt::format("bootstrap host '{}': {}", host,
                                        error ? error.message() : "no address"));
  }
  tcp::endpoint endpoint = results.begin()->endpoint();
  if (acceptor_.open(endpoint.protocol(), error) ||
      acceptor_.set_option(tcp::acceptor::reuse_address(true), error) ||
      acceptor_.bind(endpoint, error) ||
      acceptor_.listen(asio::socket_base::max_listen_connections, error)) {
    return unavailable(
        fmt::format("bootstrap cannot listen on {}:{}: {}", host, port, error.message()));
  }
  port_ = acceptor_.local_endpoint(error).port();
  if (error) return io_error(fmt::format("bootstrap local_endpoint: {}", error.message()));
  return Status::ok();
}

BootstrapListenerStats BootstrapListener::Impl::stats() const {
  BootstrapListenerStats stats;
  stats.accepted = accepted_.load(std::memory_order_relaxed);
  stats.handed_over = handed_over_.load(std::memory_order_relaxed);
  stats.held = held_total_.load(std::memory_order_relaxed);
  stats.bootstrap_refused = refused_.load(std::memory_order_relaxed);
  stats.refused_retired = refused_retired_.load(std::memory_order_relaxed);
  stats.refused_unclaimed = refused_unclaimed_.load(std::memory_order_relaxed);
  return stats;
}

Status BootstrapListener::Impl::register_channel(std::uint32_t channel,
                                                 InboundHandler* handler) {
  SQUALL_ASSERT(handler != nullptr, "channel {} registered without a handler", channel);
  {
    std::lock_guard lock(mutex_);
    if (channels_.contains(channel)) {
      return Status(Code::already_exists,
                    fmt::format("bootstrap port {} already has a live transport on channel {}",
                                port_, channel));
    }
    // A retired channel may be served again (a new transport for it).
    if (retired_.erase(channel) != 0) std::erase(retired_order_, channel);
    channels_[channel] = handler;
  }
  // Connections that arrived first are handed over on the listener thread; one routed
  // between the unlock above and this post is held first and then released here too.
  asio::post(io_, [this, channel] { release_held(channel); });
  return Status::ok();
}

void BootstrapListener::Impl::unregister_channel(std::uint32_t channel,
                                                 InboundHandler* handler) {
  std::lock_guard lock(mutex_);
  auto it = channels_.find(channel);
  if (it == channels_.end() || it->second != handler) return;
  channels_.erase(it);
  retired_.insert(channel);
  retired_order_.push_back(channel);
  while (retired_order_.size() > options_.max_retired_channels) {
    retired_.erase(retired_order_.front());
    retired_order_.pop_front();
  }
}

void BootstrapListener::Impl::accept_next() {
  acceptor_.async_accept([this](const ErrorCode& error, tcp::socket socket) {
    if (error == asio::error::operation_aborted) return;
    if (error) {
      // Out of descriptors and the like: pause rather than spin.
      log_->warn("bootstrap: accept failed: {}", error.message());
      auto pause = std::make_shared<asio::steady_timer>(io_, Milliseconds(kAcceptErrorPauseMs));
      pause->async_wait([this, pause](const ErrorCode&) { accept_next(); });
      return;
    }
    on_accepted(std::move(socket));
    accept_next();
  });
}

void BootstrapListener::Impl::on_accepted(tcp::socket socket) {
  accepted_.fetch_add(1, std::memory_order_relaxed);
  auto pending = std::make_shared<Pending>(std::move(socket));
  pending->remote = describe(pending->socket);
  if (reading_ >= options_.max_pending_inbound) {
    refuse(pending, fmt::format("{} connections already pending", options_.max_pending_inbound));
    return;
  }
  ++reading_;
  ErrorCode ignored;
  pending->socket.set_option(tcp::no_delay(true), ignored);
  pending->timer.expires_after(Milliseconds(options_.hello_timeout_ms));
  pending->timer.async_wait([pending](const ErrorCode& error) {
    if (error) return;
    ErrorCode close_error;
    pending->socket.close(close_error);  // the pending read fails and refuses
  });
  asio::async_read(pending->socket, asio::buffer(pending->header),
                   [this, pending](const ErrorCode& error, std::size_t) {
                     if (error) {
                       --reading_;
                       refuse(pending, "no hello header: " + error.message());
                       return;
                     }
                     read_body(pending);
                   });
}

void BootstrapListener::Impl::read_body(const PendingPtr& pending) {
  auto header = decode_hello_header(pending->header);
  if (!header) {
    --reading_;
    refuse(pending, header.status().message());
    return;
  }
  pending->body.resize(header->body_length);
  asio::async_read(pending->socket, asio::buffer(pending->body),
                   [this, pending, parsed = *header](const ErrorCode& error, std::size_t) {
                     --reading_;
                     if (error) {
                       refuse(pending, "hello body: " + error.message());
                       return;
                     }
                     auto hello = decode_hello_body(parsed, pending->body, options_.secret);
                     if (!hello) {
                       refuse(pending, hello.status().message());
                       return;
                     }
                     pending->body = Bytes();
                     pending->hello = std::move(hello).value();
                     pending->timer.cancel();
                     route(pending);
                   });
}

// Hands `pending` to its channel's handler if there is one; else says whether the channel is
// retired or unknown, and leaves the connection as it is.
auto BootstrapListener::Impl::try_hand_over(const PendingPtr& pending) -> Routed {
  std::lock_guard lock(mutex_);
  if (auto it = channels_.find(pending->hello.channel); it != channels_.end()) {
    hand_over(pending, *it->second);
    return Routed::handed_over;
  }
  return retired_.contains(pending->hello.channel) ? Routed::retired : Routed::unknown;
}

void BootstrapListener::Impl::refuse_retired(const PendingPtr& pending) {
  refused_retired_.fetch_add(1, std::memory_order_relaxed);
  refuse(pending, fmt::format("channel {} is retired (its transport is closed)",
                              pending->hello.channel));
}

void BootstrapListener::Impl::route(const PendingPtr& pending) {
  switch (try_hand_over(pending)) {
    case Routed::handed_over: return;
    case Routed::retired: refuse_retired(pending); return;
    case Routed::unknown: hold(pending); return;
  }
}

// REQUIRES: mutex_ held (so the handler cannot unregister meanwhile).
void BootstrapListener::Impl::hand_over(const PendingPtr& pending, InboundHandler& handler) {
  pending->done = true;
  pending->timer.cancel();
  ErrorCode error;
  InboundConnection connection;
  connection.ipv6 = pending->socket.local_endpoint(error).protocol() == tcp::v6();
  // release() cancels the probe of a held connection; its handler sees `done` and returns.
  connection.socket_fd = pending->socket.release(error);
  if (error) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    log_->warn("bootstrap: cannot hand over {}: {}", pending->remote, error.message());
    ErrorCode ignored;
    pending->socket.close(ignored);
    return;
  }
  connection.hello = std::move(pending->hello);
  connection.remote = std::move(pending->remote);
  handed_over_.fetch_add(1, std::memory_order_relaxed);
  handler.take(std::move(connection));
}

// The peer installed this channel's view first: keep the connection until the channel
// registers (release_held) or hold_timeout_ms passes.
void BootstrapListener::Impl::hold(const PendingPtr& pending) {
  const Hello& hello = pending->hello;
  if (options_.hold_timeout_ms == 0) {
    refuse(pending, fmt::format("no transport serves channel {} here", hello.channel));
    return;
  }
  for (const PendingPtr& old : held_) {
    if (old->hello.channel == hello.channel && old->hello.from == hello.from) {
      drop_held(old);
      refuse(old, "superseded by a newer connection from the same node");
      break;
    }
  }
  if (held_.size() >= options_.max_held) {
    refused_unclaimed_.fetch_add(1, std::memory_order_relaxed);
    refuse(pending, fmt::format("{} connections already held", options_.max_held));
    return;
  }
  held_total_.fetch_add(1, std::memory_order_relaxed);
  held_.push_back(pending);
  log_->debug("bootstrap: holding {} (node {}) until channel {} registers", pending->remote,
              hello.from, hello.channel);
  pending->timer.expires_after(Milliseconds(options_.hold_timeout_ms));
  pending->timer.async_wait([this, pending](const ErrorCode& error) {
    if (error || pending->done) return;
    drop_held(pending);
    refused_unclaimed_.fetch_add(1, std::memory_order_relaxed);
    refuse(pending, fmt::format("no transport for channel {} within {} ms",
                                pending->hello.channel, options_.hold_timeout_ms));
  });
  // The dialer sends nothing more until answered: EOF means it gave up, a byte is misuse.
  asio::async_read(pending->socket, asio::buffer(pending->probe),
                   [this, pending](const ErrorCode& error, std::size_t) {
                     if (pending->done) return;
                     drop_held(pending);
                     refuse(pending, error ? "closed while held: " + error.message()
                                           : "unexpected data while held");
                   });
}

void BootstrapListener::Impl::release_held(std::uint32_t channel) {
  std::deque<PendingPtr> waiting;
  for (const PendingPtr& pending : held_) {
    if (pending->hello.channel == channel) waiting.push_back(pending);
  }
  for (const PendingPtr& pending : waiting) {
    // The channel may have retired again meanwhile; unknown leaves it held (and watched).
    Routed routed = try_hand_over(pending);
    if (routed == Routed::unknown) continue;
    drop_held(pending);
    if (routed == Routed::retired) refuse_retired(pending);
  }
}

void BootstrapListener::Impl::drop_held(const PendingPtr& pending) {
  std::erase(held_, pending);
}

void BootstrapListener::Impl::refuse(const PendingPtr& pending, const std::string& why) {
  pending->done = true;
  refused_.fetch_add(1, std::memory_order_relaxed);
  log_->warn("bootstrap: refused connection from {}: {}", pending->remote, why);
  ErrorCode ignored;
  pending->timer.cancel();
  pending->socket.shutdown(tcp::socket::shutdown_both, ignored);
  pending->socket.close(ignored);
}

Result<std::shared_ptr<BootstrapListener>> BootstrapListener::start(
    const std::string& host, std::uint16_t port, const BootstrapListenerOptions& options) {
  SQUALL_TRY(options.validate());
  auto impl = std::make_unique<Impl>(options);
  SQUALL_TRY(impl->listen(host, port));
  impl->run();
  return std::shared_ptr<BootstrapListener>(new BootstrapListener(std::move(impl)));
}

BootstrapListener::BootstrapListener(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BootstrapListener::~BootstrapListener() = default;

std::uint16_t BootstrapListener::port() const { return impl_->port(); }
BootstrapListenerStats BootstrapListener::stats() const { return impl_->stats(); }

Status BootstrapListener::register_channel(std::uint32_t channel, InboundHandler* handler) {
  return impl_->register_channel(channel, handler);
}

void BootstrapListener::unregister_channel(std::uint32_t channel, InboundHandler* handler) {
  impl_->unregister_channel(channel, handler);
}

}  // namespace squall::fabric
