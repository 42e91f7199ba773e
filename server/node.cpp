#include "server/node.hpp"

#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "common/assert.hpp"
#include "common/log.hpp"
#include "kvstore/shard.hpp"

namespace squall::server {

namespace {

std::string hex(std::string_view bytes) {
  std::string out;
  for (char c : bytes) out += fmt::format("{:02x}", static_cast<unsigned char>(c));
  return out;
}

std::string host_port(const fabric::PeerAddress& address) {
  return fmt::format("{}:{}", address.host, address.port);
}

// REST addresses of the members of `shard` in `view` other than `self`, in rank order.
std::vector<std::string> rest_addresses_in(const core::View& view, ShardId shard, NodeId self) {
  std::vector<std::string> out;
  if (shard.value >= view.layout().shards) return out;
  for (NodeId id : view.shard_members(shard)) {
    if (id == self) continue;
    auto rank = view.rank_of(id);
    if (!rank) continue;
    const core::Member& member = view.member(*rank);
    if (!member.rest.host.empty() && member.rest.port != 0) out.push_back(host_port(member.rest));
  }
  return out;
}

}  // namespace

// GroupPort over the daemon's GroupNode. The node pointer is set right after GroupNode::start
// returns; callbacks that run before see no view (serves() false, post() unavailable).
class GroupNodePort final : public GroupPort {
 public:
  explicit GroupNodePort(NodeId self) : self_(self) {}
  void attach(core::GroupNode* node) { node_.store(node); }

  Status post(std::function<void()> task) override {
    core::GroupNode* node = node_.load();
    if (node == nullptr) return unavailable("the group is not started");
    return node->post(std::move(task));
  }
  Result<std::uint64_t> send(ShardId shard, std::span<const std::byte> payload) override {
    core::GroupNode* node = node_.load();
    core::OrderedGroup* group = node == nullptr ? nullptr : node->group(shard);
    if (group == nullptr) return unavailable(fmt::format("shard {} has no group here now", shard));
    return group->send(payload);
  }
  bool serves(ShardId shard) const override {
    const core::View* view = current();
    return view != nullptr && shard.value < view->layout().shards &&
           view->shard_rank(shard, self_).has_value();
  }
  ViewId view_id() const override {
    const core::View* view = current();
    return view == nullptr ? ViewId{0} : view->id();
  }
  std::vector<std::string> rest_addresses(ShardId shard) const override {
    const core::View* view = current();
    if (view == nullptr) return {};
    return rest_addresses_in(*view, shard, self_);
  }

 private:
  const core::View* current() const {
    core::GroupNode* node = node_.load();
    return node == nullptr ? nullptr : node->view();
  }
  const NodeId self_;
  std::atomic<core::GroupNode*> node_{nullptr};
};

Node::Node(const config::Config& config, NodeOptions options)
    : config_(config), options_(options) {}

Node::~Node() { shutdown(); }

Result<std::unique_ptr<Node>> Node::start(const config::Config& config, NodeOptions options) {
  std::unique_ptr<Node> node(new Node(config, options));
  kvstore::WatchHubOptions hub_options;
  hub_options.max_watchers = config.watch.max_watchers;
  hub_options.max_shards = std::max<std::size_t>(hub_options.max_shards, config.layout.shards);
  auto hub = kvstore::WatchHub::create(hub_options);
  if (!hub) return hub.status().with_context("watch hub");
  node->hub_ = std::move(hub).value();
  SQUALL_TRY(node->open_replicas());

  auto forward_options = forwarder_options(config);
  if (!forward_options) return forward_options.status();
  auto forwarder = Forwarder::start(std::move(forward_options).value());
  if (!forwarder) return forwarder.status();
  node->forwarder_ = std::move(forwarder).value();
  Node* self = node.get();
  node->watch_ = std::make_unique<HubWatchBackend>(
      *node->hub_, [self](const kvstore::Topic& topic) { return self->watch_placement(topic); },
      node->forwarder_.get());

  node->port_ = std::make_unique<GroupNodePort>(config.node.id);
  BackendOptions backend_options;
  backend_options.self = config.node.id;
  backend_options.layout = config.layout;
  backend_options.limits = {config.limits.max_key_bytes, config.limits.max_value_bytes};
  backend_options.request_timeout_ms = config.timeouts.request_timeout_ms;
  Node* raw = node.get();
  node->backend_ = std::make_unique<ReplicatedBackend>(
      backend_options, *node->port_, SystemClock::instance(), node->forwarder_.get(),
      &node->metrics_, [raw] { return raw->ready(); }, [raw] { return raw->cluster_info(); });
  // No progress thread runs yet: attaching here is ordered before its first step.
  for (auto& [shard, replica] : node->replicas_) node->backend_->attach(*replica);

  SQUALL_TRY(node->start_group());
  node->backend_->start();
  node->register_gauges();
  auto rest = RestService::start(config, *node->backend_, node->metrics_, options.rest_threads,
                                 node->watch_.get());
  if (!rest) return rest.status().with_context("REST service");
  node->rest_ = std::move(rest).value();
  logger("node")->info("node {} started: REST on {}:{}, {} shard(s)", config.node.id,
                       config.rest.listen.host, node->rest_->port(), config.layout.shards);
  return node;
}

Status Node::open_replicas() {
  for (std::uint32_t i = 0; i < config_.layout.shards; ++i) {
    auto replica = open_replica(ShardId{i});
    if (!replica) return replica.status().with_context(fmt::format("shard {}", i));
    SQUALL_TRY(hub_->add_shard(ShardId{i}, replica.value()->applied_version(),
                               replica.value()->watch_history()));
    replicas_.emplace(ShardId{i}, std::move(replica).value());
    persisted_[ShardId{i}].store(0);
  }
  return Status::ok();
}

Result<std::unique_ptr<ShardReplica>> Node::open_replica(ShardId shard) {
  kvstore::KvStateMachineOptions options;
  options.pools = config_.layout.pools;
  options.limits = {config_.limits.max_key_bytes, config_.limits.max_value_bytes};
  options.store.max_key_bytes = config_.limits.max_key_bytes;
  options.store.max_value_bytes = config_.limits.max_value_bytes;
  options.store.max_page_items = std::max<std::size_t>(options.store.max_page_items,
                                                       config_.limits.max_list_limit);
  options.store.log.segment_size_bytes = config_.persistence.segment_bytes;
  options.store.log.max_record_bytes =
      std::max<std::uint64_t>(options.store.log.max_record_bytes,
                              config_.limits.max_value_bytes + config_.limits.max_key_bytes +
                                  64 * config::kKiB);
  const std::string shard_dir =
      (std::filesystem::path(config_.node.data_dir) / fmt::format("shard-{}", shard)).string();
  // A persistent pool's log lives in shard-<n>/pool-<hex of its prefix> ("pool-" for the
  // default pool), so reordering pools in the configuration keeps each one's data.
  auto directories = [this, shard, shard_dir](std::size_t index, const config::PoolConfig& pool)
      -> Result<kvstore::Directory*> {
    auto& slot = dirs_[{shard.value, index}];
    if (!slot) {
      const std::string path = shard_dir + "/pool-" + hex(pool.prefix);
      auto directory = kvstore::open_posix_directory(path, true);
      if (!directory) return directory.status().with_context(path);
      slot = std::move(directory).value();
    }
    return slot.get();
  };
  auto machine = kvstore::KvStateMachine::open(std::move(options), directories,
                                               SystemClock::instance());
  if (!machine) return machine.status();
  return std::make_unique<ShardReplica>(shard, std::move(machine).value(), hub_.get());
}

Status Node::start_group() {
  core::GroupNodeCallbacks callbacks;
  callbacks.installed = [this](const core::View& view) {
    record_placement(view);
    view_id_.store(view.id().value);
    view_members_.store(view.size());
    backend_->on_installed();
  };
  callbacks.persisted = [this](ShardId shard, Version frontier) {
    replicas_.at(shard)->frontier(frontier);
    persisted_.at(shard).store(frontier);
    backend_->on_persisted(shard, frontier);
  };
  callbacks.stopped = [this](const std::string& reason) {
    if (!leaving_.load()) logger("node")->error("the group stopped: {}", reason);
    std::lock_guard lock(mutex_);
    stopped_reason_ = reason;
  };
  auto machines = [this](ShardId shard) -> core::StateMachine& {
    return *replicas_.at(shard);
  };
  auto group = core::GroupNode::start(config_, machines, callbacks);
  if (!group) return group.status().with_context("group");
  group_ = std::move(group).value();
  port_->attach(group_.get());
  return Status::ok();
}

void Node::record_placement(const core::View& view) {
  std::vector<std::optional<RemoteShard>> placement;
  for (std::uint32_t i = 0; i < config_.layout.shards; ++i) {
    const ShardId shard{i};
    if (shard.value < view.layout().shards && view.shard_rank(shard, config_.node.id)) {
      placement.emplace_back();
    } else {
      placement.push_back(RemoteShard{shard, rest_addresses_in(view, shard, config_.node.id)});
    }
  }
  std::vector<bool> served;
  for (const std::optional<RemoteShard>& entry : placement) served.push_back(!entry);
  {
    std::lock_guard lock(placement_mutex_);
    placement_ = std::move(placement);
  }
  // After the placement: a watch placed before it is dropped here, one placed after it
  // takes the shard from a member (server/watch_stream.cpp). A shard left while this node
  // keeps running gets no events here any more: its streams end, with their cursors.
  for (std::uint32_t i = 0; i < served.size(); ++i) {
    Status set = hub_->set_serving(ShardId{i}, served[i]);
    SQUALL_ASSERT(set.is_ok(), "shard {}: {}", i, set.to_string());
  }
}

WatchPlacement Node::watch_placement(const kvstore::Topic& topic) const {
  std::vector<ShardId> shards;
  if (topic.is_prefix()) {
    for (std::uint32_t i = 0; i < config_.layout.shards; ++i) shards.push_back(ShardId{i});
  } else {
    shards.push_back(kvstore::shard_for_key(config_.layout, topic.text));
  }
  WatchPlacement out;
  std::lock_guard lock(placement_mutex_);
  if (placement_.empty()) return out;  // no view yet: the hub alone
  for (ShardId shard : shards) {
    const std::optional<RemoteShard>& entry = placement_.at(shard.value);
    if (entry) {
      out.remote.push_back(*entry);
    } else {
      out.local.push_back(shard);
    }
  }
  return out;
}

bool Node::ready() const {
  if (!group_ || leaving_.load()) return false;
  const core::GroupStatus status = group_->status();
  return (status.phase == core::GroupPhase::running ||
          status.phase == core::GroupPhase::changing) &&
         status.majority;
}

std::optional<std::string> Node::stopped_reason() const {
  std::lock_guard lock(mutex_);
  return stopped_reason_;
}

Result<ClusterInfo> Node::cluster_info() const {
  const core::GroupStatus status = group_->status();
  ClusterInfo info;
  info.cluster = status.cluster;
  info.self = status.self;
  info.view_id = status.view;
  info.leader = status.leader;
  for (const core::GroupMemberStatus& member : status.members) {
    ClusterMember out;
    out.id = member.member.id;
    out.address = fmt::format("{}:{}", member.member.address.host, member.member.membership_port);
    if (!member.member.rest.host.empty()) out.rest = host_port(member.member.rest);
    out.state = member.suspected ? "suspected" : "active";
    info.members.push_back(std::move(out));
  }
  for (const core::GroupShardStatus& shard : status.shards) {
    info.shards.push_back(ClusterShard{shard.shard, shard.members, shard.delivered_version,
                                       shard.persisted_version});
  }
  return info;
}

void Node::register_gauges() {
  metrics_.gauge_callback("squall_view_id", "Id of the installed view", {},
                          [this] { return static_cast<double>(view_id_.load()); });
  metrics_.gauge_callback("squall_view_members", "Members of the installed view", {},
                          [this] { return static_cast<double>(view_members_.load()); });
  for (auto& [shard, replica] : replicas_) {
    ShardReplica* raw = replica.get();
    const std::atomic<Version>* frontier = &persisted_.at(shard);
    const Labels labels{{"shard", std::to_string(shard.value)}};
    metrics_.gauge_callback(
        "squall_delivered_version", "Last version applied on this replica", labels,
        [raw] { return static_cast<double>(raw->delivered_version()); });
    metrics_.gauge_callback(
        "squall_persisted_version", "The shard's persistence frontier (this node serving it)",
        labels, [frontier] { return static_cast<double>(frontier->load()); });
  }
  metrics_.gauge_callback("squall_requests_in_flight", "Backend requests not yet answered", {},
                          [this] { return static_cast<double>(backend_->in_flight()); });
}

void Node::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  auto log = logger("node");
  leaving_.store(true);
  // Requests in flight get time to finish only while the group runs; once it stopped by
  // itself nothing more can complete them.
  const bool group_running = !stopped_reason().has_value();
  if (backend_) {
    backend_->begin_shutdown();
    const auto deadline = std::chrono::steady_clock::now() + options_.drain_timeout;
    while (group_running && backend_->in_flight() != 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  if (group_) {
    Status left = group_->leave(options_.leave_timeout);
    if (!left.is_ok()) log->warn("leave: {}", left.to_string());
    group_->stop();
  }
  if (backend_) backend_->fail_all();
  if (forwarder_) forwarder_->stop();
  if (rest_) rest_->stop();
  for (auto& [shard, replica] : replicas_) {
    Status flushed = replica->machine().flush();
    if (!flushed.is_ok()) log->error("shard {}: flush: {}", shard, flushed.to_string());
  }
  rest_.reset();
  group_.reset();
  backend_.reset();
  forwarder_.reset();
  replicas_.clear();
  dirs_.clear();
  log->info("node stopped");
}

}  // namespace squall::server
