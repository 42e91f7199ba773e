// WatchBackend: what the REST layer's watch streams (GET /v1/watch, docs/api.md) subscribe
// through; and HubWatchBackend, the implementation over the node's kvstore::WatchHub.
//
// The daemon instantiates a HubWatchBackend over its hub and hands it to RestService::start.
// The hub must outlive the RestService object (not only its stop()): every Watcher a stream
// holds is destroyed with the stream, and Watchers must go before their hub.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "kvstore/watch_hub.hpp"
#include "server/forwarder.hpp"

namespace squall::server {

// A shard of a topic that this node does not serve now: its events come from a member.
struct RemoteShard {
  ShardId shard;
  std::vector<std::string> members;  // REST addresses ("host:port"), in the order to try
};

struct WatchPlacement {
  std::vector<ShardId> local;        // served here: from the hub
  std::vector<RemoteShard> remote;   // from other nodes
};

class WatchBackend {
 public:
  virtual ~WatchBackend() = default;

  // Where the shards `topic` may have events in are served now: `remote` empty means the
  // local hub has them all (`local` is then unused). Called on a server thread; cheap.
  virtual WatchPlacement placement(const kvstore::Topic& /*topic*/) const { return {}; }
  // The client that opens watch streams at other nodes; null: none (remote shards are then
  // answered 503).
  virtual Forwarder* forwarder() const { return nullptr; }

  // Opens one subscription: WatchHub::subscribe's contract. Errors the REST layer maps:
  // invalid_argument 400, out_of_range 410 ("gone", before the stream starts), unavailable
  // 503. Called on a server thread: must not block for long. `options.on_ready` is set by
  // the caller and must be passed on unchanged.
  virtual Result<std::unique_ptr<kvstore::Watcher>> subscribe(const kvstore::Topic& topic,
                                                              const kvstore::WatchStart& start,
                                                              kvstore::WatchOptions options) = 0;
};

// Subscribes directly on a WatchHub. Thread-safe (the hub is).
class HubWatchBackend final : public WatchBackend {
 public:
  using Placement = std::function<WatchPlacement(const kvstore::Topic&)>;

  // `hub` must outlive this object and every Watcher it returns; so must `forwarder`.
  // `placement` (may be empty: every shard is local) answers placement().
  explicit HubWatchBackend(kvstore::WatchHub& hub, Placement placement = {},
                           Forwarder* forwarder = nullptr)
      : hub_(hub), placement_(std::move(placement)), forwarder_(forwarder) {}

  WatchPlacement placement(const kvstore::Topic& topic) const override {
    return placement_ ? placement_(topic) : WatchPlacement{};
  }
  Forwarder* forwarder() const override { return forwarder_; }

  Result<std::unique_ptr<kvstore::Watcher>> subscribe(const kvstore::Topic& topic,
                                                      const kvstore::WatchStart& start,
                                                      kvstore::WatchOptions options) override {
    return hub_.subscribe(topic, start, std::move(options));
  }

 private:
  kvstore::WatchHub& hub_;
  const Placement placement_;
  Forwarder* const forwarder_;
};

}  // namespace squall::server
