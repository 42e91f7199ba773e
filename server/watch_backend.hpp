// WatchBackend: what the REST layer's watch streams (GET /v1/watch, docs/api.md) subscribe
// through; and HubWatchBackend, the implementation over the node's kvstore::WatchHub.
//
// The daemon instantiates a HubWatchBackend over its hub and hands it to RestService::start.
// The hub must outlive the RestService object (not only its stop()): every Watcher a stream
// holds is destroyed with the stream, and Watchers must go before their hub.
#pragma once

#include <memory>

#include "common/status.hpp"
#include "kvstore/watch_hub.hpp"

namespace squall::server {

class WatchBackend {
 public:
  virtual ~WatchBackend() = default;

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
  // `hub` must outlive this object and every Watcher it returns.
  explicit HubWatchBackend(kvstore::WatchHub& hub) : hub_(hub) {}

  Result<std::unique_ptr<kvstore::Watcher>> subscribe(const kvstore::Topic& topic,
                                                      const kvstore::WatchStart& start,
                                                      kvstore::WatchOptions options) override {
    return hub_.subscribe(topic, start, std::move(options));
  }

 private:
  kvstore::WatchHub& hub_;
};

}  // namespace squall::server
