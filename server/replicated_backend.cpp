#include "server/replicated_backend.hpp"

#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include "common/log.hpp"
#include "kvstore/shard.hpp"
#include "server/replicated_backend_internal.hpp"

namespace squall::server {

namespace {

kvstore::KvCondition condition_of(const Precondition& precondition) {
  switch (precondition.kind) {
    case Precondition::Kind::none: return kvstore::KvCondition::none;
    case Precondition::Kind::version_is: return kvstore::KvCondition::if_version;
    case Precondition::Kind::exists: return kvstore::KvCondition::if_exists;
    case Precondition::Kind::absent: return kvstore::KvCondition::if_absent;
  }
  SQUALL_UNREACHABLE("precondition {}", static_cast<int>(precondition.kind));
}

WriteResult write_result(ShardId shard, const kvstore::KvResult& result) {
  WriteResult out;
  out.version = result.version;
  out.timestamp_us = hlc_physical_us(result.timestamp);
  out.shard = shard;
  switch (result.outcome) {
    case kvstore::KvOutcome::ok: out.outcome = WriteOutcome::written; break;
    case kvstore::KvOutcome::created:
      out.outcome = WriteOutcome::written;
      out.created = true;
      break;
    case kvstore::KvOutcome::precondition_failed:
      out.outcome = WriteOutcome::precondition_failed;
      out.current_version = result.current_version;
      break;
    case kvstore::KvOutcome::not_found: out.outcome = WriteOutcome::not_found; break;
  }
  return out;
}

}  // namespace

ReplicatedBackend::ReplicatedBackend(BackendOptions options, GroupPort& group,
                                     const Clock& clock, Forwarder* forwarder,
                                     MetricsRegistry* metrics, std::function<bool()> ready,
                                     std::function<Result<ClusterInfo>()> cluster)
    : options_(std::move(options)),
      group_(group),
      clock_(clock),
      forwarder_(forwarder),
      metrics_(metrics),
      ready_(std::move(ready)),
      cluster_(std::move(cluster)),
      next_sequence_(clock.wall_us()),
      readers_(std::make_unique<boost::asio::thread_pool>(options_.read_threads)) {
  if (metrics_ != nullptr) {
    forwarded_ = &metrics_->counter("squall_forwarded_requests_total",
                                    "Requests forwarded to a member of another shard");
    timed_out_ = &metrics_->counter("squall_request_timeouts_total",
                                    "Requests answered 503 after request_timeout_ms");
    barriers_ = &metrics_->counter("squall_read_barriers_total",
                                   "Read barriers sent for linearizable reads");
    resent_ = &metrics_->counter("squall_writes_resent_total",
                                 "Writes sent again after a view change discarded them");
  }
}

ReplicatedBackend::~ReplicatedBackend() {
  {
    std::lock_guard lock(ticker_mutex_);
    ticker_stop_ = true;
  }
  ticker_wake_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  readers_->join();  // reads posted already finish (they touch the replicas)
}

void ReplicatedBackend::start() {
  SQUALL_ASSERT(!ticker_.joinable(), "backend started twice");
  ticker_ = std::thread([this] { run_ticker(); });
}

void ReplicatedBackend::run_ticker() {
  std::unique_lock lock(ticker_mutex_);
  while (!ticker_stop_) {
    ticker_wake_.wait_for(lock, std::chrono::milliseconds(options_.tick_ms));
    if (ticker_stop_) break;
    lock.unlock();
    Status posted = group_.post([this] { tick(); });
    if (!posted.is_ok()) {
      // The group stopped: submissions queued for it (their drain task lost or refused)
      // would never run, so they fail now, as do those that come later.
      fail_submissions(unavailable("the group is not running: " + posted.message()));
      return;
    }
    lock.lock();
  }
}

void ReplicatedBackend::begin_shutdown() { shutting_down_.store(true); }

bool ReplicatedBackend::ready() const { return !shutting_down_.load() && ready_ && ready_(); }

std::uint64_t ReplicatedBackend::deadline_us() const {
  return clock_.monotonic_us() + std::uint64_t{options_.request_timeout_ms} * 1000;
}

ShardId ReplicatedBackend::shard_of(std::string_view key) const {
  return kvstore::shard_for_key(options_.layout, key);
}

ReplicatedBackend::ShardState& ReplicatedBackend::shard_state(ShardId shard) {
  auto& state = shards_[shard];
  if (!state) state = std::make_unique<ShardState>();
  return *state;
}

void ReplicatedBackend::attach(ShardReplica& replica) {
  shard_state(replica.shard()).replica = &replica;
  replica.results = [this](ShardId shard, const kvstore::KvResult& result) {
    on_result(shard, result);
  };
}

bool ReplicatedBackend::admit(const std::function<void(Status)>& fail) {
  if (shutting_down_.load()) {
    fail(unavailable("the node is shutting down"));
    return false;
  }
  if (in_flight_.fetch_add(1) >= options_.max_requests) {
    in_flight_.fetch_sub(1);
    fail(Status(Code::would_block, "too many requests in flight"));
    return false;
  }
  return true;
}

void ReplicatedBackend::post_or_fail(Task task, std::function<void(Status)> fail) {
  bool first = false;
  bool gone = false;
  {
    std::lock_guard lock(submit_mutex_);
    gone = group_gone_;
    if (!gone) {
      first = submitted_.empty();
      submitted_.push_back({std::move(task), std::move(fail)});
    }
  }
  if (gone) return fail(unavailable("the group is not running"));
  // A queue that is not empty has its drain task posted already (or being posted).
  if (!first) return;
  Status posted = group_.post([this] { drain_submissions(); });
  if (!posted.is_ok()) {
    fail_submissions(unavailable("the group is not running: " + posted.message()));
  }
}

void ReplicatedBackend::drain_submissions() {
  SQUALL_ASSERT(draining_.empty(), "submission batches overlap");
  {
    std::lock_guard lock(submit_mutex_);
    draining_.swap(submitted_);
  }
  for (Submission& submission : draining_) submission.run();
  draining_.clear();
}

void ReplicatedBackend::fail_submissions(const Status& status) {
  std::vector<Submission> failing;
  {
    std::lock_guard lock(submit_mutex_);
    group_gone_ = true;
    failing.swap(submitted_);
  }
  for (Submission& submission : failing) submission.fail(status);
}

void ReplicatedBackend::put(PutRequest request, Callback<WriteResult> done) {
  // Shared with the forwarding closure, which outlives this call; `update` views its bytes.
  auto shared = std::make_shared<PutRequest>(std::move(request));
  kvstore::KvUpdate update;
  update.op = kvstore::KvOp::put;
  update.condition = condition_of(shared->precondition);
  update.expected_version = shared->precondition.version;
  update.key = shared->key;
  update.value = as_bytes(shared->value);
  submit_update(update, [shared] { return forward_request(*shared); }, std::move(done));
}

void ReplicatedBackend::remove(DeleteRequest request, Callback<WriteResult> done) {
  auto shared = std::make_shared<DeleteRequest>(std::move(request));
  kvstore::KvUpdate update;
  update.op = kvstore::KvOp::del;
  update.condition = condition_of(shared->precondition);
  update.expected_version = shared->precondition.version;
  update.key = shared->key;
  submit_update(update, [shared] { return forward_request(*shared); }, std::move(done));
}

void ReplicatedBackend::submit_update(kvstore::KvUpdate& update,
                                      std::function<HttpRequest()> forwarded,
                                      Callback<WriteResult> done) {
  if (!enter(done)) return;
  update.request = {options_.self, next_sequence_.fetch_add(1)};
  Status valid = kvstore::validate_update(update, options_.limits);
  if (!valid.is_ok()) return done(valid);
  const ShardId shard = shard_of(update.key);
  auto local = [this, shard, sequence = update.request.sequence,
                payload = kvstore::encode_update(update, options_.limits)](
                   Callback<WriteResult> reply) mutable {
    submit_write(shard, std::move(payload), sequence, std::move(reply));
  };
  route<WriteResult>(shard, std::move(forwarded), &parse_write_answer, std::move(done),
                     std::move(local));
}

void ReplicatedBackend::submit_write(ShardId shard, Bytes payload, std::uint64_t sequence,
                                     Callback<WriteResult> done) {
  auto write = std::make_unique<PendingWrite>();
  write->shard = shard;
  write->payload = std::move(payload);
  write->done = std::move(done);
  write->deadline_us = deadline_us();
  PendingWrite& ref = *write;
  writes_.emplace(sequence, std::move(write));
  try_send(sequence, ref);
}

void ReplicatedBackend::try_send(std::uint64_t sequence, PendingWrite& write) {
  if (write.sent || write.delivered) return;
  if (!group_.serves(write.shard)) {
    return complete_write(sequence, unavailable(fmt::format(
                                        "this node no longer serves shard {}", write.shard)));
  }
  auto sent = group_.send(write.shard, write.payload);
  if (sent.is_ok()) {
    write.sent = true;
    write.sent_view = group_.view_id();
    return;
  }
  const Code code = sent.status().code();
  if (code != Code::unavailable && code != Code::would_block) {
    complete_write(sequence, sent.status());
  }
  // Otherwise a view change or a full queue: the next tick (or installed view) retries.
}

void ReplicatedBackend::on_result(ShardId shard, const kvstore::KvResult& result) {
  if (result.request.origin != options_.self) return;
  ShardState& state = shard_state(shard);
  if (result.op == kvstore::KvOp::barrier) {
    on_barrier(shard, state, result.request.sequence);
  } else if (auto found = writes_.find(result.request.sequence); found != writes_.end()) {
    PendingWrite& write = *found->second;
    write.delivered = true;
    write.result = write_result(shard, result);
    // Acknowledge only once every replica of the shard persisted it (the frontier).
    if (result.version <= state.frontier) {
      complete_write(found->first, write.result);
    } else {
      SQUALL_ASSERT(state.persist_waiters.empty() ||
                        state.persist_waiters.back().first < result.version,
                    "shard {}: result of version {} out of order", shard, result.version);
      state.persist_waiters.emplace_back(result.version, found->first);
    }
  }
  if (!state.time_reads.empty()) serve_time_reads(state);
}

void ReplicatedBackend::on_persisted(ShardId shard, Version frontier) {
  ShardState& state = shard_state(shard);
  if (frontier <= state.frontier) return;
  state.frontier = frontier;
  std::vector<Answer> answers;
  auto& waiters = state.persist_waiters;
  while (!waiters.empty() && waiters.front().first <= frontier) {
    // A write that timed out meanwhile is gone from writes_ (and was answered).
    if (auto found = writes_.find(waiters.front().second); found != writes_.end()) {
      answers.push_back({std::move(found->second->done), std::move(found->second->result)});
      writes_.erase(found);
    }
    waiters.pop_front();
  }
  answer(std::move(answers));
}

void ReplicatedBackend::complete_write(std::uint64_t sequence, Result<WriteResult> result) {
  auto found = writes_.find(sequence);
  SQUALL_ASSERT(found != writes_.end(), "completing unknown write {}", sequence);
  Callback<WriteResult> done = std::move(found->second->done);
  writes_.erase(found);
  done(std::move(result));
}

void ReplicatedBackend::answer(std::vector<Answer> answers) {
  if (answers.empty()) return;
  // One hand-off for the whole batch: the answers are formatted and passed to the HTTP
  // threads from a reader thread, not from the progress thread.
  boost::asio::post(*readers_, [answers = std::move(answers)]() mutable {
    for (Answer& each : answers) each.done(std::move(each.result));
  });
}

void ReplicatedBackend::on_installed() {
  const ViewId view = group_.view_id();
  std::vector<std::uint64_t> again;
  for (auto& [sequence, write] : writes_) {
    // Not delivered by the end of its view: the ragged trim discarded it on every member,
    // so sending it again cannot make it apply twice.
    if (write->sent && !write->delivered && write->sent_view < view) {
      write->sent = false;
      again.push_back(sequence);
    }
  }
  for (std::uint64_t sequence : again) {
    auto found = writes_.find(sequence);
    if (found == writes_.end()) continue;
    if (resent_ != nullptr) resent_->add();
    try_send(sequence, *found->second);
  }
  for (auto& [shard, state] : shards_) {
    if (state->barrier && state->barrier_view < view) {
      state->barrier.reset();
      state->covered.insert(state->covered.end(), std::make_move_iterator(state->waiting.begin()),
                            std::make_move_iterator(state->waiting.end()));
      state->waiting = std::move(state->covered);
      state->covered.clear();
    }
    send_barrier(shard, *state);
  }
}

void ReplicatedBackend::tick() {
  const std::uint64_t now = clock_.monotonic_us();
  std::vector<std::uint64_t> expired;
  std::vector<std::uint64_t> unsent;
  for (auto& [sequence, write] : writes_) {
    if (write->deadline_us <= now) {
      expired.push_back(sequence);
    } else if (!write->sent && !write->delivered) {
      unsent.push_back(sequence);
    }
  }
  for (std::uint64_t sequence : expired) {
    if (timed_out_ != nullptr) timed_out_->add();
    complete_write(sequence, Status(Code::timed_out, "the write did not complete in time; "
                                                     "its outcome is unknown (it may still "
                                                     "take effect; a conditional retry tells)"));
  }
  for (std::uint64_t sequence : unsent) {
    auto found = writes_.find(sequence);
    if (found != writes_.end()) try_send(sequence, *found->second);
  }
  for (auto& [shard, state] : shards_) {
    expire_reads(*state, now);
    if (!state->time_reads.empty()) serve_time_reads(*state);
    send_barrier(shard, *state);
  }
}

void ReplicatedBackend::fail_all() {
  {
    std::lock_guard lock(ticker_mutex_);
    ticker_stop_ = true;
  }
  ticker_wake_.notify_all();
  if (ticker_.joinable() && ticker_.get_id() != std::this_thread::get_id()) ticker_.join();
  readers_->join();  // reads already decided finish first
  const Status gone = unavailable("the node is shutting down");
  // A write may already be delivered (even durable) and only wait for the frontier here.
  const Status unknown = unavailable("the node is shutting down; the write's outcome is "
                                     "unknown (a conditional retry tells)");
  fail_submissions(gone);
  while (!writes_.empty()) complete_write(writes_.begin()->first, unknown);
  for (auto& [shard, state] : shards_) {
    state->persist_waiters.clear();
    state->barrier.reset();
    for (auto* reads : {&state->waiting, &state->covered, &state->time_reads}) {
      std::vector<PendingRead> failing = std::move(*reads);
      reads->clear();
      for (PendingRead& read : failing) read.fail(gone);
    }
  }
}

}  // namespace squall::server
