// KvBackend: the narrow interface between the REST layer and the replicated store.
//
// The REST layer parses and validates a request, then calls one method here; the backend
// answers through a callback. Calls are made from HTTP server threads and must not block:
// a write completes only when it is durable on every replica of its shard, so a backend
// queues the work and completes the callback later, from any thread. Each callback is
// invoked exactly once (or dropped, which the HTTP layer answers with 500); the backend must
// invoke or drop every callback before the HTTP server that issued it is destroyed.
//
// Errors travel as Status, mapped by the REST layer to the contract's statuses:
//   invalid_argument -> 400, not_found -> 404, out_of_range -> 410 (retention discarded it),
//   unavailable / timed_out / aborted / would_block / no_space -> 503 with Retry-After,
//   anything else -> 500.
// A failed precondition of a conditional write is not an error but an outcome (WriteResult),
// because it carries the key's current version.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/ids.hpp"
#include "common/status.hpp"
#include "common/version.hpp"
#include "kvstore/version_index.hpp"

namespace squall::server {

enum class Consistency : std::uint8_t {
  linearizable,  // reflects every write acknowledged before the read began
  stable,        // the local replica's persisted state, without coordination; may be stale
};

// The condition of a conditional write, from If-Match / If-None-Match.
struct Precondition {
  enum class Kind : std::uint8_t {
    none,
    version_is,  // If-Match: "<v>": the key exists and its current version is `version`
    exists,      // If-Match: *
    absent,      // If-None-Match: *: the key is absent or deleted
  };
  Kind kind = Kind::none;
  Version version = 0;  // version_is only
};

struct PutRequest {
  std::string key;    // validated: UTF-8, 1..max_key_bytes, no control characters
  std::string value;  // raw bytes, at most max_value_bytes
  Precondition precondition;
};

struct DeleteRequest {
  std::string key;
  Precondition precondition;  // none, version_is or exists
};

enum class WriteOutcome : std::uint8_t {
  written,              // version/timestamp_us/shard describe the new version
  precondition_failed,  // nothing written; current_version is the key's version, if any
  not_found,            // delete of an absent or deleted key; nothing written
};

struct WriteResult {
  WriteOutcome outcome = WriteOutcome::written;
  Version version = 0;
  std::uint64_t timestamp_us = 0;  // microseconds since the Unix epoch (HLC physical part)
  ShardId shard{0};
  bool created = false;  // a put to a key that was absent or deleted before it
  std::optional<Version> current_version;  // precondition_failed only; none: absent/deleted
};

// Where in history to read. kvstore's ReadPoint, with time given in microseconds: the
// backend maps Kind::time values (timestamp_us) to its clock's representation.
using ReadPoint = kvstore::ReadPoint;

struct GetRequest {
  std::string key;
  ReadPoint at = ReadPoint::latest();
  Consistency consistency = Consistency::linearizable;
};

struct GetResult {
  Version version = 0;
  std::uint64_t timestamp_us = 0;
  std::string value;
};

struct ListRequest {
  std::string prefix;
  std::string start_after;
  std::size_t limit = 100;  // 1..limits.max_list_limit
  ReadPoint at = ReadPoint::latest();
  Consistency consistency = Consistency::linearizable;
  bool values = false;  // fill ListItem::value
  // Only this shard (the `shard=` query parameter): the page a node asks of a member of a
  // shard it does not serve when it merges a list itself (docs/consistency.md). A node that
  // does not serve the shard answers unavailable; it never forwards such a page again.
  std::optional<ShardId> shard;
};

struct ListItem {
  std::string key;
  Version version = 0;
  std::uint64_t timestamp_us = 0;
  std::uint64_t size_bytes = 0;
  std::optional<std::string> value;  // ListRequest::values only
};

struct ListResult {
  std::vector<ListItem> items;
  std::optional<std::string> next;  // start_after of the next page; none: no key follows
};

struct HistoryRequest {
  std::string key;
  std::optional<Version> before;  // exclusive; none: from the newest
  std::size_t limit = 100;
};

struct HistoryVersion {
  Version version = 0;
  std::uint64_t timestamp_us = 0;
  bool deleted = false;  // a tombstone ("op": "delete")
  std::uint64_t size_bytes = 0;
};

// Errors: not_found when the key has no retained version at all.
struct HistoryResult {
  std::vector<HistoryVersion> versions;  // newest first
  std::optional<Version> next;  // `before` of the next page; none: nothing older retained
};

struct ClusterMember {
  NodeId id{0};
  std::string address;  // host:port of the membership service
  std::string rest;     // host:port of the REST service
  std::string state;    // "active", "joining", "suspected", ...
};

struct ClusterShard {
  ShardId id{0};
  std::vector<NodeId> members;
  Version delivered_version = 0;
  Version persisted_version = 0;
};

struct ClusterInfo {
  std::string cluster;
  NodeId self{0};
  ViewId view_id{0};
  NodeId leader{0};
  std::vector<ClusterMember> members;
  std::vector<ClusterShard> shards;
};

template <typename T>
using Callback = std::function<void(Result<T>)>;

class KvBackend {
 public:
  virtual ~KvBackend() = default;

  virtual void put(PutRequest request, Callback<WriteResult> done) = 0;
  virtual void remove(DeleteRequest request, Callback<WriteResult> done) = 0;
  // not_found: absent or deleted at the read point; out_of_range: history discarded.
  virtual void get(GetRequest request, Callback<GetResult> done) = 0;
  virtual void list(ListRequest request, Callback<ListResult> done) = 0;
  virtual void history(HistoryRequest request, Callback<HistoryResult> done) = 0;
  virtual void cluster_info(Callback<ClusterInfo> done) = 0;

  // True when this node is in a view with quorum and can serve writes (GET /readyz).
  // Cheap and non-blocking.
  virtual bool ready() const = 0;
  // Seconds a client should wait before retrying after an unavailable answer.
  virtual std::uint32_t retry_after_s() const { return 1; }
};

}  // namespace squall::server
