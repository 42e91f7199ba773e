#include "bench/loadgen/runner.hpp"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

namespace squall::loadgen {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// State every worker thread reads; the atomics are the only fields written during the run.
struct Shared {
  explicit Shared(const LoadOptions& load) : options(load) {}
  const LoadOptions& options;
  Clock::time_point start;
  Clock::time_point measure_start;
  Clock::time_point issue_end = Clock::time_point::max();  // duration mode only
  std::atomic<std::uint64_t> measured_issued{0};
  std::atomic<std::uint64_t> next_sequential{0};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> answered{0};  // progress: answers, warmup included
  std::atomic<std::uint64_t> errors{0};
  std::atomic<int> workers_done{0};
};

struct Op {
  OpKind kind = OpKind::put;
  std::uint64_t key_index = 0;
  Clock::time_point intended;
};

std::string random_value(std::mt19937_64& rng, std::size_t size) {
  static constexpr std::string_view kChars = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string value(size, 'x');
  for (char& c : value) c = kChars[rng() % kChars.size()];
  return value;
}

std::string error_kind(const beast::error_code& ec, std::string_view stage) {
  if (ec == beast::error::timeout) return "timeout";
  if (ec == http::error::end_of_stream || ec == asio::error::eof) {
    return std::string(stage) + ": closed by server";
  }
  return std::string(stage) + ": " + ec.message();
}

class Worker;

// One keep-alive connection with at most one request in flight.
class Connection {
 public:
  Connection(Worker& worker, asio::io_context& io, Endpoint endpoint, std::string value,
             std::uint64_t index)
      : worker_(worker), stream_(io), endpoint_(std::move(endpoint)),
        host_(endpoint_.to_string()), value_raw_(std::move(value)), index_(index) {}

  Status connect_now();
  void send(const Op& op);
  bool connected() const { return connected_; }

 private:
  void on_written(beast::error_code ec);
  void on_read(beast::error_code ec);
  void fail(const std::string& kind);
  void reconnect();

  Worker& worker_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  Endpoint endpoint_;
  std::string host_;
  std::string value_raw_;
  std::uint64_t index_;  // among all connections of the run
  std::optional<PreparedValue> value_;  // prepared on first use (the target is known then)
  HttpRequest request_;
  std::optional<http::response_parser<http::string_body>> parser_;
  Op op_;
  bool connected_ = false;
};

class Worker {
 public:
  Worker(Shared& shared, int id)
      : shared_(shared), id_(id), rng_(shared.options.seed + 7919 * static_cast<unsigned>(id)),
        timer_(io_) {}

  asio::io_context& io() { return io_; }
  const LoadOptions& options() const { return shared_.options; }
  void add_connection(const Endpoint& endpoint, std::uint64_t index) {
    connections_.push_back(std::make_unique<Connection>(
        *this, io_, endpoint, random_value(rng_, options().value_bytes), index));
  }
  Status connect_all() {
    for (auto& connection : connections_) SQUALL_TRY(connection->connect_now());
    return Status::ok();
  }
  void start();
  void run();

  // From a connection: it has nothing in flight (answered, or reconnected).
  void on_idle(Connection& connection);
  void on_answer(const Op& op, const Reply& reply);
  void on_error(const Op* op, const std::string& kind);
  std::uint64_t expected_version(std::uint64_t key_index) const {
    const auto found = versions_.find(key_index);
    return found == versions_.end() ? 0 : found->second;
  }
  bool stopping() const { return shared_.stop.load(std::memory_order_relaxed); }

  LoadResult result;
  Clock::time_point last_answer;

 private:
  bool may_issue(Clock::time_point intended);
  std::optional<Op> next_op(Clock::time_point intended);
  void tick();
  Clock::time_point intended_at(std::uint64_t k) const;

  Shared& shared_;
  int id_;
  asio::io_context io_;
  std::mt19937_64 rng_;
  asio::steady_timer timer_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::unordered_map<std::uint64_t, std::uint64_t> versions_;  // last version seen per key
  // Open loop.
  std::deque<Op> backlog_;
  std::vector<Connection*> idle_;
  std::uint64_t next_k_ = 0;
  bool generating_ = true;
};

Status Connection::connect_now() {
  beast::error_code ec;
  asio::ip::tcp::resolver resolver(stream_.get_executor());
  const auto results = resolver.resolve(endpoint_.host, std::to_string(endpoint_.port), ec);
  if (!ec) stream_.socket().connect(*results.begin(), ec);
  if (ec) return unavailable("connect to " + host_ + ": " + ec.message());
  stream_.socket().set_option(asio::ip::tcp::no_delay(true), ec);
  connected_ = true;
  return Status::ok();
}

void Connection::send(const Op& op) {
  SQUALL_ASSERT(connected_, "send on a closed connection");
  const LoadOptions& options = worker_.options();
  op_ = op;
  const auto connections = static_cast<std::uint64_t>(options.connections);
  if (op.kind == OpKind::cas && options.keyspace >= connections) {
    // Each connection owns a slice of the key space for its conditional puts, so they race
    // only with the mix's plain puts and the version it expects is the one it last wrote.
    op_.key_index = index_ + connections * (op.key_index % (options.keyspace / connections));
  }
  if (options.stamp_values) {
    std::string raw = fmt::format("{:016d}", now_stamp_ns());
    raw.resize(std::max(options.value_bytes, raw.size()), 'x');
    value_ = prepare_value(options.target, std::move(raw));
  } else if (!value_) {
    value_ = prepare_value(options.target, value_raw_);
  }
  const std::uint64_t expected =
      op.kind == OpKind::cas ? worker_.expected_version(op_.key_index) : 0;
  request_ = build_request(options.target, op.kind, host_, key_for(options, op_.key_index),
                           *value_, expected);
  stream_.expires_after(std::chrono::milliseconds(options.timeout_ms));
  http::async_write(stream_, request_,
                    [this](beast::error_code ec, std::size_t) { on_written(ec); });
}

void Connection::on_written(beast::error_code ec) {
  if (ec) return fail(error_kind(ec, "write"));
  parser_.emplace();
  parser_->body_limit(std::uint64_t{64} << 20);
  http::async_read(stream_, buffer_, *parser_,
                   [this](beast::error_code read_ec, std::size_t) { on_read(read_ec); });
}

void Connection::on_read(beast::error_code ec) {
  if (ec) return fail(error_kind(ec, "read"));
  const LoadOptions& options = worker_.options();
  const bool keep_alive = parser_->keep_alive();
  const std::optional<std::size_t> expected_bytes =
      options.check_get_values ? std::optional<std::size_t>(options.value_bytes) : std::nullopt;
  const Reply reply =
      interpret_response(options.target, op_.kind, parser_->get(), expected_bytes);
  parser_.reset();
  worker_.on_answer(op_, reply);
  if (!keep_alive) {
    // The server closes after this answer: not an error, but a new connection is needed.
    beast::error_code ignored;
    stream_.socket().close(ignored);
    connected_ = false;
    return reconnect();
  }
  worker_.on_idle(*this);
}

void Connection::fail(const std::string& kind) {
  worker_.on_error(&op_, kind);
  beast::error_code ignored;
  stream_.socket().close(ignored);
  buffer_.clear();
  parser_.reset();
  connected_ = false;
  reconnect();
}

void Connection::reconnect() {
  if (worker_.stopping()) return worker_.on_idle(*this);
  auto timer = std::make_shared<asio::steady_timer>(
      stream_.get_executor(), std::chrono::milliseconds(worker_.options().reconnect_delay_ms));
  timer->async_wait([this, timer](beast::error_code) {
    const Status connected = connect_now();
    if (!connected.is_ok()) {
      worker_.on_error(nullptr, "connect: " + connected.message());
      return reconnect();
    }
    worker_.on_idle(*this);
  });
}

Clock::time_point Worker::intended_at(std::uint64_t k) const {
  // Each worker sends rate/threads per second; workers are offset to interleave.
  const double interval_ns = 1e9 * options().threads / options().rate_per_s;
  const double offset_ns = interval_ns * id_ / options().threads;
  return shared_.start +
         std::chrono::nanoseconds(static_cast<std::int64_t>(offset_ns + interval_ns * k));
}

bool Worker::may_issue(Clock::time_point intended) {
  const LoadOptions& load = options();
  if (stopping()) return false;
  if (load.sequential_keys) return true;  // next_op() ends at the last key
  if (load.requests > 0) {
    if (intended < shared_.measure_start) return true;
    if (shared_.measured_issued.fetch_add(1) < load.requests) return true;
    shared_.stop.store(true);
    return false;
  }
  return intended < shared_.issue_end;
}

std::optional<Op> Worker::next_op(Clock::time_point intended) {
  if (!may_issue(intended)) return std::nullopt;
  const LoadOptions& load = options();
  Op op;
  op.intended = intended;
  if (load.sequential_keys) {
    op.key_index = shared_.next_sequential.fetch_add(1);
    if (op.key_index >= load.keyspace) return std::nullopt;
    op.kind = OpKind::put;
    return op;
  }
  std::uint64_t total = 0;
  for (const std::uint32_t weight : load.mix) total += weight;
  std::uint64_t pick = rng_() % total;
  for (int i = 0; i < kOpKinds; ++i) {
    const std::uint32_t weight = load.mix[static_cast<std::size_t>(i)];
    if (pick < weight) {
      op.kind = static_cast<OpKind>(i);
      break;
    }
    pick -= weight;
  }
  op.key_index = rng_() % load.keyspace;
  return op;
}

void Worker::start() {
  if (options().rate_per_s > 0) {
    for (auto& connection : connections_) idle_.push_back(connection.get());
    return tick();
  }
  for (auto& connection : connections_) on_idle(*connection);
}

void Worker::run() {
  io_.run();
  last_answer = std::max(last_answer, shared_.measure_start);
}

void Worker::on_idle(Connection& connection) {
  if (!connection.connected()) return;  // stopping, or a reconnect is pending
  if (options().rate_per_s > 0) {
    if (backlog_.empty()) {
      idle_.push_back(&connection);
      return;
    }
    const Op op = backlog_.front();
    backlog_.pop_front();
    return connection.send(op);
  }
  if (const auto op = next_op(Clock::now())) connection.send(*op);
}

// Open loop: issues every send whose intended time has come, then sleeps until the next.
void Worker::tick() {
  const Clock::time_point now = Clock::now();
  while (generating_ && intended_at(next_k_) <= now) {
    const auto op = next_op(intended_at(next_k_));
    if (!op) {
      generating_ = false;
      break;
    }
    ++next_k_;
    if (!idle_.empty()) {
      Connection* connection = idle_.back();
      idle_.pop_back();
      connection->send(*op);
    } else if (backlog_.size() < options().max_backlog) {
      backlog_.push_back(*op);
      result.backlog_peak = std::max(result.backlog_peak, backlog_.size());
    } else {
      on_error(&*op, "backlog_full");
    }
  }
  if (!generating_) return;
  timer_.expires_at(intended_at(next_k_));
  timer_.async_wait([this](beast::error_code ec) {
    if (!ec) tick();
  });
}

void Worker::on_answer(const Op& op, const Reply& reply) {
  const Clock::time_point now = Clock::now();
  shared_.answered.fetch_add(1, std::memory_order_relaxed);
  if (reply.outcome == Outcome::not_found) versions_.erase(op.key_index);
  if (reply.version && reply.outcome != Outcome::error) versions_[op.key_index] = *reply.version;
  if (reply.outcome == Outcome::error) return on_error(&op, reply.error);
  if (reply.outcome == Outcome::ok) ++result.ok_total;
  if (op.intended < shared_.measure_start) {
    ++result.warmup_requests;
    return;
  }
  OpStats& stats = result.ops[static_cast<std::size_t>(op.kind)];
  stats.latency.record(static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(now - op.intended).count()));
  switch (reply.outcome) {
    case Outcome::ok: ++stats.ok; break;
    case Outcome::not_found: ++stats.not_found; break;
    case Outcome::cas_conflict: ++stats.cas_conflict; break;
    case Outcome::error: break;
  }
  last_answer = now;
}

void Worker::on_error(const Op* /*op*/, const std::string& kind) {
  shared_.errors.fetch_add(1, std::memory_order_relaxed);
  ++result.errors[kind];
}

void print_progress(const Shared& shared, std::uint64_t* last_answered, int second) {
  const LoadOptions& options = shared.options;
  const std::uint64_t answered = shared.answered.load();
  std::string line = fmt::format("[{}] {:>3}s {:>9} answers/s, {} errors", options.progress_label,
                                 second, answered - *last_answered, shared.errors.load());
  if (Clock::now() < shared.measure_start) line += " (warmup)";
  if (options.progress_extra) line += ", " + options.progress_extra();
  *last_answered = answered;
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

// Sleeps in short steps until every worker is done, printing a line per second.
// Also ends the run: at the end of the measured window (connections waiting to reconnect to
// a dead server would otherwise keep it going), and in request-count mode when nothing has
// been answered for a request timeout plus 5 s (every server gone).
void watch_progress(Shared& shared, int workers) {
  std::uint64_t last_answered = 0;
  std::uint64_t stalled_answered = 0;
  Clock::time_point last_change = Clock::now();
  const auto stall_limit =
      std::chrono::milliseconds(shared.options.timeout_ms) + std::chrono::seconds(5);
  Clock::time_point next_line = shared.start + std::chrono::seconds(1);
  int second = 1;
  while (shared.workers_done.load() < workers) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const Clock::time_point now = Clock::now();
    if (now >= shared.issue_end) shared.stop.store(true);
    if (shared.answered.load() != stalled_answered) {
      stalled_answered = shared.answered.load();
      last_change = now;
    } else if (now - last_change > stall_limit && !shared.stop.load()) {
      std::fprintf(stderr, "[%s] no answer for %lld ms: ending the run\n",
                   shared.options.progress_label.c_str(),
                   static_cast<long long>(
                       std::chrono::duration_cast<std::chrono::milliseconds>(now - last_change)
                           .count()));
      shared.stop.store(true);
    }
    if (now < next_line) continue;
    if (shared.options.progress) print_progress(shared, &last_answered, second);
    ++second;
    next_line += std::chrono::seconds(1);
  }
}

LoadResult merge_results(const std::vector<std::unique_ptr<Worker>>& workers,
                         const Shared& shared) {
  LoadResult merged;
  Clock::time_point last_answer = shared.measure_start;
  for (const auto& worker : workers) {
    for (std::size_t i = 0; i < merged.ops.size(); ++i) merged.ops[i].merge(worker->result.ops[i]);
    for (const auto& [kind, count] : worker->result.errors) merged.errors[kind] += count;
    merged.warmup_requests += worker->result.warmup_requests;
    merged.ok_total += worker->result.ok_total;
    merged.backlog_peak = std::max(merged.backlog_peak, worker->result.backlog_peak);
    last_answer = std::max(last_answer, worker->last_answer);
  }
  const LoadOptions& options = shared.options;
  const bool by_duration = options.requests == 0 && !options.sequential_keys;
  const Clock::time_point end = by_duration ? shared.issue_end : last_answer;
  merged.elapsed_s = std::chrono::duration<double>(end - shared.measure_start).count();
  merged.measure_start = shared.measure_start;
  return merged;
}

}  // namespace

Status validate(const LoadOptions& options) {
  if (options.endpoints.empty()) return invalid_argument("no endpoint");
  if (options.threads < 1 || options.threads > 16) return invalid_argument("threads: 1..16");
  if (options.connections < 1 || options.connections > 20000) {
    return invalid_argument("connections: 1..20000");
  }
  if (options.keyspace < 1) return invalid_argument("keyspace: at least 1");
  if (options.value_bytes > (std::size_t{64} << 20)) return invalid_argument("value: <= 64 MiB");
  if (options.stamp_values && options.value_bytes < 16) {
    return invalid_argument("stamped values need at least 16 bytes");
  }
  if (options.rate_per_s < 0 || options.duration_s < 0 || options.warmup_s < 0) {
    return invalid_argument("rate, duration and warmup must not be negative");
  }
  if (options.rate_per_s > 0 && options.sequential_keys) {
    return invalid_argument("sequential keys (preload) run closed loop only");
  }
  if (options.timeout_ms == 0) return invalid_argument("timeout: at least 1 ms");
  return Status::ok();
}

std::string key_for(const LoadOptions& options, std::uint64_t index) {
  std::string digits = std::to_string(index);
  const std::size_t fixed = options.key_prefix.size() + digits.size();
  if (options.key_bytes > fixed) digits.insert(0, options.key_bytes - fixed, '0');
  return options.key_prefix + digits;
}

Result<LoadResult> run_load(const LoadOptions& requested) {
  SQUALL_TRY(validate(requested));
  LoadOptions options = requested;
  options.threads = std::min(options.threads, options.connections);  // no idle event loop
  Shared shared(options);
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < options.threads; ++i) workers.push_back(std::make_unique<Worker>(shared, i));
  for (int i = 0; i < options.connections; ++i) {
    const Endpoint& endpoint = options.endpoints[static_cast<std::size_t>(i) %
                                                 options.endpoints.size()];
    workers[static_cast<std::size_t>(i % options.threads)]->add_connection(
        endpoint, static_cast<std::uint64_t>(i));
  }
  for (auto& worker : workers) SQUALL_TRY(worker->connect_all());

  const bool warmup = !options.sequential_keys;
  shared.start = Clock::now();
  shared.measure_start =
      shared.start + (warmup ? std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(options.warmup_s))
                             : Clock::duration::zero());
  if (options.requests == 0 && !options.sequential_keys) {
    shared.issue_end = shared.measure_start +
                       std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(options.duration_s));
  }
  std::vector<std::thread> threads;
  for (auto& worker : workers) {
    threads.emplace_back([&shared, raw = worker.get()] {
      raw->start();
      raw->run();
      shared.workers_done.fetch_add(1);
    });
  }
  watch_progress(shared, options.threads);
  for (auto& thread : threads) thread.join();
  return merge_results(workers, shared);
}

}  // namespace squall::loadgen
