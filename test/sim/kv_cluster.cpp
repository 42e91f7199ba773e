#include "kv_cluster.hpp"

#include <deque>
#include <limits>
#include <set>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "core/view.hpp"
#include "test/kvstore/kv_test_util.hpp"

namespace squall::sim {

using kvstore::KvCondition;
using kvstore::KvOp;
using kvstore::KvOutcome;
using kvstore::KvResult;
using kvstore::RequestId;

std::string KvSimOptions::describe() const {
  return fmt::format("seed {}: {} nodes, {} clients x {} ops, {} race + {} plain keys, {}, "
                     "window {}, slot {} B, tick {} us, sync every {}, delays {}-{} us, "
                     "spikes {}/M, torn {}/M", seed, nodes, clients, ops_per_client, race_keys,
                     plain_keys, persistent ? "persistent" : "volatile", window,
                     smc_payload_bytes, tick_us, sync_every_updates, min_delay_us, max_delay_us,
                     delay_spike_per_million, torn_write_per_million);
}

KvSimOptions random_kv_options(std::uint64_t seed) {
  fabric::SimRandom random(seed ^ 0x6b76736dULL);
  KvSimOptions options;
  options.seed = seed;
  options.nodes = random.between(3, 5);
  options.clients = random.between(2, 8);
  options.ops_per_client = random.between(10, 40);
  options.race_keys = random.between(1, 3);
  options.plain_keys = random.between(2, 12);
  options.persistent = random.below(4) == 0;
  options.window = static_cast<std::uint32_t>(random.between(1, 8));
  options.smc_payload_bytes = random.between(96, 256);
  options.tick_us = random.between(20, 100);
  options.sync_every_updates = random.between(1, 16);
  options.max_think_us = random.between(0, 500);
  options.max_delay_us = random.between(5, 80);
  options.delay_spike_per_million = random.below(3) == 0 ? 10'000 : 0;
  options.torn_write_per_million = random.below(3) == 0 ? 50'000 : 0;
  return options;
}

namespace {

struct Op {
  std::size_t client = 0;
  KvOp op = KvOp::put;
  KvCondition condition = KvCondition::none;
  Version expected = 0;
  std::string key;
  std::string value;
};

struct Node {
  Node(NodeId node_id, fabric::SimTransport& endpoint, const Clock& clock)
      : id(node_id), transport(&endpoint), hlc(clock) {}
  NodeId id;
  fabric::SimTransport* transport;
  HybridLogicalClock hlc;
  std::unique_ptr<kvstore::testing::TempDir> temp;
  std::unique_ptr<kvstore::Directory> directory;
  std::unique_ptr<kvstore::KvStateMachine> machine;
  std::unique_ptr<core::OrderedGroup> group;
  std::deque<Bytes> backlog;
  std::uint64_t next_sequence = 0;
  std::vector<KvResult> results;  // every result this replica reported, in order
};

struct Client {
  std::size_t done = 0;
  bool waiting = false;
};

class KvSim {
 public:
  explicit KvSim(const KvSimOptions& options);
  KvSimReport run();

 private:
  fabric::SimOptions sim_options() const;
  void build_node(std::size_t index, const core::View& view);
  kvstore::KvStateMachineOptions machine_options() const;
  void tick(std::size_t index);
  void arm_tick(std::size_t index);
  void on_result(std::size_t index, const KvResult& result);
  void issue(std::size_t client);
  Op next_op(std::size_t client, Node& via);
  void acknowledge(const RequestId& request, const KvResult& result);
  bool finished() const;
  void check_replicas();
  void check_races();
  void check_acknowledged();
  void check_transfer();
  std::unique_ptr<kvstore::KvStateMachine> fresh_machine(kvstore::testing::TempDir& temp,
                                                         std::unique_ptr<kvstore::Directory>& dir);
  void violation(std::string what);
  static std::uint64_t key_id(const RequestId& id) {
    return (static_cast<std::uint64_t>(id.origin.value) << 48) | id.sequence;
  }

  KvSimOptions options_;
  fabric::SimNetwork network_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<Client> clients_;
  std::map<std::uint64_t, Op> requests_;          // by key_id(request)
  std::map<std::uint64_t, KvResult> acked_;       // by key_id(request)
  KvSimReport report_;
};

fabric::SimOptions KvSim::sim_options() const {
  fabric::SimOptions sim;
  sim.seed = options_.seed;
  sim.min_delay_us = options_.min_delay_us;
  sim.max_delay_us = options_.max_delay_us;
  sim.delay_spike_per_million = options_.delay_spike_per_million;
  sim.delay_spike_us = 2'000;
  sim.torn_write_per_million = options_.torn_write_per_million;
  return sim;
}

KvSim::KvSim(const KvSimOptions& options)
    : options_(options), network_(sim_options()), clients_(options.clients) {
  std::vector<core::Member> members;
  for (std::size_t i = 0; i < options_.nodes; ++i) {
    NodeId id{static_cast<std::uint32_t>(i + 1)};
    members.push_back({id, {}});
    nodes_.push_back(std::make_unique<Node>(id, network_.add_node(id), network_.clock()));
  }
  core::ShardLayout layout{.shards = 1,
                           .replicas_per_shard = static_cast<std::uint32_t>(options_.nodes)};
  auto view = core::View::make(ViewId{1}, members, layout);
  REQUIRE(view.is_ok());
  for (std::size_t i = 0; i < options_.nodes; ++i) build_node(i, view.value());
  for (auto& node : nodes_) {
    for (auto& peer : nodes_) {
      if (peer != node) REQUIRE(node->transport->add_peer(peer->id, {}).is_ok());
    }
  }
  for (std::size_t i = 0; i < options_.nodes; ++i) arm_tick(i);
}

kvstore::KvStateMachineOptions KvSim::machine_options() const {
  kvstore::KvStateMachineOptions machine;
  config::PoolConfig main_pool;
  main_pool.storage =
      options_.persistent ? config::Storage::persistent : config::Storage::volatile_;
  config::PoolConfig cache;
  cache.prefix = "cache/";
  cache.storage = config::Storage::volatile_;
  machine.pools = {main_pool, cache};
  machine.sync_thread = false;  // deterministic: syncs happen inside the node's step
  machine.sync_every_updates = options_.sync_every_updates;
  machine.limits.max_key_bytes = 64;
  machine.limits.max_value_bytes = 64;
  return machine;
}

void KvSim::build_node(std::size_t index, const core::View& view) {
  Node& node = *nodes_[index];
  if (options_.persistent) {
    node.temp = std::make_unique<kvstore::testing::TempDir>();
    node.directory = kvstore::testing::faulty_dir(node.temp->path());
  }
  kvstore::Directory* directory = node.directory.get();
  auto machine = kvstore::KvStateMachine::open(
      machine_options(),
      [directory](std::size_t, const config::PoolConfig&) -> Result<kvstore::Directory*> {
        return directory;
      },
      network_.clock());
  REQUIRE(machine.is_ok());
  node.machine = std::move(machine).value();
  node.machine->on_result = [this, index](const KvResult& result) { on_result(index, result); };
  core::OrderedGroupOptions group_options = core::shard_group_options(view, ShardId{0}, node.id);
  group_options.sst_region = 1;
  group_options.window = options_.window;
  group_options.smc_payload_bytes = options_.smc_payload_bytes;
  group_options.send_queue_messages = 16;
  group_options.heartbeat_ms = 1;
  group_options.failure_timeout_ms = 100;
  core::OrderedGroupCallbacks callbacks;
  callbacks.suspected = [this, index](NodeId member, const std::string& reason) {
    violation(fmt::format("node {} suspects {}: {}", index, member, reason));
  };
  callbacks.failed = [this, index](const Status& reason) {
    violation(fmt::format("node {} failed: {}", index, reason.to_string()));
  };
  auto group = core::OrderedGroup::create(group_options, *node.transport, *node.machine,
                                          node.hlc, callbacks);
  REQUIRE(group.is_ok());
  node.group = std::move(group).value();
}

void KvSim::arm_tick(std::size_t index) {
  network_.schedule_after(
      options_.tick_us,
      [this, index] {
        tick(index);
        arm_tick(index);
      },
      nodes_[index]->id);
}

void KvSim::tick(std::size_t index) {
  Node& node = *nodes_[index];
  std::vector<fabric::Event> events;
  node.transport->poll(events, 4096);
  for (const fabric::Event& event : events) node.group->handle(event);
  while (!node.backlog.empty()) {
    if (!node.group->send(node.backlog.front())) break;  // would_block: retry next tick
    node.backlog.pop_front();
  }
  node.group->step(network_.now_us());
}

void KvSim::on_result(std::size_t index, const KvResult& result) {
  Node& node = *nodes_[index];
  node.results.push_back(result);
  ++report_.applied;
  if (result.request.origin != node.id) return;
  RequestId request = result.request;
  Status waiting = node.group->wait_persisted(result.version, [this, request, result](
                                                                  const Status& status) {
    if (!status.is_ok()) {
      violation("persistence wait failed: " + status.to_string());
      return;
    }
    acknowledge(request, result);
  });
  if (!waiting.is_ok()) violation("wait_persisted: " + waiting.to_string());
}

void KvSim::acknowledge(const RequestId& request, const KvResult& result) {
  auto op = requests_.find(key_id(request));
  if (op == requests_.end()) {
    violation(fmt::format("result for unknown request {}:{}", request.origin, request.sequence));
    return;
  }
  if (!acked_.emplace(key_id(request), result).second) {
    violation(fmt::format("request {}:{} acknowledged twice", request.origin, request.sequence));
    return;
  }
  ++report_.acknowledged;
  Client& client = clients_[op->second.client];
  client.waiting = false;
  ++client.done;
  if (client.done < options_.ops_per_client) {
    std::size_t which = op->second.client;
    network_.schedule_after(network_.random().between(0, options_.max_think_us),
                            [this, which] { issue(which); });
  }
}

Op KvSim::next_op(std::size_t client, Node& via) {
  fabric::SimRandom& random = network_.random();
  Op op;
  op.client = client;
  op.value = fmt::format("c{}-{}", client, clients_[client].done);
  std::uint64_t kind = random.below(100);
  if (kind < 45) {
    // A race: read the key's current version at the member, then write conditionally.
    op.key = fmt::format("race/{}", random.below(options_.race_keys));
    auto found = via.machine->store_for_key(op.key)->lookup(op.key, kvstore::ReadPoint::latest());
    if (found.outcome == kvstore::Lookup::found) {
      op.condition = KvCondition::if_version;
      op.expected = found.entry.version;
    } else {
      op.condition = KvCondition::if_absent;
    }
    return op;
  }
  op.key = fmt::format("{}{}", random.below(3) == 0 ? "cache/" : "k/",
                       random.below(options_.plain_keys));
  if (kind < 70) return op;
  if (kind < 85) {
    op.op = KvOp::del;
    op.value.clear();
    if (random.below(2) == 0) op.condition = KvCondition::if_exists;
    return op;
  }
  op.condition = random.below(2) == 0 ? KvCondition::if_exists : KvCondition::if_absent;
  return op;
}

void KvSim::issue(std::size_t client) {
  Node& via = *nodes_[network_.random().below(nodes_.size())];
  Op op = next_op(client, via);
  RequestId request{via.id, via.next_sequence++};
  kvstore::KvUpdate update{op.op, op.condition, op.expected, request, op.key,
                           as_bytes(op.value)};
  via.backlog.push_back(kvstore::encode_update(update, machine_options().limits));
  requests_.emplace(key_id(request), std::move(op));
  clients_[client].waiting = true;
  ++report_.requests;
}

bool KvSim::finished() const {
  for (const Client& client : clients_) {
    if (client.done < options_.ops_per_client) return false;
  }
  for (const auto& node : nodes_) {
    if (node->group->persisted_frontier() != node->group->delivered_version()) return false;
    if (node->results.size() != nodes_[0]->results.size()) return false;
  }
  return true;
}

void KvSim::violation(std::string what) {
  if (report_.violations.size() < 10) report_.violations.push_back(std::move(what));
}

KvSimReport KvSim::run() {
  for (std::size_t client = 0; client < clients_.size(); ++client) {
    network_.schedule_after(network_.random().between(0, 200), [this, client] { issue(client); });
  }
  constexpr std::uint64_t kChunkUs = 1'000;
  constexpr std::uint64_t kLimitUs = 5'000'000;
  while (!finished() && network_.elapsed_us() < kLimitUs && report_.violations.empty()) {
    network_.run_for(kChunkUs);
  }
  report_.elapsed_us = network_.elapsed_us();
  if (!finished() && report_.violations.empty()) {
    violation(fmt::format("not quiescent after {} us: {} of {} requests acknowledged",
                          report_.elapsed_us, report_.acknowledged, report_.requests));
  }
  check_replicas();
  check_races();
  check_acknowledged();
  check_transfer();
  return report_;
}

void KvSim::check_replicas() {
  std::set<std::string> key_set;
  for (const auto& [id, op] : requests_) key_set.insert(op.key);
  std::vector<std::string> keys(key_set.begin(), key_set.end());
  const Node& first = *nodes_[0];
  std::string first_dump = kvstore::testing::dump(*first.machine, keys);
  auto first_state = kvstore::testing::latest_state(*first.machine);
  for (std::size_t i = 1; i < nodes_.size(); ++i) {
    const Node& node = *nodes_[i];
    if (node.results != first.results) {
      violation(fmt::format("node {} reported different results than node 0", i));
    }
    if (kvstore::testing::dump(*node.machine, keys) != first_dump ||
        kvstore::testing::latest_state(*node.machine) != first_state) {
      violation(fmt::format("node {} ended with a different state than node 0", i));
    }
  }
}

void KvSim::check_races() {
  std::map<std::pair<std::string, Version>, std::size_t> wins;  // (key, expected) -> winners
  std::map<std::string, std::size_t> creations;
  for (const KvResult& result : nodes_[0]->results) {
    auto found = requests_.find(key_id(result.request));
    if (found == requests_.end() || !found->second.key.starts_with("race/")) continue;
    const Op& op = found->second;
    bool won = result.outcome == KvOutcome::ok || result.outcome == KvOutcome::created;
    (won ? report_.race_wins : report_.race_losses) += 1;
    if (op.condition == KvCondition::if_version) {
      wins[{op.key, op.expected}] += won ? 1 : 0;
    } else {
      creations[op.key] += won ? 1 : 0;
    }
  }
  for (const auto& [race, count] : wins) {
    if (count != 1) {
      violation(fmt::format("{} writes to {} expecting version {} won (exactly 1 must)", count,
                            race.first, race.second));
    }
  }
  for (const auto& [key, count] : creations) {
    if (count != 1) violation(fmt::format("{} if_absent creations of {}", count, key));
  }
}

void KvSim::check_acknowledged() {
  if (acked_.size() != requests_.size()) {
    violation(fmt::format("{} of {} requests acknowledged", acked_.size(), requests_.size()));
  }
  for (const auto& [id, result] : acked_) {
    const Op& op = requests_.at(id);
    bool wrote = result.outcome == KvOutcome::ok || result.outcome == KvOutcome::created;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      const kvstore::Store* store = nodes_[i]->machine->store_for_key(op.key);
      auto found = store->lookup(op.key, kvstore::ReadPoint::at_version(result.version));
      bool present = found.outcome == kvstore::Lookup::found &&
                     found.entry.version == result.version;
      if (present != wrote) {
        violation(fmt::format("node {}: {} of {} at version {} is {}", i,
                              kvstore::name(result.outcome), op.key, result.version,
                              present ? "present" : "missing"));
        continue;
      }
      if (!wrote) continue;
      bool is_put = found.entry.op == kvstore::Op::put;
      if (is_put != (op.op == KvOp::put)) violation(fmt::format("node {}: wrong op", i));
      if (!is_put) continue;
      auto read = store->get(op.key, kvstore::ReadPoint::at_version(result.version));
      if (!read || as_string_view(read->value) != op.value) {
        violation(fmt::format("node {}: wrong value of {} at {}", i, op.key, result.version));
      }
    }
  }
}

std::unique_ptr<kvstore::KvStateMachine> KvSim::fresh_machine(
    kvstore::testing::TempDir& temp, std::unique_ptr<kvstore::Directory>& dir) {
  dir = kvstore::testing::faulty_dir(temp.path());
  kvstore::Directory* raw = dir.get();
  auto machine = kvstore::KvStateMachine::open(
      machine_options(),
      [raw](std::size_t, const config::PoolConfig&) -> Result<kvstore::Directory*> {
        return raw;
      },
      network_.clock());
  REQUIRE(machine.is_ok());
  return std::move(machine).value();
}

// State transfer from node 0: its checkpoint installs to the same latest state, and its whole
// update log installed on an empty checkpoint rebuilds the same histories.
void KvSim::check_transfer() {
  std::set<std::string> key_set;
  for (const auto& [id, op] : requests_) key_set.insert(op.key);
  std::vector<std::string> keys(key_set.begin(), key_set.end());
  kvstore::KvStateMachine& source = *nodes_[0]->machine;
  kvstore::testing::TempDir temp_a;
  kvstore::testing::TempDir temp_b;
  std::unique_ptr<kvstore::Directory> dir_a;
  std::unique_ptr<kvstore::Directory> dir_b;
  auto from_checkpoint = fresh_machine(temp_a, dir_a);
  auto from_log = fresh_machine(temp_b, dir_b);
  auto empty = from_log->make_checkpoint();
  auto checkpoint = source.make_checkpoint();
  auto log = source.read_log(0, std::numeric_limits<std::size_t>::max());
  if (!empty || !checkpoint || !log) {
    violation("checkpoint or read_log failed");
    return;
  }
  if (!from_checkpoint->install(checkpoint.value(), {}).is_ok() ||
      !from_log->install(empty.value(), log.value()).is_ok()) {
    violation("install failed");
    return;
  }
  if (kvstore::testing::latest_state(*from_checkpoint) != kvstore::testing::latest_state(source)) {
    violation("a checkpoint of node 0 installs to a different state");
  }
  if (kvstore::testing::dump(*from_log, keys) != kvstore::testing::dump(source, keys) ||
      from_log->applied_version() != source.applied_version()) {
    violation("node 0's update log installs to a different history");
  }
}

}  // namespace

KvSimReport run_kv_sim(const KvSimOptions& options) {
  KvSim sim(options);
  return sim.run();
}

}  // namespace squall::sim
