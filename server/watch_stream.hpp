// Watch streams: GET /v1/watch (docs/api.md, "Watch streams") as Server-Sent Events over a
// WatchBackend.
//
// WatchRoute validates a watch request, enforces the stream limit, subscribes (so a start
// that is too old is answered 410 before any byte of the stream) and hands the connection a
// WatchStream, the HttpStreamSource that turns the watcher's events into SSE text:
//
//   id: <cursor>\n event: put|delete\n data: {"key",...}\n \n      (one per event)
//   : keepalive\n [id: <cursor>\n] \n                              (when idle)
//
// Each event's id is the watcher's cursor just after that event, so the last id a client
// received resumes it with no gap and no duplicate. The connection pulls from the stream only
// when its previous write finished, so at most one batch is outside the hub per stream; a
// client that does not keep up fills its watcher's bounded buffer, the hub drops the watcher
// and the stream ends after the last event sent.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "kvstore/watch_hub.hpp"
#include "server/http_types.hpp"
#include "server/metrics.hpp"
#include "server/rest_parse.hpp"
#include "server/watch_backend.hpp"

namespace squall::server {

struct WatchLimits {
  std::size_t max_watchers = 512;           // open streams on this server; more: 503
  std::size_t buffer_events = 1024;         // per stream: the watcher's live buffer
  std::uint64_t buffer_bytes = 64ULL << 20;  // likewise in event bytes (WatchEvent::size_bytes)
  std::uint32_t keepalive_ms = 15000;       // idle period before a keepalive comment; 0: none
  std::size_t max_topic_bytes = 4096;       // longest key or prefix

  Status validate() const;
};

// From config.watch (max_watchers, buffer_events, keepalive_s) and config.limits (the topic
// limit is max_key_bytes; buffer_bytes leaves room for two of the largest events).
WatchLimits watch_limits(const config::WatchConfig& watch, const config::LimitsConfig& limits);

// What a valid GET /v1/watch asks for.
struct WatchRequest {
  kvstore::Topic topic;
  kvstore::WatchStart start;
  bool values = true;
  // `shard=<n>`: only that shard's events (a node taking a shard it does not serve from a
  // member of it); the stream then opens with an id-only block, its starting cursor.
  std::optional<ShardId> shard;
};

// Parses the query (key= or prefix=, values=, start=, cursor=) and the Last-Event-ID header,
// which wins over cursor= and start= (an EventSource reconnects with its original URL plus
// the header). invalid_argument with a client-fit message for anything malformed.
Result<WatchRequest> parse_watch_request(const Query& query, const HttpRequest& request,
                                         std::size_t max_topic_bytes);

// The SSE text of one event, `id` being the cursor after it (exactly what a stream sends).
void append_watch_event(std::string& out, std::string_view id, const kvstore::WatchItem& item);

// Serves GET /v1/watch. Thread-safe. The metrics registry must outlive every stream.
class WatchRoute {
 public:
  // `backend` may be null: every watch request is then answered 503.
  WatchRoute(WatchBackend* backend, MetricsRegistry& metrics, WatchLimits limits);

  // Answers 400 / 410 / 503 with the contract's error body, or starts the stream.
  void handle(const Query& query, const HttpRequest& request, std::uint32_t retry_after_s,
              const HttpResponder& respond);

  // Streams open now (subscribed and not yet ended).
  std::size_t open_streams() const;

  struct Counters;

 private:
  // Subscribes to the shards of `placement.local` here and takes each remote one from a
  // member of it; answers once every part has answered (errors passed on as they came).
  void handle_merged(WatchRequest request, WatchPlacement placement,
                     std::uint32_t retry_after_s, const HttpResponder& respond);
  kvstore::WatchOptions watch_options(const WatchRequest& request,
                                      std::function<void()> on_ready) const;

  WatchBackend* const backend_;
  const WatchLimits limits_;
  std::shared_ptr<Counters> counters_;  // shared with the streams, which may outlive a call
};

}  // namespace squall::server
