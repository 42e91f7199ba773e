#include "core/group_node.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "common/log.hpp"
#include "core/group_node_impl.hpp"

namespace squall::core {
namespace {

// How often the thread-safe status snapshot is refreshed when nothing is installed.
constexpr std::uint64_t kStatusPeriodUs = 5000;
// The progress thread's wait between steps (a post() wakes it at once). The transport
// offers nothing to block on, so peers' messages are seen only by polling: while anything is
// in flight, or traffic was seen recently, the loop polls every kBusyWaitUs; once the node
// has been quiet for kRecentTrafficUs the wait grows with the quiet time, up to
// kMaxIdleWaitUs (and at most a twentieth of the heartbeat period, so heartbeats and failure
// detection keep their timing). An idle node wakes about 1,000 times a second instead of
// about 10,000.
constexpr std::uint64_t kBusyWaitUs = 50;
constexpr std::uint64_t kRecentTrafficUs = 2'000;
constexpr std::uint64_t kMaxIdleWaitUs = 1'000;

// The wait after a step, given how long the node has been quiet (0: busy now).
std::uint64_t idle_wait_us(std::uint64_t quiet_us, std::uint64_t heartbeat_ms) {
  if (quiet_us < kRecentTrafficUs) return kBusyWaitUs;
  std::uint64_t limit = std::min(kMaxIdleWaitUs, heartbeat_ms * 1000 / 20);
  return std::clamp(quiet_us / 10, kBusyWaitUs, std::max(limit, kBusyWaitUs));
}

std::shared_ptr<spdlog::logger> log() { return logger("group"); }

std::string_view provider_name(config::Provider provider) {
  return provider == config::Provider::verbs ? "verbs" : "tcp";
}

// The cluster secret: the file's content without surrounding whitespace, at least 16 bytes.
Result<std::string> read_secret(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error(fmt::format("cluster.secret_file {}: cannot read it", path));
  std::string secret((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const char* space = " \t\r\n";
  secret.erase(0, secret.find_first_not_of(space));
  secret.erase(secret.find_last_not_of(space) + 1);
  if (secret.size() < 16) {
    return invalid_argument(fmt::format(
        "cluster.secret_file {}: the secret has {} bytes; at least 16 are required", path,
        secret.size()));
  }
  return secret;
}

}  // namespace

std::string_view name(GroupPhase phase) {
  switch (phase) {
    case GroupPhase::joining: return "joining";
    case GroupPhase::running: return "running";
    case GroupPhase::changing: return "changing";
    case GroupPhase::stopped: return "stopped";
  }
  return "unknown";
}

GroupNode::Impl::Impl(const config::Config& config, StateMachineFactory machines,
                      GroupNodeCallbacks callbacks)
    : config_(config),
      machines_(std::move(machines)),
      callbacks_(std::move(callbacks)),
      clock_(system_clock_) {
  self_.id = config.node.id;
  self_.address = fabric::PeerAddress{config.node.address, config.ports.fabric};
  self_.membership_port = config.ports.membership;
  std::string rest_host = config.rest.listen.host;
  if (rest_host == "0.0.0.0" || rest_host == "::" || rest_host.empty()) {
    rest_host = config.node.address;
  }
  self_.rest = fabric::PeerAddress{rest_host, config.rest.listen.port};
  status_.cluster = config.cluster.name;
  status_.self = config.node.id;
}

GroupNode::Impl::~Impl() = default;

Status GroupNode::Impl::open() {
  std::error_code error;
  std::filesystem::create_directories(config_.node.data_dir, error);
  if (error) {
    return io_error(fmt::format("data dir {}: {}", config_.node.data_dir, error.message()));
  }
  auto log = FileViewLog::open(config_.node.data_dir + "/views.log");
  if (!log.is_ok()) return log.status();
  log_ = std::move(log).value();
  if (config_.cluster.secret_file) {
    auto secret = read_secret(*config_.cluster.secret_file);
    if (!secret.is_ok()) return secret.status();
    secret_ = std::move(secret).value();
  }
  fabric::BootstrapListenerOptions listener_options;
  listener_options.hold_timeout_ms = connect_timeout_ms();
  listener_options.secret = secret_;
  auto listener = fabric::BootstrapListener::start(config_.node.address, config_.ports.fabric,
                                                   listener_options);
  if (!listener.is_ok()) return listener.status();
  listener_ = std::move(listener).value();
  return start_membership_service();
}

std::uint32_t GroupNode::Impl::connect_timeout_ms() const {
  return std::max(config_.timeouts.join_timeout_ms, config_.timeouts.failure_timeout_ms * 4);
}

ViewManagerOptions GroupNode::Impl::manager_options() const {
  ViewManagerOptions options;
  options.self = self_.id;
  options.membership.region = kMembershipRegion;
  options.membership.heartbeat_ms = config_.timeouts.heartbeat_ms;
  options.membership.failure_timeout_ms = config_.timeouts.failure_timeout_ms;
  options.heartbeat_ms = config_.timeouts.heartbeat_ms;
  options.failure_timeout_ms = config_.timeouts.failure_timeout_ms;
  // Members install a view at different moments; a joiner also sets up its transport first.
  options.first_heartbeat_timeout_ms =
      std::max<std::uint64_t>(config_.timeouts.failure_timeout_ms * 4, 5000);
  options.membership.first_heartbeat_timeout_ms = options.first_heartbeat_timeout_ms;
  return options;
}

Result<fabric::Transport*> GroupNode::Impl::transport_for(const View& view) {
  fabric::LibfabricOptions options;
  options.node_id = self_.id;
  options.provider = std::string(provider_name(config_.transport.provider));
  options.domain = config_.transport.domain;
  options.bootstrap_host = config_.node.address;
  options.tx_depth = config_.transport.tx_depth;
  options.rx_depth = config_.transport.rx_depth;
  options.max_message_bytes = static_cast<std::uint32_t>(config_.transport.max_message_bytes);
  options.max_peers = static_cast<std::uint32_t>(std::max<std::size_t>(view.size(), 2));
  options.max_regions = 2 * config_.layout.shards + 2;
  options.connect_timeout_ms = connect_timeout_ms();
  options.secret = secret_;
  options.channel = view.id().value;
  options.listener = listener_;
  auto created = fabric::LibfabricTransport::create(options);
  if (!created.is_ok()) return created.status();
  fabric::LibfabricTransport* raw = created->get();
  transports_[view.id().value] = std::move(created).value();
  return static_cast<fabric::Transport*>(raw);
}

void GroupNode::Impl::configure(OrderedGroupOptions& options) {
  const config::MulticastConfig& multicast = config_.multicast;
  options.sst_region = 2 * options.shard.value + 1;
  options.window = multicast.window;
  options.smc_payload_bytes = multicast.smc_payload_bytes;
  options.heartbeat_ms = config_.timeouts.heartbeat_ms;
  options.failure_timeout_ms = config_.timeouts.failure_timeout_ms;
  if (multicast.max_payload_bytes > options.max_small_payload_bytes()) {
    LargeMessageOptions large;
    large.region = 2 * options.shard.value + 2;
    large.group_id = options.shard.value;
    large.block_size_bytes = multicast.rdmc_block_bytes;
    large.max_payload_bytes = multicast.max_payload_bytes;
    switch (multicast.rdmc_algorithm) {
      case config::RdmcAlgorithm::binomial_pipeline:
        large.algorithm = rdmc::Algorithm::binomial_pipeline;
        break;
      case config::RdmcAlgorithm::chain: large.algorithm = rdmc::Algorithm::chain; break;
      case config::RdmcAlgorithm::sequential: large.algorithm = rdmc::Algorithm::sequential; break;
      case config::RdmcAlgorithm::tree: large.algorithm = rdmc::Algorithm::tree; break;
    }
    options.large = large;
  }
}

void GroupNode::Impl::installed(const View& view) {
  if (current_view_ && current_view_->id() != view.id()) previous_view_ = current_view_;
  current_view_ = view;
  log()->info("installed view {} with {} member(s){}", view.id().value, view.size(),
              view.under_replicated().empty() ? "" : " (some shards under-replicated)");
  answer_joiners(view);
  if (callbacks_.installed) callbacks_.installed(view);
  // The first install happens inside ViewManager::create(): install_first() publishes then.
  if (manager_) publish_status(true);
}

void GroupNode::Impl::retire(ViewId view) { to_close_.push_back(view.value); }

void GroupNode::Impl::stopped(const std::string& reason) { halt(reason); }

void GroupNode::Impl::persisted(ShardId shard, Version frontier) {
  if (callbacks_.persisted) callbacks_.persisted(shard, frontier);
}

void GroupNode::Impl::halt(const std::string& reason) {
  if (stopped_) return;
  stopped_ = true;
  stop_reason_ = reason;
  log()->warn("this node left the group: {}", reason);
  for (auto& [id, reply] : pending_joins_) reply(Retry{"the contacted member stopped"});
  pending_joins_.clear();
  if (callbacks_.stopped) callbacks_.stopped(reason);
  publish_status(true);
}

Status GroupNode::Impl::install_first(const View& view, std::optional<View> previous,
                                      std::map<ShardId, NodeId> restart_sources) {
  ViewManagerOptions options = manager_options();
  options.previous = previous;
  options.restart_sources = std::move(restart_sources);
  previous_view_ = std::move(previous);
  auto manager = ViewManager::create(view, options, *this, clock_, *log_);
  if (!manager.is_ok()) return manager.status();
  manager_ = std::move(manager).value();
  publish_status(true);
  return Status::ok();
}

void GroupNode::Impl::run_tasks() {
  std::deque<std::function<void()>> tasks;
  {
    std::lock_guard lock(mutex_);
    tasks.swap(tasks_);
  }
  for (auto& task : tasks) task();
}

namespace {

// Adds every shard group's activity() to `activity`; true if a view change is under way or a
// group has work in flight.
bool groups_busy(ViewManager& manager, std::uint64_t& activity) {
  bool busy = manager.state() != ViewManagerState::running;
  for (std::uint32_t shard = 0; shard < manager.view().layout().shards; ++shard) {
    if (OrderedGroup* group = manager.group(ShardId{shard})) {
      activity += group->activity();
      busy = busy || group->in_flight();
    }
  }
  return busy;
}

}  // namespace

void GroupNode::Impl::run() {
  std::uint64_t last_busy_us = system_clock_.monotonic_us();
  std::uint64_t last_activity = 0;
  while (!stopping_.load()) {
    bool busy = false;
    {
      std::lock_guard lock(mutex_);
      busy = !tasks_.empty();
    }
    run_tasks();
    if (manager_ && !stopped_) {
      manager_->step(system_clock_.monotonic_us());
      if (manager_->state() == ViewManagerState::stopped) halt(manager_->stop_reason());
    }
    if (manager_ && !stopped_) record_readiness();
    for (std::uint32_t view : to_close_) transports_.erase(view);
    to_close_.clear();
    publish_status(false);
    std::uint64_t activity = 0;
    if (manager_ && !stopped_) busy = groups_busy(*manager_, activity) || busy;
    busy = busy || activity != last_activity;
    last_activity = activity;
    std::uint64_t now_us = system_clock_.monotonic_us();
    if (busy) last_busy_us = now_us;
    auto wait = std::chrono::microseconds(
        idle_wait_us(now_us - last_busy_us, config_.timeouts.heartbeat_ms));
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, wait, [this] { return !tasks_.empty() || stopping_.load(); });
  }
  run_tasks();
}

void GroupNode::Impl::publish_status(bool force) {
  std::uint64_t now_us = system_clock_.monotonic_us();
  if (!force && now_us - last_status_us_ < kStatusPeriodUs) return;
  last_status_us_ = now_us;
  GroupStatus status;
  status.cluster = config_.cluster.name;
  status.self = self_.id;
  status.stop_reason = stop_reason_;
  if (stopped_) {
    status.phase = GroupPhase::stopped;
  } else if (!manager_) {
    status.phase = GroupPhase::joining;
  } else {
    status.phase = manager_->state() == ViewManagerState::running ? GroupPhase::running
                                                                  : GroupPhase::changing;
  }
  if (manager_) {
    const View& view = manager_->view();
    const Membership& membership = manager_->membership();
    status.view = view.id();
    status.leader = view.member(membership.leader_rank()).id;
    for (const Member& member : view.members()) {
      status.members.push_back({member, membership.suspected(member.id)});
    }
    for (std::uint32_t shard = 0; shard < view.layout().shards; ++shard) {
      GroupShardStatus entry{ShardId{shard}, view.shard_members(ShardId{shard}), 0, 0};
      if (OrderedGroup* group = manager_->group(ShardId{shard})) {
        entry.delivered_version = group->delivered_version();
        entry.persisted_version = group->persisted_frontier();
      }
      status.shards.push_back(std::move(entry));
    }
    status.under_replicated = view.under_replicated();
    status.own_shards = view.shards_of(self_.id);
    status.majority = !stopped_ && membership.state() != MembershipState::stopped;
    status.views_installed = manager_->views_installed();
    status.voter_stage = static_cast<std::uint8_t>(membership.voter_stage());
  }
  std::lock_guard lock(mutex_);
  status_ = std::move(status);
}

// ---- GroupNode ----

Result<std::unique_ptr<GroupNode>> GroupNode::start(const config::Config& config,
                                                    StateMachineFactory machines,
                                                    GroupNodeCallbacks callbacks) {
  auto impl = std::make_unique<Impl>(config, std::move(machines), std::move(callbacks));
  SQUALL_TRY(impl->open());
  Impl* raw = impl.get();
  raw->progress_ = std::thread([raw] { raw->run(); });
  raw->joiner_ = std::thread([raw] { raw->begin(); });
  return std::unique_ptr<GroupNode>(new GroupNode(std::move(impl)));
}

GroupNode::GroupNode(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GroupNode::~GroupNode() { stop(); }

Status GroupNode::post(std::function<void()> task) { return impl_->post_task(std::move(task)); }

const View* GroupNode::view() const {
  return impl_->manager_ ? &impl_->manager_->view() : nullptr;
}

OrderedGroup* GroupNode::group(ShardId shard) {
  if (!impl_->manager_ || impl_->stopped_) return nullptr;
  if (impl_->manager_->state() != ViewManagerState::running) return nullptr;
  return impl_->manager_->group(shard);
}

HybridLogicalClock& GroupNode::clock() { return impl_->clock_; }

GroupStatus GroupNode::status() const {
  std::lock_guard lock(impl_->mutex_);
  return impl_->status_;
}

void GroupNode::stop() {
  if (!impl_) return;
  {
    std::lock_guard lock(impl_->mutex_);
    if (impl_->stopping_.exchange(true)) return;
  }
  impl_->wake_.notify_all();
  if (impl_->joiner_.joinable()) impl_->joiner_.join();
  if (impl_->progress_.joinable()) impl_->progress_.join();
  // The progress thread is gone: nothing answers joiners any more; then close everything.
  impl_->pending_joins_.clear();
  impl_->service_.reset();
  impl_->manager_.reset();
  impl_->transports_.clear();
  impl_->listener_.reset();
}

}  // namespace squall::core
