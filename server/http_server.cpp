#include "server/http_server.hpp"

#include <chrono>

#include "common/log.hpp"
#include "server/http_session.hpp"
#include "server/rest_response.hpp"

namespace squall::server {
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// Beast's parser takes a 32-bit header limit.
constexpr std::uint64_t kMaxHeaderLimitBytes = 16ULL << 20;
constexpr std::uint32_t kMaxThreads = 256;
constexpr std::uint32_t kAcceptBackoffMs = 50;
constexpr std::string_view kRefusal =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    "Retry-After: 1\r\nConnection: close\r\nContent-Length: 65\r\n\r\n"
    "{\"error\":\"unavailable\",\"message\":\"too many open connections\"}\n";

}  // namespace

// --- HttpResponder ---------------------------------------------------------------------------

struct HttpResponder::State {
  SendFn send;
  StreamFn stream;
  std::atomic<bool> sent{false};

  ~State() {
    if (sent.load() || !send) return;
    logger("server")->error("a request completed without an answer");
    send(error_response(HttpStatus::internal_server_error, "internal",
                        "the request lost its answer"));
  }
};

HttpResponder::HttpResponder(SendFn send, StreamFn stream) : state_(std::make_shared<State>()) {
  state_->send = std::move(send);
  state_->stream = std::move(stream);
}

void HttpResponder::operator()(HttpResponse response) const {
  SQUALL_ASSERT(state_ != nullptr, "empty responder called");
  const bool already = state_->sent.exchange(true);
  SQUALL_ASSERT(!already, "a request was answered twice");
  state_->send(std::move(response));
}

void HttpResponder::stream(HttpResponse header, std::unique_ptr<HttpStreamSource> source) const {
  SQUALL_ASSERT(state_ != nullptr, "empty responder called");
  SQUALL_ASSERT(source != nullptr, "a stream without a source");
  const bool already = state_->sent.exchange(true);
  SQUALL_ASSERT(!already, "a request was answered twice");
  if (!state_->stream) {
    logger("server")->error("a streaming answer on a connection that cannot stream");
    state_->send(error_response(HttpStatus::internal_server_error, "internal",
                                "this connection cannot stream"));
    return;
  }
  state_->stream(std::move(header), std::move(source));
}

// --- Shared ----------------------------------------------------------------------------------

void HttpServer::Shared::add(const std::shared_ptr<HttpSession>& session) {
  std::lock_guard lock(mutex);
  sessions.emplace(session.get(), session);
  if (connections_open != nullptr) connections_open->set(static_cast<double>(sessions.size()));
}

void HttpServer::Shared::remove(HttpSession* session) {
  std::lock_guard lock(mutex);
  sessions.erase(session);
  if (connections_open != nullptr) connections_open->set(static_cast<double>(sessions.size()));
  sessions_changed.notify_all();
}

void HttpServer::Shared::count_error(const char* kind) {
  if (metrics == nullptr) return;
  metrics->counter("squall_http_protocol_errors_total",
                   "Requests refused or cut off by the HTTP layer, by kind.",
                   {{"kind", kind}})
      .add();
}

// --- Options ---------------------------------------------------------------------------------

Status HttpServerOptions::validate() const {
  if (threads < 1 || threads > kMaxThreads) return invalid_argument("threads must be 1..256");
  if (max_connections < 1) return invalid_argument("max_connections must be at least 1");
  if (max_header_bytes < 1024 || max_header_bytes > kMaxHeaderLimitBytes) {
    return invalid_argument("max_header_bytes must be 1 KiB..16 MiB");
  }
  if (max_body_bytes < 1) return invalid_argument("max_body_bytes must be at least 1");
  if (read_timeout_ms < 1 || idle_timeout_ms < 1) {
    return invalid_argument("timeouts must be at least 1 ms");
  }
  return Status::ok();
}

HttpServerOptions http_server_options(const config::RestConfig& rest,
                                      const config::LimitsConfig& limits,
                                      std::uint32_t threads) {
  HttpServerOptions options;
  options.host = rest.listen.host;
  options.port = rest.listen.port;
  options.threads = threads;
  options.max_connections = rest.max_connections;
  options.max_header_bytes = rest.max_header_bytes;
  options.max_body_bytes = limits.max_value_bytes;
  options.read_timeout_ms = rest.read_timeout_ms;
  options.idle_timeout_ms = rest.idle_timeout_ms;
  return options;
}

// --- HttpServer ------------------------------------------------------------------------------

Result<std::unique_ptr<HttpServer>> HttpServer::start(HttpServerOptions options,
                                                      HttpHandler handler,
                                                      MetricsRegistry* metrics) {
  SQUALL_TRY(options.validate());
  SQUALL_ASSERT(handler != nullptr, "no request handler");
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->shared_ = std::make_unique<Shared>();
  Shared& shared = *server->shared_;
  shared.options = std::move(options);
  shared.handler = std::move(handler);
  shared.metrics = metrics;
  if (metrics != nullptr) {
    shared.connections_open =
        &metrics->gauge("squall_http_connections_open", "Open HTTP connections.");
    shared.connections_refused = &metrics->counter(
        "squall_http_connections_refused_total", "Connections refused over max_connections.");
  }
  SQUALL_TRY(server->listen());
  shared.work.emplace(shared.io.get_executor());
  server->accept();
  for (std::uint32_t i = 0; i < shared.options.threads; ++i) {
    shared.threads.emplace_back([&shared] { shared.io.run(); });
  }
  logger("server")->info("HTTP{} server listening on {}:{} with {} threads",
                         shared.options.tls ? "S" : "", shared.options.host, server->port_,
                         shared.options.threads);
  return server;
}

Status HttpServer::listen() {
  boost::system::error_code error;
  const auto address = net::ip::make_address(shared_->options.host, error);
  if (error) return invalid_argument("bad listen address: " + shared_->options.host);
  const tcp::endpoint endpoint(address, shared_->options.port);
  auto& acceptor = shared_->acceptor.emplace(net::make_strand(shared_->io));
  shared_->accept_backoff.emplace(acceptor.get_executor());
  acceptor.open(endpoint.protocol(), error);
  if (!error) acceptor.set_option(net::socket_base::reuse_address(true), error);
  if (!error) acceptor.bind(endpoint, error);
  if (!error) acceptor.listen(net::socket_base::max_listen_connections, error);
  if (error) {
    return unavailable(fmt::format("cannot listen on {}:{}: {}", shared_->options.host,
                                   shared_->options.port, error.message()));
  }
  port_ = acceptor.local_endpoint().port();
  return Status::ok();
}

void HttpServer::accept() {
  shared_->acceptor->async_accept(
      net::make_strand(shared_->io),
      [this](boost::system::error_code error, tcp::socket socket) {
        on_accept(error, std::move(socket));
      });
}

// On the acceptor's strand.
void HttpServer::on_accept(boost::system::error_code error, tcp::socket socket) {
  Shared& shared = *shared_;
  if (shared.stopping.load() || !shared.acceptor->is_open()) return;
  if (error) {
    // Out of descriptors, typically: back off instead of spinning on the failing accept.
    logger("server")->warn("accept failed: {}", error.message());
    shared.accept_backoff->expires_after(std::chrono::milliseconds(kAcceptBackoffMs));
    shared.accept_backoff->async_wait([this](boost::system::error_code) {
      if (!shared_->stopping.load()) accept();
    });
    return;
  }
  if (open_connections() >= shared.options.max_connections) {
    // Best effort, never blocking: a fresh socket's send buffer takes this at once. (A TLS
    // client could not read it before a handshake: it is just closed.)
    boost::system::error_code ignored;
    socket.non_blocking(true, ignored);
    if (!shared.options.tls) {
      socket.write_some(net::buffer(kRefusal.data(), kRefusal.size()), ignored);
    }
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    if (shared.connections_refused != nullptr) shared.connections_refused->add();
  } else {
    auto session = std::make_shared<HttpSession>(std::move(socket), shared);
    shared.add(session);
    net::dispatch(session->executor(), [session] { session->start(); });
  }
  accept();
}

bool HttpServer::tls() const { return shared_->options.tls != nullptr; }

Status HttpServer::reload_tls() {
  if (!shared_->options.tls) return Status::ok();
  return shared_->options.tls->reload();
}

std::size_t HttpServer::open_connections() const {
  std::lock_guard lock(shared_->mutex);
  return shared_->sessions.size();
}

void HttpServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  Shared& shared = *shared_;
  shared.stopping.store(true);
  if (shared.acceptor) {  // absent when start() failed before listening
    net::post(shared.acceptor->get_executor(), [&shared] {
      boost::system::error_code ignored;
      shared.acceptor->close(ignored);
      shared.accept_backoff->cancel();
    });
  }
  std::vector<std::shared_ptr<HttpSession>> open;
  {
    std::lock_guard lock(shared.mutex);
    for (auto& [pointer, weak] : shared.sessions) {
      if (auto session = weak.lock()) open.push_back(std::move(session));
    }
  }
  // Outside the mutex: dropping the last reference to a session takes it.
  for (auto& session : open) net::post(session->executor(), [session] { session->stop(); });
  open.clear();
  std::unique_lock lock(shared.mutex);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(shared.options.stop_timeout_ms);
  const bool drained = shared.sessions_changed.wait_until(
      lock, deadline, [&shared] { return shared.sessions.empty(); });
  const std::size_t left = shared.sessions.size();
  lock.unlock();
  if (!drained) logger("server")->warn("stopping with {} connections still open", left);
  shared.work.reset();
  shared.io.stop();
  for (auto& thread : shared.threads) thread.join();
  shared.threads.clear();
  if (shared.acceptor) {  // the posted close may not have run before io.stop()
    boost::system::error_code ignored;
    shared.acceptor->close(ignored);
  }
  logger("server")->info("HTTP server stopped");
}

HttpServer::~HttpServer() {
  if (shared_ != nullptr) stop();
}

}  // namespace squall::server
