#include "server/watch_stream.hpp"

#include <algorithm>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/bytes.hpp"
#include "common/hlc.hpp"
#include "common/log.hpp"
#include "server/rest_response.hpp"

namespace squall::server {
namespace http = boost::beast::http;

namespace {

// One chunk of a stream holds at most this many events, or stops growing past this size
// (a single event may be larger: values up to limits.max_value_bytes, base64-encoded).
constexpr std::size_t kPollEvents = 16;
constexpr std::size_t kChunkEvents = 256;
constexpr std::size_t kChunkBytes = 64 * 1024;
// poll() calls per next(): a replay that finds nothing in this many scans yields the strand.
constexpr std::size_t kPollsPerNext = 8;
constexpr std::uint64_t kMinBufferBytes = 4ULL << 20;
constexpr std::uint64_t kMaxBufferBytes = 256ULL << 20;  // the hub's default ceiling
constexpr std::size_t kMaxKeepaliveMs = 3600 * 1000;

// Passes the hub's on_ready to the connection once it has started the stream. The hub calls
// on_ready from its delivery thread or a closing thread; the connection installs its wake
// function on its strand; the stream clears it when it goes, before its watcher closes.
class Waker {
 public:
  void wake() {
    std::lock_guard lock(mutex_);
    if (wake_) {
      wake_();
    } else {
      pending_ = true;
    }
  }
  void install(std::function<void()> wake) {
    std::lock_guard lock(mutex_);
    wake_ = std::move(wake);
    if (pending_ && wake_) wake_();
    pending_ = false;
  }

 private:
  std::mutex mutex_;
  std::function<void()> wake_;  // GUARDED_BY(mutex_)
  bool pending_ = false;        // GUARDED_BY(mutex_)
};

// Why a stream ended, a label of squall_watch_streams_ended_total.
std::string_view end_reason(const Status& status) {
  switch (status.code()) {
    case Code::would_block: return "too_slow";
    case Code::out_of_range: return "gone";
    case Code::unavailable: return "lost_events";
    case Code::aborted: return "closed";
    default: return "error";
  }
}

Status check_topic_text(std::string_view text, std::size_t max_topic_bytes, bool is_prefix) {
  if (is_prefix && text.empty()) return Status::ok();  // the empty prefix: every key
  Status valid = validate_key(text, max_topic_bytes);
  if (valid.code() == Code::out_of_range) {
    return invalid_argument(fmt::format("{} longer than {} bytes", is_prefix ? "prefix" : "key",
                                        max_topic_bytes));
  }
  return valid;
}

Result<kvstore::Topic> parse_topic(const Query& query, std::size_t max_topic_bytes) {
  auto key = query.text("key");
  if (!key) return key.status();
  auto prefix = query.text("prefix");
  if (!prefix) return prefix.status();
  if (key->has_value() == prefix->has_value()) {
    return invalid_argument("give exactly one of key= and prefix=");
  }
  const bool is_prefix = prefix->has_value();
  std::string text = is_prefix ? std::move(**prefix) : std::move(**key);
  SQUALL_TRY(check_topic_text(text, max_topic_bytes, is_prefix));
  return is_prefix ? kvstore::Topic::for_prefix(std::move(text))
                   : kvstore::Topic::for_key(std::move(text));
}

Result<kvstore::WatchStart> parse_start(const Query& query, const HttpRequest& request) {
  auto start = query.text("start");
  if (!start) return start.status();
  auto cursor = query.text("cursor");
  if (!cursor) return cursor.status();
  kvstore::WatchStart result = kvstore::WatchStart::now();
  if (start->has_value()) {
    if (**start == "oldest") {
      result = kvstore::WatchStart::oldest();
    } else if (**start != "now") {
      return invalid_argument("start must be now or oldest");
    }
  }
  std::string_view text;
  if (cursor->has_value()) text = **cursor;
  const auto last_event_id = request.find("Last-Event-ID");
  if (last_event_id != request.end() && !last_event_id->value().empty()) {
    text = to_std(last_event_id->value());
  }
  if (text.empty() && !cursor->has_value()) return result;
  auto decoded = kvstore::WatchCursor::decode(text);
  if (!decoded) return invalid_argument("malformed cursor: " + decoded.status().message());
  return kvstore::WatchStart::after(std::move(decoded.value()));
}

}  // namespace

// --- Limits and parsing ----------------------------------------------------------------------

Status WatchLimits::validate() const {
  if (max_watchers < 1) return invalid_argument("watch.max_watchers must be at least 1");
  if (buffer_events < 1) return invalid_argument("watch.buffer_events must be at least 1");
  if (buffer_bytes < 1 || buffer_bytes > kMaxBufferBytes) {
    return invalid_argument("watch buffer bytes must be 1..256 MiB");
  }
  if (keepalive_ms > kMaxKeepaliveMs) return invalid_argument("watch.keepalive_s over 1 hour");
  if (max_topic_bytes < 1) return invalid_argument("the topic limit must be positive");
  return Status::ok();
}

WatchLimits watch_limits(const config::WatchConfig& watch, const config::LimitsConfig& limits) {
  WatchLimits result;
  result.max_watchers = watch.max_watchers;
  result.buffer_events = watch.buffer_events;
  result.keepalive_ms = watch.keepalive_s * 1000;
  result.max_topic_bytes = limits.max_key_bytes;
  const std::uint64_t largest_event_bytes =
      limits.max_value_bytes + limits.max_key_bytes + kvstore::kWatchEventOverheadBytes;
  result.buffer_bytes = std::clamp(2 * largest_event_bytes, kMinBufferBytes, kMaxBufferBytes);
  return result;
}

Result<WatchRequest> parse_watch_request(const Query& query, const HttpRequest& request,
                                         std::size_t max_topic_bytes) {
  WatchRequest result;
  auto topic = parse_topic(query, max_topic_bytes);
  if (!topic) return topic.status();
  result.topic = std::move(topic.value());
  auto start = parse_start(query, request);
  if (!start) return start.status();
  result.start = std::move(start.value());
  auto values = query.flag("values", true);
  if (!values) return values.status();
  result.values = values.value();
  return result;
}

void append_watch_event(std::string& out, std::string_view id, const kvstore::WatchItem& item) {
  const kvstore::WatchEvent& event = *item.event;
  nlohmann::ordered_json data;
  data["key"] = event.key;
  data["version"] = event.version;
  data["timestamp_us"] = hlc_physical_us(event.timestamp);
  data["shard"] = event.shard.value;
  if (item.has_value) data["value_base64"] = base64_encode(as_string_view(event.value));
  out += "id: ";
  out += id;
  out += "\nevent: ";
  out += kvstore::watch_op_name(event.op);
  out += "\ndata: ";
  // Keys reach the hub validated, but never let a stream throw: replace, never fail.
  out += data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  out += "\n\n";
}

// --- Counters --------------------------------------------------------------------------------

struct WatchRoute::Counters {
  explicit Counters(MetricsRegistry& metrics)
      : registry(metrics),
        open_gauge(metrics.gauge("squall_watch_streams_open", "Watch streams open.")) {}

  // Takes a stream slot unless `max` are open.
  bool acquire(std::size_t max) {
    std::size_t now = open.load();
    do {
      if (now >= max) return false;
    } while (!open.compare_exchange_weak(now, now + 1));
    open_gauge.add(1);
    return true;
  }
  // Gives a slot back; a stream that ran counts as ended with `reason`.
  void release(std::optional<std::string_view> reason) {
    open.fetch_sub(1);
    open_gauge.add(-1);
    if (!reason) return;
    registry
        .counter("squall_watch_streams_ended_total", "Watch streams ended, by reason.",
                 {{"reason", std::string(*reason)}})
        .add();
  }

  MetricsRegistry& registry;
  Gauge& open_gauge;
  std::atomic<std::size_t> open{0};
};

// --- WatchStream -----------------------------------------------------------------------------

namespace {

// The HttpStreamSource of one watch: polls the watcher, formats events and keepalives.
// Holds one stream slot of the route's counters from construction to destruction.
class WatchStream final : public HttpStreamSource {
 public:
  WatchStream(std::unique_ptr<kvstore::Watcher> watcher, std::shared_ptr<Waker> waker,
              std::shared_ptr<WatchRoute::Counters> counters, std::uint32_t keepalive_ms)
      : watcher_(std::move(watcher)),
        waker_(std::move(waker)),
        counters_(std::move(counters)),
        keepalive_ms_(keepalive_ms) {}

  ~WatchStream() override {
    waker_->install(nullptr);  // no wake after this: the connection may be going too
    Status status = watcher_->status();
    watcher_.reset();
    counters_->release(status.is_ok() ? "disconnected" : end_reason(status));
  }
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;

  void start(std::function<void()> wake) override { waker_->install(std::move(wake)); }
  Next next(std::string& out) override;
  void heartbeat(std::string& out) override;
  std::uint32_t heartbeat_ms() const override { return keepalive_ms_; }

 private:
  std::unique_ptr<kvstore::Watcher> watcher_;
  std::shared_ptr<Waker> waker_;
  std::shared_ptr<WatchRoute::Counters> counters_;
  const std::uint32_t keepalive_ms_;
  std::vector<kvstore::WatchItem> items_;  // poll scratch
  std::string last_id_;                    // the last id sent
  bool ended_ = false;
};

HttpStreamSource::Next WatchStream::next(std::string& out) {
  if (ended_) return Next::end;
  std::size_t events = 0;
  for (std::size_t polls = 0; polls < kPollsPerNext; ++polls) {
    // The cursor after the events returned so far; each event moves its shard's entry.
    kvstore::WatchCursor cursor = watcher_->cursor();
    const kvstore::PollState state =
        watcher_->poll(items_, std::min(kPollEvents, kChunkEvents - events));
    for (const kvstore::WatchItem& item : items_) {
      cursor.set(item.event->shard, item.event->version);
      last_id_ = cursor.encode();
      append_watch_event(out, last_id_, item);
    }
    events += items_.size();
    items_.clear();
    if (state == kvstore::PollState::closed) {
      ended_ = true;
      const Status why = watcher_->status();
      logger("server")->info("watch stream on {:?} ended: {}", watcher_->topic().text,
                             why.to_string());
      return out.empty() ? Next::end : Next::data;
    }
    if (state == kvstore::PollState::idle) return out.empty() ? Next::wait : Next::data;
    if (out.size() >= kChunkBytes || events >= kChunkEvents) return Next::data;
  }
  if (!out.empty()) return Next::data;
  // A long replay scanned without finding events of the topic: let other work run first.
  waker_->wake();
  return Next::wait;
}

void WatchStream::heartbeat(std::string& out) {
  out += ": keepalive\n";
  if (!ended_) {
    // A quiet topic's cursor follows the frontier: sending it keeps a resume replayable.
    const kvstore::WatchCursor cursor = watcher_->cursor();
    std::string id = cursor.empty() ? std::string() : cursor.encode();
    if (!id.empty() && id != last_id_) {
      out += "id: " + id + "\n";
      last_id_ = std::move(id);
    }
  }
  out += "\n";
}

}  // namespace

// --- WatchRoute ------------------------------------------------------------------------------

WatchRoute::WatchRoute(WatchBackend* backend, MetricsRegistry& metrics, WatchLimits limits)
    : backend_(backend), limits_(limits), counters_(std::make_shared<Counters>(metrics)) {
  const Status valid = limits_.validate();
  SQUALL_ASSERT(valid.is_ok(), "{}", valid.to_string());
}

std::size_t WatchRoute::open_streams() const { return counters_->open.load(); }

void WatchRoute::handle(const Query& query, const HttpRequest& request,
                        std::uint32_t retry_after_s, const HttpResponder& respond) {
  auto parsed = parse_watch_request(query, request, limits_.max_topic_bytes);
  if (!parsed) return respond(status_response(parsed.status(), retry_after_s));
  if (backend_ == nullptr) {
    return respond(unavailable_response("this node serves no watch streams", retry_after_s));
  }
  if (!counters_->acquire(limits_.max_watchers)) {
    return respond(unavailable_response("too many watch streams open", retry_after_s));
  }
  auto waker = std::make_shared<Waker>();
  kvstore::WatchOptions options;
  options.buffer_events = limits_.buffer_events;
  options.buffer_bytes = limits_.buffer_bytes;
  options.values = parsed->values;
  options.on_ready = [waker] { waker->wake(); };
  auto watcher = backend_->subscribe(parsed->topic, parsed->start, std::move(options));
  if (!watcher) {
    counters_->release(std::nullopt);
    return respond(status_response(watcher.status(), retry_after_s));
  }
  HttpResponse header{http::status::ok, 11};
  header.set(http::field::content_type, "text/event-stream");
  header.set(http::field::cache_control, "no-cache");
  respond.stream(std::move(header),
                 std::make_unique<WatchStream>(std::move(watcher.value()), std::move(waker),
                                               counters_, limits_.keepalive_ms));
}

}  // namespace squall::server
