#include "fabric/bootstrap.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include <unistd.h>

#include <boost/asio.hpp>
#include <fmt/format.h>

#include "common/log.hpp"

namespace squall::fabric {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Milliseconds = std::chrono::milliseconds;
using ErrorCode = boost::system::error_code;

constexpr std::uint32_t kRetryInitialMs = 20;
constexpr std::uint32_t kRetryMaxMs = 500;

enum class SessionState : std::uint8_t { dialing, waiting_inbound, exchanging, live, done };

// One open() of one peer. Lives on the I/O thread only.
struct Session {
  Session(asio::io_context& io, NodeId peer_id, std::uint64_t session_id)
      : peer(peer_id), id(session_id), socket(io), deadline(io), retry(io), resolver(io) {}

  NodeId peer;
  std::uint64_t id;
  bool dialer = false;
  PeerAddress address;
  Bytes local_frame;
  SessionState state = SessionState::dialing;
  bool established = false;
  std::uint32_t retry_ms = kRetryInitialMs;
  tcp::socket socket;
  asio::steady_timer deadline;
  asio::steady_timer retry;
  tcp::resolver resolver;
  std::array<std::byte, kHelloHeaderBytes> header{};
  Bytes body;
  std::array<std::byte, 1> liveness{};
};

// A connection handed over by the listener (hello read), not yet claimed by open().
struct Inbound {
  explicit Inbound(tcp::socket accepted)
      : socket(std::move(accepted)), timer(socket.get_executor()) {}

  tcp::socket socket;
  asio::steady_timer timer;  // while parked: connect_timeout_ms
  Hello hello;
  std::string remote;  // "ip:port" for logs
};

// A descriptor in transit from the listener's thread to ours: closed unless adopted.
struct OwnedDescriptor {
  explicit OwnedDescriptor(int descriptor) : fd(descriptor) {}
  OwnedDescriptor(const OwnedDescriptor&) = delete;
  OwnedDescriptor& operator=(const OwnedDescriptor&) = delete;
  ~OwnedDescriptor() {
    if (fd >= 0) ::close(fd);
  }
  int release() { return std::exchange(fd, -1); }
  int fd;
};

}  // namespace

class Bootstrap::Service final : public InboundHandler {
 public:
  explicit Service(BootstrapOptions options)
      : options_(std::move(options)), work_(asio::make_work_guard(io_)),
        log_(logger("fabric")) {}

  ~Service() override {
    // First: after this the listener never calls take() again.
    if (registered_) options_.listener->unregister_channel(options_.channel, this);
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    // Handlers still queued own sockets; io_ destroys them after these maps are cleared.
    sessions_.clear();
    parked_.clear();
  }

  Status attach();
  void run() { thread_ = std::thread([this] { io_.run(); }); }
  std::uint16_t port() const { return options_.listener->port(); }
  std::uint64_t refused() const {
    std::uint64_t own = refused_.load(std::memory_order_relaxed);
    return private_listener_ ? own + options_.listener->stats().bootstrap_refused : own;
  }

  void take(InboundConnection connection) override {
    auto descriptor = std::make_shared<OwnedDescriptor>(connection.socket_fd);
    asio::post(io_, [this, descriptor, ipv6 = connection.ipv6,
                     hello = std::move(connection.hello),
                     remote = std::move(connection.remote)]() mutable {
      adopt_descriptor(*descriptor, ipv6, std::move(hello), std::move(remote));
    });
  }

  void open(NodeId peer, PeerAddress address, std::uint64_t id, Hello local) {
    asio::post(io_, [this, peer, address = std::move(address), id,
                     local = std::move(local)]() mutable {
      do_open(peer, std::move(address), id, local);
    });
  }
  void established(NodeId peer, std::uint64_t id) {
    asio::post(io_, [this, peer, id] {
      auto session = find(peer, id);
      if (!session) return;
      session->established = true;
      session->deadline.cancel();
    });
  }
  void close(NodeId peer, std::uint64_t id) {
    asio::post(io_, [this, peer, id] {
      auto session = find(peer, id);
      if (!session) return;
      finish(*session);
      sessions_.erase(peer);
    });
  }
  void drain(std::vector<BootstrapEvent>& out) {
    std::lock_guard lock(events_mutex_);
    for (auto& event : events_) out.push_back(std::move(event));
    events_.clear();
  }

 private:
  using SessionPtr = std::shared_ptr<Session>;
  using InboundPtr = std::shared_ptr<Inbound>;

  SessionPtr find(NodeId peer, std::uint64_t id) {
    auto it = sessions_.find(peer);
    if (it == sessions_.end() || it->second->id != id) return nullptr;
    return it->second;
  }
  void push(BootstrapEvent event) {
    std::lock_guard lock(events_mutex_);
    events_.push_back(std::move(event));
  }

  void do_open(NodeId peer, PeerAddress address, std::uint64_t id, const Hello& local);
  void start_dial(const SessionPtr& session);
  void on_dial_connected(const SessionPtr& session);
  void read_reply(const SessionPtr& session);
  void on_reply(const SessionPtr& session);
  void schedule_retry(const SessionPtr& session, const std::string& why);
  void adopt(const SessionPtr& session, const InboundPtr& inbound);
  void go_live(const SessionPtr& session, Hello peer_hello);
  void fail(const SessionPtr& session, Status status);
  void finish(Session& session);

  void adopt_descriptor(OwnedDescriptor& descriptor, bool ipv6, Hello hello,
                        std::string remote);
  void dispatch_inbound(const InboundPtr& inbound);
  void park(const InboundPtr& inbound);
  void refuse(const InboundPtr& inbound, const std::string& why);

  BootstrapOptions options_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::shared_ptr<spdlog::logger> log_;
  bool private_listener_ = false;              // bound by attach() for this channel only
  bool registered_ = false;                    // options_.channel is registered with it
  std::atomic<std::uint64_t> refused_{0};
  std::map<NodeId, SessionPtr> sessions_;      // I/O thread only
  std::map<NodeId, InboundPtr> parked_;        // hellos waiting for open(); I/O thread only
  std::mutex events_mutex_;
  std::vector<BootstrapEvent> events_;         // GUARDED_BY(events_mutex_)
};

// Binds a private listener when none is shared, then registers the channel: from here on
// take() may run (on the listener's thread).
Status Bootstrap::Service::attach() {
  if (options_.listener == nullptr) {
    BootstrapListenerOptions listener;
    listener.hello_timeout_ms = options_.hello_timeout_ms;
    listener.hold_timeout_ms = 0;  // nothing else will ever register here
    listener.max_pending_inbound = options_.max_pending_inbound;
    listener.max_held = 0;
    listener.secret = options_.secret;
    auto started = BootstrapListener::start(options_.host, options_.port, listener);
    if (!started) return started.status();
    options_.listener = std::move(started).value();
    private_listener_ = true;
  }
  SQUALL_TRY(options_.listener->register_channel(options_.channel, this));
  registered_ = true;
  return Status::ok();
}

void Bootstrap::Service::do_open(NodeId peer, PeerAddress address, std::uint64_t id,
                                 const Hello& local) {
  if (auto old = sessions_.find(peer); old != sessions_.end()) finish(*old->second);
  auto session = std::make_shared<Session>(io_, peer, id);
  session->dialer = options_.self < peer;
  session->address = std::move(address);
  session->local_frame = encode_hello(local, options_.secret);
  sessions_[peer] = session;

  session->deadline.expires_after(Milliseconds(options_.connect_timeout_ms));
  session->deadline.async_wait([this, session](const ErrorCode& error) {
    if (error || session->state == SessionState::done || session->established) return;
    fail(session, Status(Code::timed_out,
                         fmt::format("no connection with node {} within {} ms", session->peer,
                                     options_.connect_timeout_ms)));
  });
  if (session->dialer) {
    start_dial(session);
    return;
  }
  session->state = SessionState::waiting_inbound;
  if (auto parked = parked_.find(peer); parked != parked_.end()) {
    InboundPtr inbound = parked->second;
    parked_.erase(parked);
    inbound->timer.cancel();
    adopt(session, inbound);
  }
}

void Bootstrap::Service::start_dial(const SessionPtr& session) {
  session->state = SessionState::dialing;
  session->resolver.async_resolve(
      session->address.host, std::to_string(session->address.port),
      [this, session](const ErrorCode& error, const tcp::resolver::results_type& results) {
        if (session->state != SessionState::dialing) return;
        if (error) {
          schedule_retry(session, "resolve: " + error.message());
          return;
        }
        asio::async_connect(session->socket, results,
                            [this, session](const ErrorCode& connect_error, const tcp::endpoint&) {
                              if (session->state != SessionState::dialing) return;
                              if (connect_error) {
                                schedule_retry(session, "connect: " + connect_error.message());
                                return;
                              }
                              on_dial_connected(session);
                            });
      });
}

void Bootstrap::Service::on_dial_connected(const SessionPtr& session) {
  session->state = SessionState::exchanging;
  ErrorCode ignored;
  session->socket.set_option(tcp::no_delay(true), ignored);
  asio::async_write(session->socket, asio::buffer(session->local_frame),
                    [this, session](const ErrorCode& error, std::size_t) {
                      if (session->state != SessionState::exchanging) return;
                      if (error) {
                        schedule_retry(session, "send hello: " + error.message());
                        return;
                      }
                      read_reply(session);
                    });
}

void Bootstrap::Service::read_reply(const SessionPtr& session) {
  // The acceptor answers only after its owner called open() for us, so the wait for the
  // reply is bounded by the session deadline, not by hello_timeout_ms.
  asio::async_read(
      session->socket, asio::buffer(session->header),
      [this, session](const ErrorCode& error, std::size_t) {
        if (session->state != SessionState::exchanging) return;
        if (error) {
          schedule_retry(session, "no hello reply: " + error.message());
          return;
        }
        auto header = decode_hello_header(session->header);
        if (!header) {
          fail(session, header.status().with_context(
                            fmt::format("reply from node {} refused", session->peer)));
          return;
        }
        session->body.resize(header->body_length);
        asio::async_read(session->socket, asio::buffer(session->body),
                         [this, session, parsed = *header](const ErrorCode& body_error,
                                                           std::size_t) {
                           if (session->state != SessionState::exchanging) return;
                           if (body_error) {
                             schedule_retry(session, "hello reply: " + body_error.message());
                             return;
                           }
                           auto hello = decode_hello_body(parsed, session->body, options_.secret);
                           if (!hello) {
                             fail(session, hello.status());
                             return;
                           }
                           session->body.clear();
                           auto peer_hello = std::move(hello).value();
                           if (peer_hello.from != session->peer ||
                               peer_hello.to != options_.self ||
                               peer_hello.channel != options_.channel ||
                               peer_hello.provider != options_.provider) {
                             fail(session, invalid_argument(fmt::format(
                                               "{}:{} answered as node {} for node {} on "
                                               "channel {} with provider '{}'; expected node "
                                               "{} on channel {}",
                                               session->address.host, session->address.port,
                                               peer_hello.from, peer_hello.to,
                                               peer_hello.channel, peer_hello.provider,
                                               session->peer, options_.channel)));
                             return;
                           }
                           go_live(session, std::move(peer_hello));
                         });
      });
}

void Bootstrap::Service::schedule_retry(const SessionPtr& session, const std::string& why) {
  if (session->state == SessionState::done) return;
  log_->debug("bootstrap: node {} not reachable yet ({}); retrying in {} ms", session->peer,
              why, session->retry_ms);
  ErrorCode ignored;
  session->socket.close(ignored);
  session->state = SessionState::dialing;
  session->retry.expires_after(Milliseconds(session->retry_ms));
  session->retry_ms = std::min(kRetryMaxMs, session->retry_ms * 2);
  session->retry.async_wait([this, session](const ErrorCode& error) {
    if (error || session->state != SessionState::dialing) return;
    start_dial(session);
  });
}

void Bootstrap::Service::adopt(const SessionPtr& session, const InboundPtr& inbound) {
  session->socket = std::move(inbound->socket);
  session->state = SessionState::exchanging;
  // The event goes out before the reply: the dialer connects its fabric endpoint only after
  // reading the reply, so our owner learns the nonce before any connection request can come.
  Hello peer_hello = std::move(inbound->hello);
  push({BootstrapEvent::Kind::hello_exchanged, session->peer, session->id, peer_hello, {}});
  asio::async_write(session->socket, asio::buffer(session->local_frame),
                    [this, session](const ErrorCode& error, std::size_t) {
                      if (session->state != SessionState::exchanging) return;
                      if (error) {
                        fail(session, unavailable(fmt::format(
                                          "bootstrap reply to node {} failed: {}",
                                          session->peer, error.message())));
                        return;
                      }
                      go_live(session, Hello{});
                    });
}

// Both hellos are through: report (dialer side; the acceptor reported in adopt()) and watch
// the socket. Any completion of the one-byte read means the channel is gone or misused.
void Bootstrap::Service::go_live(const SessionPtr& session, Hello peer_hello) {
  if (session->dialer) {
    push({BootstrapEvent::Kind::hello_exchanged, session->peer, session->id,
          std::move(peer_hello), {}});
  }
  session->state = SessionState::live;
  session->retry_ms = kRetryInitialMs;
  asio::async_read(session->socket, asio::buffer(session->liveness),
                   [this, session](const ErrorCode& error, std::size_t) {
                     if (session->state != SessionState::live) return;
                     std::string why = error ? error.message() : "unexpected data";
                     fail(session, unavailable(fmt::format(
                                       "bootstrap connection to node {} lost: {}",
                                       session->peer, why)));
                   });
}

void Bootstrap::Service::fail(const SessionPtr& session, Status status) {
  if (session->state == SessionState::done) return;
  log_->info("bootstrap: session with node {} ended: {}", session->peer, status.to_string());
  finish(*session);
  push({BootstrapEvent::Kind::failed, session->peer, session->id, {}, std::move(status)});
  if (auto it = sessions_.find(session->peer); it != sessions_.end() && it->second == session) {
    sessions_.erase(it);
  }
}

void Bootstrap::Service::finish(Session& session) {
  session.state = SessionState::done;
  ErrorCode ignored;
  session.deadline.cancel();
  session.retry.cancel();
  session.resolver.cancel();
  session.socket.shutdown(tcp::socket::shutdown_both, ignored);
  session.socket.close(ignored);
}

void Bootstrap::Service::adopt_descriptor(OwnedDescriptor& descriptor, bool ipv6, Hello hello,
                                          std::string remote) {
  tcp::socket socket(io_);
  ErrorCode error;
  socket.assign(ipv6 ? tcp::v6() : tcp::v4(), descriptor.fd, error);
  if (error) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    log_->warn("bootstrap: cannot adopt connection from {}: {}", remote, error.message());
    return;  // the descriptor closes itself
  }
  descriptor.release();
  auto inbound = std::make_shared<Inbound>(std::move(socket));
  inbound->hello = std::move(hello);
  inbound->remote = std::move(remote);
  dispatch_inbound(inbound);
}

void Bootstrap::Service::dispatch_inbound(const InboundPtr& inbound) {
  inbound->timer.cancel();
  const Hello& hello = inbound->hello;
  if (hello.channel != options_.channel) {
    refuse(inbound, fmt::format("hello for channel {}, this transport serves channel {}",
                                hello.channel, options_.channel));
    return;
  }
  if (hello.to != options_.self) {
    refuse(inbound, fmt::format("hello addressed to node {}, this is node {}", hello.to,
                                options_.self));
    return;
  }
  if (!(hello.from < options_.self)) {
    refuse(inbound, fmt::format("node {} must not dial node {} (the lower id dials)",
                                hello.from, options_.self));
    return;
  }
  if (hello.provider != options_.provider) {
    refuse(inbound, fmt::format("node {} runs provider '{}', this node '{}'", hello.from,
                                hello.provider, options_.provider));
    return;
  }
  auto it = sessions_.find(hello.from);
  if (it == sessions_.end()) {
    park(inbound);
    return;
  }
  if (it->second->state != SessionState::waiting_inbound) {
    refuse(inbound, fmt::format("a session with node {} is already active", hello.from));
    return;
  }
  adopt(it->second, inbound);
}

// The peer dialed before our owner called open() for it: hold the socket (one per peer, the
// newest wins) until open() or connect_timeout_ms.
void Bootstrap::Service::park(const InboundPtr& inbound) {
  NodeId from = inbound->hello.from;
  if (auto old = parked_.find(from); old != parked_.end()) {
    refuse(old->second, "superseded by a newer connection from the same node");
    parked_.erase(old);
  }
  if (parked_.size() >= options_.max_pending_inbound) {
    refuse(inbound, fmt::format("{} connections already parked", options_.max_pending_inbound));
    return;
  }
  parked_[from] = inbound;
  inbound->timer.expires_after(Milliseconds(options_.connect_timeout_ms));
  inbound->timer.async_wait([this, inbound, from](const ErrorCode& error) {
    if (error) return;
    auto it = parked_.find(from);
    if (it == parked_.end() || it->second != inbound) return;
    parked_.erase(it);
    refuse(inbound, fmt::format("node {} was never added on this side", from));
  });
}

void Bootstrap::Service::refuse(const InboundPtr& inbound, const std::string& why) {
  refused_.fetch_add(1, std::memory_order_relaxed);
  log_->warn("bootstrap: refused connection from {}: {}", inbound->remote, why);
  ErrorCode ignored;
  inbound->timer.cancel();
  inbound->socket.shutdown(tcp::socket::shutdown_both, ignored);
  inbound->socket.close(ignored);
}

Result<std::unique_ptr<Bootstrap>> Bootstrap::start(const BootstrapOptions& options) {
  auto service = std::make_unique<Service>(options);
  service->run();
  SQUALL_TRY(service->attach());
  return std::unique_ptr<Bootstrap>(new Bootstrap(std::move(service)));
}

Bootstrap::Bootstrap(std::unique_ptr<Service> service) : service_(std::move(service)) {}
Bootstrap::~Bootstrap() = default;

std::uint16_t Bootstrap::port() const { return service_->port(); }

void Bootstrap::open(NodeId peer, const PeerAddress& address, std::uint64_t session,
                     Hello local) {
  service_->open(peer, address, session, std::move(local));
}
void Bootstrap::established(NodeId peer, std::uint64_t session) {
  service_->established(peer, session);
}
void Bootstrap::close(NodeId peer, std::uint64_t session) { service_->close(peer, session); }
void Bootstrap::drain(std::vector<BootstrapEvent>& out) { service_->drain(out); }
std::uint64_t Bootstrap::refused() const { return service_->refused(); }

}  // namespace squall::fabric
