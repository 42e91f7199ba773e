// ReplicatedBackend's request records (shared by replicated_backend.cpp and
// replicated_reads.cpp). Progress thread only.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <vector>

#include "server/replicated_backend.hpp"

namespace squall::server {

struct ReplicatedBackend::PendingWrite {
  ShardId shard;
  Bytes payload;  // the encoded update, kept to send it again after a view change
  Callback<WriteResult> done;
  std::uint64_t deadline_us = 0;
  bool sent = false;       // queued in a group
  ViewId sent_view;        // the view it was queued in
  bool delivered = false;  // its result came back; now waiting for persistence
  WriteResult result;
};

struct ReplicatedBackend::PendingRead {
  std::uint64_t deadline_us = 0;
  ReadPoint point;
  std::function<void(ReadPoint)> serve;
  std::function<void(Status)> fail;
  HlcTimestamp after = 0;  // time reads: served once the delivered timestamp passed this
};

struct ReplicatedBackend::ShardState {
  ShardReplica* replica = nullptr;
  Version frontier = 0;  // the shard's persistence frontier
  // (version, write sequence) of delivered writes waiting for the frontier, in version order
  // (results come in apply order, so appending keeps it sorted).
  std::deque<std::pair<Version, std::uint64_t>> persist_waiters;
  std::vector<PendingRead> waiting;  // linearizable reads not covered by a sent barrier
  std::vector<PendingRead> covered;  // reads the barrier in flight serves
  std::optional<std::uint64_t> barrier;  // sequence of the barrier in flight
  ViewId barrier_view;
  std::vector<PendingRead> time_reads;
};

}  // namespace squall::server

#include "server/forward_codec.hpp"

namespace squall::server {

// `done` that also counts the request out of `counter` (the requests in flight).
template <typename T>
Callback<T> released(std::atomic<std::size_t>& counter, Callback<T> done) {
  return [&counter, done = std::move(done)](Result<T> result) {
    counter.fetch_sub(1);
    done(std::move(result));
  };
}

template <typename T>
void ReplicatedBackend::forward(std::vector<std::string> targets, HttpRequest request,
                                Result<T> (*parse)(const HttpResponse&), Callback<T> done) {
  if (forwarder_ == nullptr || targets.empty()) {
    return done(unavailable("no other member of the shard is known to this node"));
  }
  if (forwarded_ != nullptr) forwarded_->add();
  forwarder_->send(std::move(targets), std::move(request),
                   [parse, done = std::move(done)](Result<HttpResponse> answer) {
                     if (!answer.is_ok()) return done(answer.status());
                     done(parse(answer.value()));
                   });
}

template <typename T>
bool ReplicatedBackend::enter(Callback<T>& done) {
  if (!admit([&done](Status status) { done(std::move(status)); })) return false;
  done = released(in_flight_, std::move(done));
  return true;
}

template <typename T>
void ReplicatedBackend::route(ShardId shard, std::function<HttpRequest()> forwarded,
                              Result<T> (*parse)(const HttpResponse&), Callback<T> done,
                              std::function<void(Callback<T>)> local) {
  std::function<void(Status)> fail = [done](Status status) { done(std::move(status)); };
  post_or_fail(
      [this, shard, forwarded = std::move(forwarded), parse, done = std::move(done),
       local = std::move(local)]() mutable {
        if (group_.serves(shard)) return local(std::move(done));
        forward(group_.rest_addresses(shard), forwarded(), parse, std::move(done));
      },
      std::move(fail));
}

}  // namespace squall::server
