#include "core/membership_service.hpp"

#include <fmt/format.h>

#include <atomic>
#include <boost/asio.hpp>
#include <thread>

#include "common/log.hpp"

namespace squall::core {
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// One inbound connection: read one frame, hand it over, write the reply, close.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, MembershipService::Impl* service);
  void start();
  void reply(const MembershipMessage& message);
  void close();

 private:
  void read_body(std::uint32_t length);
  void deliver();
  void arm(std::uint32_t timeout_ms);

  tcp::socket socket_;
  asio::steady_timer timer_;
  MembershipService::Impl* service_;  // outlives every session (it owns their executor)
  Bytes frame_;
  std::atomic<bool> replied_{false};
};

}  // namespace

class MembershipService::Impl {
 public:
  Impl(const MembershipServiceOptions& options, Handler handler)
      : options_(options), handler_(std::move(handler)), acceptor_(io_) {}

  Status open();
  void accept();
  void run() { thread_ = std::thread([this] { io_.run(); }); }
  void stop() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  const MembershipServiceOptions& options() const { return options_; }
  asio::io_context& io() { return io_; }
  void handle(MembershipMessage request, MembershipService::Reply reply) {
    handler_(std::move(request), std::move(reply));
  }
  void refuse(const std::string& why) {
    refused_.fetch_add(1);
    logger("membership")->debug("membership connection refused: {}", why);
  }
  void session_ended() { connections_.fetch_sub(1); }

  std::atomic<std::uint64_t> refused_{0};
  std::atomic<std::uint32_t> connections_{0};
  std::uint16_t port_ = 0;

 private:
  MembershipServiceOptions options_;
  Handler handler_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

namespace {

Session::Session(tcp::socket socket, MembershipService::Impl* service)
    : socket_(std::move(socket)), timer_(socket_.get_executor()), service_(service) {}

void Session::arm(std::uint32_t timeout_ms) {
  timer_.expires_after(std::chrono::milliseconds(timeout_ms));
  timer_.async_wait([self = shared_from_this()](boost::system::error_code error) {
    if (!error) self->close();
  });
}

void Session::start() {
  arm(service_->options().request_timeout_ms);
  frame_.resize(kMembershipHeaderBytes);
  asio::async_read(socket_, asio::buffer(frame_),
                   [self = shared_from_this()](boost::system::error_code error, std::size_t) {
                     if (error) return self->close();
                     Result<std::uint32_t> length = decode_membership_header(self->frame_);
                     if (!length.is_ok()) {
                       self->service_->refuse(length.status().to_string());
                       return self->close();
                     }
                     self->read_body(*length);
                   });
}

void Session::read_body(std::uint32_t length) {
  std::size_t rest = length + kMembershipMacBytes;
  frame_.resize(kMembershipHeaderBytes + rest);
  asio::async_read(socket_, asio::buffer(frame_.data() + kMembershipHeaderBytes, rest),
                   [self = shared_from_this()](boost::system::error_code error, std::size_t) {
                     if (error) return self->close();
                     self->deliver();
                   });
}

void Session::deliver() {
  Result<MembershipMessage> request =
      decode_membership_message(frame_, service_->options().secret);
  if (!request.is_ok()) {
    service_->refuse(request.status().to_string());
    logger("membership")->warn("membership request refused: {}", request.status().message());
    // A whole frame arrived: say why (the peer logs it; a wrong secret cannot verify the
    // reply either, and reports exactly that).
    return reply(Refused{request.status().message()});
  }
  arm(service_->options().reply_timeout_ms);
  std::weak_ptr<Session> weak = shared_from_this();
  service_->handle(std::move(request).value(), [weak](const MembershipMessage& message) {
    if (auto self = weak.lock()) self->reply(message);
  });
}

void Session::reply(const MembershipMessage& message) {
  if (replied_.exchange(true)) return;
  auto frame =
      std::make_shared<Bytes>(encode_membership_message(message, service_->options().secret));
  asio::post(socket_.get_executor(), [self = shared_from_this(), frame] {
    asio::async_write(self->socket_, asio::buffer(*frame),
                      [self, frame](boost::system::error_code, std::size_t) { self->close(); });
  });
}

void Session::close() {
  if (!socket_.is_open()) return;
  boost::system::error_code ignored;
  timer_.cancel();
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  service_->session_ended();
}

}  // namespace

Status MembershipService::Impl::open() {
  boost::system::error_code error;
  auto address = asio::ip::make_address(options_.host, error);
  if (error) return invalid_argument(fmt::format("membership host '{}': {}", options_.host,
                                                 error.message()));
  tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), error);
  if (!error) acceptor_.set_option(tcp::acceptor::reuse_address(true), error);
  if (!error) acceptor_.bind(endpoint, error);
  if (!error) acceptor_.listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    return unavailable(fmt::format("membership port {}:{}: {}", options_.host, options_.port,
                                   error.message()));
  }
  port_ = acceptor_.local_endpoint().port();
  return Status::ok();
}

void MembershipService::Impl::accept() {
  acceptor_.async_accept([self = this](boost::system::error_code error, tcp::socket socket) {
    if (error == asio::error::operation_aborted) return;
    if (!error) {
      if (self->connections_.load() >= self->options_.max_connections) {
        self->refuse("too many membership connections");
        boost::system::error_code ignored;
        socket.close(ignored);
      } else {
        self->connections_.fetch_add(1);
        std::make_shared<Session>(std::move(socket), self)->start();
      }
    }
    self->accept();
  });
}

Result<std::unique_ptr<MembershipService>> MembershipService::start(
    const MembershipServiceOptions& options, Handler handler) {
  auto impl = std::make_unique<Impl>(options, std::move(handler));
  SQUALL_TRY(impl->open());
  impl->accept();
  impl->run();
  return std::unique_ptr<MembershipService>(new MembershipService(std::move(impl)));
}

MembershipService::MembershipService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MembershipService::~MembershipService() { impl_->stop(); }

std::uint16_t MembershipService::port() const { return impl_->port_; }
std::uint64_t MembershipService::refused() const { return impl_->refused_.load(); }

Result<MembershipMessage> membership_call(const std::string& host, std::uint16_t port,
                                          const MembershipMessage& request,
                                          std::chrono::milliseconds timeout,
                                          std::string_view secret) {
  asio::io_context io;
  tcp::socket socket(io);
  boost::system::error_code error;
  auto address = asio::ip::make_address(host, error);
  if (error) {
    return invalid_argument(fmt::format("membership host '{}': {}", host, error.message()));
  }
  Bytes out = encode_membership_message(request, secret);
  Bytes in(kMembershipHeaderBytes);
  Status outcome(Code::timed_out,
                 fmt::format("no reply from {}:{} within {} ms", host, port, timeout.count()));
  socket.async_connect(tcp::endpoint(address, port), [&](boost::system::error_code connected) {
    if (connected) {
      outcome = unavailable(fmt::format("connect {}:{}: {}", host, port, connected.message()));
      return;
    }
    asio::async_write(socket, asio::buffer(out), [&](boost::system::error_code written,
                                                     std::size_t) {
      if (written) {
        outcome = unavailable(fmt::format("send to {}:{}: {}", host, port, written.message()));
        return;
      }
      asio::async_read(socket, asio::buffer(in), [&](boost::system::error_code read, std::size_t) {
        if (read) {
          outcome = unavailable(fmt::format("{}:{} closed: {}", host, port, read.message()));
          return;
        }
        Result<std::uint32_t> length = decode_membership_header(in);
        if (!length.is_ok()) {
          outcome = length.status();
          return;
        }
        std::size_t rest = *length + kMembershipMacBytes;
        in.resize(kMembershipHeaderBytes + rest);
        asio::async_read(socket, asio::buffer(in.data() + kMembershipHeaderBytes, rest),
                         [&](boost::system::error_code body, std::size_t) {
                           outcome = body ? unavailable(fmt::format("{}:{} closed: {}", host, port,
                                                                    body.message()))
                                          : Status::ok();
                         });
      });
    });
  });
  io.run_for(timeout);
  if (!outcome.is_ok()) return outcome;
  return decode_membership_message(in, secret);
}

}  // namespace squall::core
