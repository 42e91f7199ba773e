#include "server/watch_stream.hpp"

#include <algorithm>
#include <deque>
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
  auto shard = query.number("shard");
  if (!shard) return shard.status();
  if (shard->has_value()) {
    if (**shard >= kvstore::WatchCursor::kMaxShards) return invalid_argument("no such shard");
    result.shard = ShardId{static_cast<std::uint32_t>(**shard)};
  }
  return result;
}

namespace {

// The data line of one event: compact JSON, fields in the contract's order.
std::string event_data(const kvstore::WatchItem& item) {
  const kvstore::WatchEvent& event = *item.event;
  nlohmann::ordered_json data;
  data["key"] = event.key;
  data["version"] = event.version;
  data["timestamp_us"] = hlc_physical_us(event.timestamp);
  data["shard"] = event.shard.value;
  if (item.has_value) data["value_base64"] = base64_encode(as_string_view(event.value));
  // Keys reach the hub validated, but never let a stream throw: replace, never fail.
  return data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

void append_watch_event(std::string& out, std::string_view id, const kvstore::WatchItem& item) {
  out += "id: ";
  out += id;
  out += "\nevent: ";
  out += kvstore::watch_op_name(item.event->op);
  out += "\ndata: ";
  out += event_data(item);
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
  // `announce`: open with an id-only block holding the starting cursor.
  WatchStream(std::unique_ptr<kvstore::Watcher> watcher, std::shared_ptr<Waker> waker,
              std::shared_ptr<WatchRoute::Counters> counters, std::uint32_t keepalive_ms,
              bool announce)
      : watcher_(std::move(watcher)),
        waker_(std::move(waker)),
        counters_(std::move(counters)),
        keepalive_ms_(keepalive_ms),
        announce_(announce) {}

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
  bool announce_ = false;
  bool ended_ = false;
};

HttpStreamSource::Next WatchStream::next(std::string& out) {
  if (ended_) return Next::end;
  if (announce_) {
    announce_ = false;
    last_id_ = watcher_->cursor().encode();
    out += "id: " + last_id_ + "\n\n";
    return Next::data;
  }
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

HttpResponse stream_header() {
  HttpResponse header{http::status::ok, 11};
  header.set(http::field::content_type, "text/event-stream");
  header.set(http::field::cache_control, "no-cache");
  return header;
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
  WatchPlacement placement = backend_->placement(parsed->topic);
  auto waker = std::make_shared<Waker>();
  kvstore::WatchOptions options = watch_options(*parsed, [waker] { waker->wake(); });
  if (parsed->shard) {
    const ShardId shard = *parsed->shard;
    for (const RemoteShard& remote : placement.remote) {
      if (remote.shard != shard) continue;
      counters_->release(std::nullopt);
      return respond(unavailable_response(
          fmt::format("shard {} is not served here", shard), retry_after_s));
    }
    options.shards = {shard};
  } else if (!placement.remote.empty()) {
    counters_->release(std::nullopt);  // handle_merged takes its own slot
    return handle_merged(std::move(parsed.value()), std::move(placement), retry_after_s,
                         respond);
  }
  auto watcher = backend_->subscribe(parsed->topic, parsed->start, std::move(options));
  if (!watcher) {
    counters_->release(std::nullopt);
    return respond(status_response(watcher.status(), retry_after_s));
  }
  if (!parsed->shard && !backend_->placement(parsed->topic).remote.empty()) {
    // The node left a shard of the topic between the placement read and the subscription
    // (the backend updates the placement before it drops the shard's watchers): this watcher
    // may have missed that drop, so it is not used.
    counters_->release(std::nullopt);
    return respond(unavailable_response("the shards served here changed; retry",
                                        retry_after_s));
  }
  respond.stream(stream_header(),
                 std::make_unique<WatchStream>(std::move(watcher.value()), std::move(waker),
                                               counters_, limits_.keepalive_ms,
                                               parsed->shard.has_value()));
}

kvstore::WatchOptions WatchRoute::watch_options(const WatchRequest& request,
                                                std::function<void()> on_ready) const {
  kvstore::WatchOptions options;
  options.buffer_events = limits_.buffer_events;
  options.buffer_bytes = limits_.buffer_bytes;
  options.values = request.values;
  options.on_ready = std::move(on_ready);
  return options;
}

}  // namespace squall::server

// --- Watch streams merged from this node's hub and other nodes -------------------------------

namespace squall::server {

namespace {

// One SSE block of a stream from another node, reduced to what merging needs.
struct RemoteBlock {
  std::optional<Version> version;  // the block's id, as its shard's position
  std::string event;               // empty: an id-only or comment block
  std::string data;
};

// One shard taken from a member of it: the blocks its stream delivered and not yet merged.
// Filled on the forwarder's thread, drained on the connection's strand.
class RemotePart {
 public:
  RemotePart(ShardId shard, std::uint64_t max_bytes, std::shared_ptr<Waker> waker)
      : shard_(shard), max_bytes_(max_bytes), waker_(std::move(waker)) {}

  ShardId shard() const { return shard_; }

  void set_handle(std::shared_ptr<Forwarder::StreamHandle> handle) {
    std::lock_guard lock(mutex_);
    handle_ = std::move(handle);
    if (closed_ && handle_) handle_->close();
  }
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    if (handle_) handle_->close();
  }

  void data(std::string_view bytes) {
    {
      std::lock_guard lock(mutex_);
      if (ended_) return;
      text_.append(bytes);
      split_locked();
      if (queued_bytes_ > max_bytes_) {
        // The client does not keep up: end here (it resumes from its cursor) rather than
        // buffer without bound.
        end_locked(Status(Code::would_block, "too slow for a forwarded watch stream"));
      }
    }
    waker_->wake();
  }
  void ended(Status why) {
    {
      std::lock_guard lock(mutex_);
      if (!ended_) end_locked(std::move(why));
    }
    waker_->wake();
  }

  // The first position the stream announced, once it has.
  std::optional<Version> announced() const {
    std::lock_guard lock(mutex_);
    return announced_;
  }
  // Moves up to `max` blocks into `out`; true when the stream is over and nothing is left
  // (`why` then says why).
  bool take(std::vector<RemoteBlock>& out, std::size_t max, Status& why) {
    std::lock_guard lock(mutex_);
    while (!blocks_.empty() && out.size() < max) {
      queued_bytes_ -= blocks_.front().data.size();
      out.push_back(std::move(blocks_.front()));
      blocks_.pop_front();
    }
    if (!ended_ || !blocks_.empty()) return false;
    why = why_;
    return true;
  }

 private:
  void end_locked(Status why) {
    ended_ = true;
    why_ = why.is_ok() ? unavailable("the forwarded watch stream ended") : std::move(why);
    if (handle_) handle_->close();
  }
  void split_locked() {
    for (std::size_t end = text_.find("\n\n"); end != std::string::npos;
         end = text_.find("\n\n")) {
      RemoteBlock block;
      Status parsed = parse_block(std::string_view(text_).substr(0, end), block);
      text_.erase(0, end + 2);
      if (!parsed.is_ok()) return end_locked(std::move(parsed));
      if (!announced_ && block.version) announced_ = block.version;
      if (!block.version && block.event.empty()) continue;  // a comment only
      queued_bytes_ += block.data.size();
      blocks_.push_back(std::move(block));
    }
    if (text_.size() > max_bytes_) end_locked(io_error("an oversized block in a watch stream"));
  }
  Status parse_block(std::string_view text, RemoteBlock& block) const {
    while (!text.empty()) {
      const std::size_t newline = text.find('\n');
      const std::string_view line = text.substr(0, newline);
      text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
      if (line.starts_with("id: ")) {
        auto cursor = kvstore::WatchCursor::decode(line.substr(4));
        if (!cursor) return io_error("a forwarded watch stream sent a bad id");
        block.version = cursor->get(shard_).value_or(0);
      } else if (line.starts_with("event: ")) {
        block.event = line.substr(7);
      } else if (line.starts_with("data: ")) {
        block.data = line.substr(6);
      }
    }
    if (!block.event.empty() && !block.version) return io_error("an event without an id");
    return Status::ok();
  }

  const ShardId shard_;
  const std::uint64_t max_bytes_;
  const std::shared_ptr<Waker> waker_;
  mutable std::mutex mutex_;
  std::shared_ptr<Forwarder::StreamHandle> handle_;  // GUARDED_BY(mutex_)
  std::string text_;                                  // GUARDED_BY(mutex_), not yet split
  std::deque<RemoteBlock> blocks_;                    // GUARDED_BY(mutex_)
  std::uint64_t queued_bytes_ = 0;                    // GUARDED_BY(mutex_)
  std::optional<Version> announced_;                  // GUARDED_BY(mutex_)
  bool ended_ = false;                                // GUARDED_BY(mutex_)
  bool closed_ = false;                               // GUARDED_BY(mutex_)
  Status why_;                                        // GUARDED_BY(mutex_)
};

// A watch whose shards come partly from this node's hub (`local_`, restricted to the shards
// served here) and partly from other nodes (`parts_`, one stream per shard). Each shard comes
// from exactly one source, so per-shard order holds; the ids are this stream's own cursor,
// every shard's position in one WatchCursor, valid at any node. Nothing is sent until every
// part announced its starting position (so no id lacks a shard). Any part ending ends the
// stream: the client resumes from its last id, at any node.
class MergedWatchStream final : public HttpStreamSource {
 public:
  MergedWatchStream(std::unique_ptr<kvstore::Watcher> local, std::vector<ShardId> local_shards,
                    std::vector<std::shared_ptr<RemotePart>> parts, std::shared_ptr<Waker> waker,
                    std::shared_ptr<WatchRoute::Counters> counters, std::uint32_t keepalive_ms)
      : local_(std::move(local)),
        local_shards_(std::move(local_shards)),
        parts_(std::move(parts)),
        waker_(std::move(waker)),
        counters_(std::move(counters)),
        keepalive_ms_(keepalive_ms) {
    refresh_local();
  }
  ~MergedWatchStream() override {
    waker_->install(nullptr);
    for (const auto& part : parts_) part->close();
    local_.reset();
    counters_->release(end_reason_);
  }
  MergedWatchStream(const MergedWatchStream&) = delete;
  MergedWatchStream& operator=(const MergedWatchStream&) = delete;

  void start(std::function<void()> wake) override { waker_->install(std::move(wake)); }
  Next next(std::string& out) override;
  void heartbeat(std::string& out) override {
    out += ": keepalive\n";
    if (ready_ && !ended_) {
      refresh_local();
      std::string id = cursor_.encode();
      if (id != last_id_) {
        out += "id: " + id + "\n";
        last_id_ = std::move(id);
      }
    }
    out += "\n";
  }
  std::uint32_t heartbeat_ms() const override { return keepalive_ms_; }

 private:
  void refresh_local() {
    if (!local_) return;
    const kvstore::WatchCursor cursor = local_->cursor();
    for (ShardId shard : local_shards_) cursor_.advance(shard, cursor.get(shard).value_or(0));
  }
  bool all_announced() {
    for (const auto& part : parts_) {
      auto position = part->announced();
      if (!position) return false;
      cursor_.advance(part->shard(), *position);
    }
    return true;
  }
  void append(std::string& out, ShardId shard, Version version, std::string_view event,
              std::string_view data) {
    cursor_.set(shard, version);
    last_id_ = cursor_.encode();
    out += "id: " + last_id_ + "\nevent: ";
    out += event;
    out += "\ndata: ";
    out += data;
    out += "\n\n";
  }
  Next finish(const std::string& out, const Status& why) {
    ended_ = true;
    end_reason_ = end_reason(why);
    logger("server")->info("forwarded watch stream ended: {}", why.to_string());
    return out.empty() ? Next::end : Next::data;
  }
  std::optional<Status> drain_remote(std::string& out);
  std::optional<Status> drain_local(std::string& out);

  std::unique_ptr<kvstore::Watcher> local_;
  const std::vector<ShardId> local_shards_;
  const std::vector<std::shared_ptr<RemotePart>> parts_;
  std::shared_ptr<Waker> waker_;
  std::shared_ptr<WatchRoute::Counters> counters_;
  const std::uint32_t keepalive_ms_;
  kvstore::WatchCursor cursor_;
  std::vector<RemoteBlock> blocks_;         // scratch
  std::vector<kvstore::WatchItem> items_;   // scratch
  std::string last_id_;
  std::string_view end_reason_ = "disconnected";
  bool ready_ = false;
  bool ended_ = false;
};

std::optional<Status> MergedWatchStream::drain_remote(std::string& out) {
  for (const auto& part : parts_) {
    Status why;
    const bool over = part->take(blocks_, kChunkEvents, why);
    for (const RemoteBlock& block : blocks_) {
      if (block.event.empty()) {
        cursor_.advance(part->shard(), *block.version);  // a quiet shard's position
      } else {
        append(out, part->shard(), *block.version, block.event, block.data);
      }
    }
    blocks_.clear();
    if (over) return why;
  }
  return std::nullopt;
}

std::optional<Status> MergedWatchStream::drain_local(std::string& out) {
  if (!local_) return std::nullopt;
  for (std::size_t polls = 0; polls < kPollsPerNext; ++polls) {
    const kvstore::PollState state = local_->poll(items_, kPollEvents);
    for (const kvstore::WatchItem& item : items_) {
      append(out, item.event->shard, item.event->version,
             kvstore::watch_op_name(item.event->op), event_data(item));
    }
    items_.clear();
    if (state == kvstore::PollState::closed) return local_->status();
    if (state == kvstore::PollState::idle || out.size() >= kChunkBytes) break;
  }
  return std::nullopt;
}

HttpStreamSource::Next MergedWatchStream::next(std::string& out) {
  if (ended_) return Next::end;
  if (!ready_) {
    for (const auto& part : parts_) {
      Status why;
      std::vector<RemoteBlock> none;
      if (!part->announced() && part->take(none, 0, why)) return finish(out, why);
    }
    if (!all_announced()) return Next::wait;
    ready_ = true;
    last_id_ = cursor_.encode();
    out += "id: " + last_id_ + "\n\n";  // where this stream starts
  }
  if (auto over = drain_remote(out)) return finish(out, *over);
  if (auto over = drain_local(out)) return finish(out, *over);
  return out.empty() ? Next::wait : Next::data;
}

// Answers a merged watch once every remote part has answered: the stream, or the first
// error as it came (a 410 or 400 of a member passes through with its body).
class MergedOpening {
 public:
  MergedOpening(HttpResponder respond, std::unique_ptr<MergedWatchStream> stream,
                std::size_t parts, std::uint32_t retry_after_s)
      : respond_(std::move(respond)), stream_(std::move(stream)), waiting_(parts),
        retry_after_s_(retry_after_s) {}

  void opened(Result<HttpResponse>& answer) {
    std::unique_ptr<MergedWatchStream> stream;
    {
      std::lock_guard lock(mutex_);
      if (!stream_) return;  // answered already
      const bool ok = answer.is_ok() && answer->result() == http::status::ok;
      if (ok && --waiting_ != 0) return;
      stream = std::move(stream_);
    }
    if (!answer.is_ok()) return respond_(status_response(answer.status(), retry_after_s_));
    if (answer->result() == http::status::ok) {
      return respond_.stream(stream_header(), std::move(stream));
    }
    HttpResponse error{answer->result(), 11};
    error.set(http::field::content_type, "application/json");
    if (auto retry = answer->find(http::field::retry_after); retry != answer->end()) {
      error.set(http::field::retry_after, retry->value());
    }
    error.body() = std::move(answer->body());
    respond_(std::move(error));
  }

 private:
  HttpResponder respond_;
  std::mutex mutex_;
  std::unique_ptr<MergedWatchStream> stream_;  // GUARDED_BY(mutex_); null once answered
  std::size_t waiting_;                        // GUARDED_BY(mutex_)
  const std::uint32_t retry_after_s_;
};

// GET /v1/watch at a member, for shard `shard` of `request` only.
HttpRequest remote_watch_request(const WatchRequest& request, ShardId shard) {
  std::string target = fmt::format("/v1/watch?{}={}&values={}&shard={}",
                                   request.topic.is_prefix() ? "prefix" : "key",
                                   percent_encode(request.topic.text, false), request.values,
                                   shard.value);
  switch (request.start.kind) {
    case kvstore::WatchStart::Kind::now: target += "&start=now"; break;
    case kvstore::WatchStart::Kind::oldest: target += "&start=oldest"; break;
    case kvstore::WatchStart::Kind::cursor: {
      kvstore::WatchCursor only;
      only.set(shard, request.start.cursor.get(shard).value_or(0));
      target += "&cursor=" + only.encode();
      break;
    }
  }
  HttpRequest out{http::verb::get, target, 11};
  out.set(http::field::user_agent, "squalld-forward");
  out.prepare_payload();
  return out;
}

}  // namespace

void WatchRoute::handle_merged(WatchRequest request, WatchPlacement placement,
                               std::uint32_t retry_after_s, const HttpResponder& respond) {
  Forwarder* forwarder = backend_->forwarder();
  if (forwarder == nullptr) {
    return respond(unavailable_response("this node cannot reach every shard of the topic",
                                        retry_after_s));
  }
  if (!counters_->acquire(limits_.max_watchers)) {
    return respond(unavailable_response("too many watch streams open", retry_after_s));
  }
  auto waker = std::make_shared<Waker>();
  std::unique_ptr<kvstore::Watcher> local;
  if (!placement.local.empty()) {
    kvstore::WatchOptions options = watch_options(request, [waker] { waker->wake(); });
    options.shards = placement.local;
    auto watcher = backend_->subscribe(request.topic, request.start, std::move(options));
    if (!watcher) {
      counters_->release(std::nullopt);
      return respond(status_response(watcher.status(), retry_after_s));
    }
    local = std::move(watcher.value());
  }
  std::vector<std::shared_ptr<RemotePart>> parts;
  for (const RemoteShard& remote : placement.remote) {
    parts.push_back(std::make_shared<RemotePart>(remote.shard, limits_.buffer_bytes, waker));
  }
  auto opening = std::make_shared<MergedOpening>(
      respond,
      std::make_unique<MergedWatchStream>(std::move(local), placement.local, parts, waker,
                                          counters_, limits_.keepalive_ms),
      parts.size(), retry_after_s);
  // A member's stream is silent at most one keepalive period; allow two, and a margin.
  const std::uint32_t idle_ms =
      limits_.keepalive_ms == 0 ? 24 * 3600 * 1000 : 2 * limits_.keepalive_ms + 5000;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::shared_ptr<RemotePart>& part = parts[i];
    Forwarder::StreamHandler handler;
    handler.opened = [opening](Result<HttpResponse> answer) { opening->opened(answer); };
    handler.data = [part](std::string_view bytes) { part->data(bytes); };
    handler.ended = [part](Status why) { part->ended(std::move(why)); };
    part->set_handle(forwarder->open_stream(placement.remote[i].members,
                                            remote_watch_request(request, part->shard()),
                                            idle_ms, std::move(handler)));
  }
}

}  // namespace squall::server
