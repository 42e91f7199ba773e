#include "bench/loadgen/watch.hpp"

#include <atomic>
#include <memory>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "bench/loadgen/runner.hpp"

namespace squall::loadgen {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

struct WatchShared {
  Target target = Target::squall;
  std::string prefix;
  std::atomic<int> established{0};
  std::atomic<std::int64_t> measure_start_ns{std::numeric_limits<std::int64_t>::max()};
  std::atomic<std::uint64_t> events{0};
  std::atomic<bool> stopping{false};
};

class WatchWorker;

// One watch stream: request, header (200 expected), then the body as it arrives.
class Watcher {
 public:
  Watcher(WatchWorker& worker, asio::io_context& io, Endpoint endpoint);
  Status connect_and_open();

 private:
  void on_written(beast::error_code ec);
  void on_header(beast::error_code ec);
  void on_body(beast::error_code ec);
  std::size_t on_chunk(std::string_view bytes, beast::error_code& ec);
  void lost(const std::string& kind);
  void mark_established();

  WatchWorker& worker_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  Endpoint endpoint_;
  HttpRequest request_;
  http::response_parser<http::empty_body> parser_;
  std::function<std::size_t(std::uint64_t, beast::string_view, beast::error_code&)> on_chunk_;
  WatchStreamParser stream_parser_;
  bool established_ = false;
};

class WatchWorker {
 public:
  explicit WatchWorker(WatchShared& shared) : shared_(shared) {}
  asio::io_context& io() { return io_; }
  WatchShared& shared() { return shared_; }
  void add(const Endpoint& endpoint) {
    watchers_.push_back(std::make_unique<Watcher>(*this, io_, endpoint));
  }
  Status open_all() {
    for (auto& watcher : watchers_) SQUALL_TRY(watcher->connect_and_open());
    return Status::ok();
  }
  void on_value(const std::string& value);
  void on_lost(const std::string& kind) {
    if (!shared_.stopping.load()) ++errors[kind];
  }

  LatencyHistogram latency;
  std::uint64_t events = 0;
  std::uint64_t events_measured = 0;
  std::map<std::string, std::uint64_t> errors;

 private:
  WatchShared& shared_;
  asio::io_context io_;
  std::vector<std::unique_ptr<Watcher>> watchers_;
};

Watcher::Watcher(WatchWorker& worker, asio::io_context& io, Endpoint endpoint)
    : worker_(worker), stream_(io), endpoint_(std::move(endpoint)),
      stream_parser_(worker.shared().target) {
  parser_.body_limit(boost::none);
  on_chunk_ = [this](std::uint64_t, beast::string_view body, beast::error_code& ec) {
    return on_chunk(std::string_view(body.data(), body.size()), ec);
  };
  parser_.on_chunk_body(on_chunk_);
}

Status Watcher::connect_and_open() {
  beast::error_code ec;
  asio::ip::tcp::resolver resolver(stream_.get_executor());
  const auto results = resolver.resolve(endpoint_.host, std::to_string(endpoint_.port), ec);
  if (!ec) stream_.socket().connect(*results.begin(), ec);
  if (ec) return unavailable("watch: connect to " + endpoint_.to_string() + ": " + ec.message());
  request_ = build_watch_request(worker_.shared().target, endpoint_.to_string(),
                                 worker_.shared().prefix);
  http::async_write(stream_, request_, [this](beast::error_code write_ec, std::size_t) {
    on_written(write_ec);
  });
  return Status::ok();
}

void Watcher::on_written(beast::error_code ec) {
  if (ec) return lost("watch write: " + ec.message());
  http::async_read_header(stream_, buffer_, parser_,
                          [this](beast::error_code read_ec, std::size_t) { on_header(read_ec); });
}

void Watcher::on_header(beast::error_code ec) {
  if (ec) return lost("watch header: " + ec.message());
  const unsigned status = parser_.get().result_int();
  if (status != 200) return lost("watch status " + std::to_string(status));
  // Squall registers the stream before it answers; etcd says so with its first message.
  if (worker_.shared().target == Target::squall) mark_established();
  http::async_read(stream_, buffer_, parser_,
                   [this](beast::error_code read_ec, std::size_t) { on_body(read_ec); });
}

void Watcher::on_body(beast::error_code ec) {
  lost(ec ? "watch stream: " + ec.message() : std::string("watch stream ended"));
}

std::size_t Watcher::on_chunk(std::string_view bytes, beast::error_code& ec) {
  const Status fed = stream_parser_.feed(bytes, [this](const std::string& value) {
    worker_.on_value(value);
  });
  if (!fed.is_ok()) {
    worker_.on_lost("watch parse: " + fed.message().substr(0, 80));
    ec = http::error::bad_chunk;
  }
  if (!established_ && stream_parser_.control_messages() > 0) mark_established();
  return bytes.size();
}

void Watcher::mark_established() {
  if (established_) return;
  established_ = true;
  worker_.shared().established.fetch_add(1);
}

void Watcher::lost(const std::string& kind) {
  worker_.on_lost(kind);
  beast::error_code ignored;
  stream_.socket().close(ignored);
}

void WatchWorker::on_value(const std::string& value) {
  ++events;
  shared_.events.fetch_add(1, std::memory_order_relaxed);
  const auto stamp = stamp_of(value);
  if (!stamp) {
    ++errors["event without a stamp"];
    return;
  }
  if (*stamp < shared_.measure_start_ns.load(std::memory_order_relaxed)) return;
  const std::int64_t latency_ns = now_stamp_ns() - *stamp;
  latency.record(static_cast<std::uint64_t>(std::max<std::int64_t>(latency_ns, 0)));
  ++events_measured;
}

// Waits until `done()` or the deadline; false on the deadline.
template <typename Done>
bool wait_until(Done done, std::chrono::milliseconds limit) {
  const Clock::time_point deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace

Status validate(const WatchOptions& options) {
  if (options.watchers < 1 || options.watchers > 20000) {
    return invalid_argument("watchers: 1..20000");
  }
  if (options.watcher_threads < 1 || options.watcher_threads > 16) {
    return invalid_argument("watcher threads: 1..16");
  }
  if (options.writer.rate_per_s <= 0) return invalid_argument("watch mode needs a rate");
  if (options.writer.requests > 0) return invalid_argument("watch mode runs for a duration");
  return Status::ok();
}

Result<WatchResult> run_watch(WatchOptions options) {
  options.writer.stamp_values = true;
  options.writer.mix = {100, 0, 0, 0};
  SQUALL_TRY(validate(options));
  SQUALL_TRY(validate(options.writer));
  WatchShared shared;
  shared.target = options.writer.target;
  shared.prefix = options.writer.key_prefix;
  std::vector<std::unique_ptr<WatchWorker>> workers;
  for (int i = 0; i < options.watcher_threads; ++i) {
    workers.push_back(std::make_unique<WatchWorker>(shared));
  }
  const auto& endpoints = options.writer.endpoints;
  for (int i = 0; i < options.watchers; ++i) {
    workers[static_cast<std::size_t>(i % options.watcher_threads)]->add(
        endpoints[static_cast<std::size_t>(i) % endpoints.size()]);
  }
  for (auto& worker : workers) SQUALL_TRY(worker->open_all());
  std::vector<std::thread> threads;
  for (auto& worker : workers) threads.emplace_back([raw = worker.get()] { raw->io().run(); });
  auto stop_all = [&] {
    shared.stopping.store(true);
    for (auto& worker : workers) worker->io().stop();
    for (auto& thread : threads) thread.join();
  };
  const bool ready = wait_until([&] { return shared.established.load() >= options.watchers; },
                                std::chrono::milliseconds(options.setup_timeout_ms));
  if (!ready) {
    const int established = shared.established.load();
    stop_all();
    return unavailable(fmt::format("{} of {} watch streams established", established,
                                   options.watchers));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  options.writer.progress_extra = [&shared, last = std::uint64_t{0}]() mutable {
    const std::uint64_t events = shared.events.load();
    const std::string text = fmt::format("{} events/s delivered", events - last);
    last = events;
    return text;
  };
  const Clock::time_point writer_start = Clock::now();
  shared.measure_start_ns.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          (writer_start + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(options.writer.warmup_s)))
              .time_since_epoch())
          .count());
  auto writes = run_load(options.writer);
  if (!writes) {
    stop_all();
    return writes.status();
  }
  WatchResult result;
  result.writes = std::move(writes).value();
  result.expected_events = result.writes.ok_total * static_cast<std::uint64_t>(options.watchers);
  wait_until([&] { return shared.events.load() >= result.expected_events; },
             std::chrono::milliseconds(static_cast<std::int64_t>(options.drain_s * 1000)));
  stop_all();
  for (const auto& worker : workers) {
    result.latency.merge(worker->latency);
    result.events += worker->events;
    result.events_measured += worker->events_measured;
    for (const auto& [kind, count] : worker->errors) result.errors[kind] += count;
  }
  result.events_per_s = result.writes.elapsed_s > 0
                            ? static_cast<double>(result.events_measured) / result.writes.elapsed_s
                            : 0;
  return result;
}

}  // namespace squall::loadgen
