// GroupNode: founding, joining and leaving (core/group_node.hpp), and the membership service
// that answers joiners and leavers.
#include <fmt/format.h>

#include <chrono>
#include <future>
#include <thread>

#include "common/log.hpp"
#include "core/group_node_impl.hpp"

namespace squall::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr milliseconds kRetryPause{250};
constexpr milliseconds kUnreachablePause{200};

std::shared_ptr<spdlog::logger> log() { return logger("group"); }

ShardLayout layout_of(const config::Config& config) {
  return ShardLayout{config.layout.shards, config.layout.replicas_per_shard};
}

// Sleeps up to `duration`, waking early when the node stops.
void pause(const std::atomic<bool>& stopping, milliseconds duration) {
  auto until = steady_clock::now() + duration;
  while (!stopping.load() && steady_clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(10));
  }
}

Result<View> view_from(const Bytes& encoded) {
  auto record = decode_view_record(encoded);
  if (!record.is_ok()) return record.status();
  return restore_view(*record);
}

}  // namespace

Status GroupNode::Impl::start_membership_service() {
  MembershipServiceOptions options;
  options.host = config_.node.address;
  options.port = config_.ports.membership;
  options.reply_timeout_ms = config_.timeouts.join_timeout_ms;
  options.secret = secret_;
  auto service = MembershipService::start(
      options, [this](MembershipMessage request, MembershipService::Reply reply) {
        on_request(std::move(request), std::move(reply));
      });
  if (!service.is_ok()) return service.status();
  service_ = std::move(service).value();
  return Status::ok();
}

bool GroupNode::Impl::is_contact_self() const {
  return config_.contact_address() == config_.node.address &&
         config_.contact_port() == config_.ports.membership;
}

std::vector<fabric::PeerAddress> GroupNode::Impl::join_candidates() const {
  std::vector<fabric::PeerAddress> candidates;
  if (!is_contact_self()) {
    candidates.push_back({config_.contact_address(), config_.contact_port()});
  }
  if (auto last = log_->last_view()) {
    for (const Member& member : last->members) {
      if (member.id == self_.id || member.membership_port == 0) continue;
      candidates.push_back({member.address.host, member.membership_port});
    }
  }
  return candidates;
}

// On the joiner thread: decide how this node enters the group.
void GroupNode::Impl::begin() {
  std::optional<ViewRecord> last = log_->last_view();
  if (!last && is_contact_self()) {
    log()->info("founding cluster '{}' (empty view log, contact is this node)",
                config_.cluster.name);
    auto first = View::make(ViewId{1}, {self_}, layout_of(config_));
    if (!first.is_ok()) return (void)post_halt(first.status().to_string());
    View view = std::move(first).value();
    (void)post_task([this, view] {
      Status installed = install_first(view, std::nullopt);
      if (!installed.is_ok()) halt("cannot found the group: " + installed.to_string());
    });
    return;
  }
  if (last && last->members.size() == 1 && last->members.front().id == self_.id) {
    auto previous = restore_view(*last);
    if (!previous.is_ok()) return (void)post_halt("view log: " + previous.status().to_string());
    auto next = View::make(ViewId{last->id.value + 1}, {self_}, layout_of(config_), &*previous);
    if (!next.is_ok()) return (void)post_halt(next.status().to_string());
    log()->info("restarting alone: this node was the only member of view {}", last->id.value);
    View view = std::move(next).value();
    View before = std::move(previous).value();
    (void)post_task([this, view, before] {
      Status installed = install_first(view, before);
      if (!installed.is_ok()) halt("cannot restart: " + installed.to_string());
    });
    return;
  }
  if (last && last->members.size() > 1) return restart_loop(*last);
  join_loop();
}

void GroupNode::Impl::join_loop() {
  std::vector<fabric::PeerAddress> candidates = join_candidates();
  if (candidates.empty()) {
    post_halt("nothing to join: the contact is this node and no other member is known");
    return;
  }
  auto deadline = steady_clock::now() + milliseconds(config_.timeouts.join_timeout_ms);
  std::optional<fabric::PeerAddress> redirect;
  std::size_t next = 0;
  std::string last_problem = "no answer";
  JoinRequest request{config_.cluster.name, kMembershipProtocol, self_};
  while (!stopping_.load() && steady_clock::now() < deadline) {
    fabric::PeerAddress target = redirect ? *redirect : candidates[next++ % candidates.size()];
    redirect.reset();
    auto reply = membership_call(target.host, target.port, request,
                                 milliseconds(config_.timeouts.join_timeout_ms), secret_);
    if (reply.status().code() == Code::corruption) {
      post_halt(fmt::format("join via {}:{}: {}", target.host, target.port,
                            reply.status().message()));
      return;
    }
    if (!reply.is_ok()) {
      last_problem = reply.status().to_string();
      log()->debug("join via {}:{}: {}", target.host, target.port, last_problem);
      pause(stopping_, kUnreachablePause);
      continue;
    }
    if (auto* to = std::get_if<Redirect>(&*reply)) {
      redirect = fabric::PeerAddress{to->host, to->port};
      continue;
    }
    if (auto* retry = std::get_if<Retry>(&*reply)) {
      last_problem = retry->reason;
      log()->info("join via {}:{}: retrying ({})", target.host, target.port, retry->reason);
      pause(stopping_, kRetryPause);
      continue;
    }
    if (auto* refused = std::get_if<Refused>(&*reply)) {
      post_halt(fmt::format("join refused by {}:{}: {}", target.host, target.port,
                            refused->reason));
      return;
    }
    if (auto* accepted = std::get_if<JoinAccepted>(&*reply)) {
      accept_join(*accepted);
      return;
    }
    last_problem = "unexpected reply to a join request";
  }
  if (!stopping_.load()) {
    post_halt(fmt::format("could not join within {} ms: {}", config_.timeouts.join_timeout_ms,
                          last_problem));
  }
}

void GroupNode::Impl::accept_join(const JoinAccepted& accepted) {
  auto view = view_from(accepted.view);
  if (!view.is_ok()) return post_halt("join reply: " + view.status().to_string());
  std::optional<View> previous;
  if (!accepted.previous.empty()) {
    auto before = view_from(accepted.previous);
    if (!before.is_ok()) return post_halt("join reply: " + before.status().to_string());
    previous = std::move(before).value();
  }
  if (!view->contains(self_.id)) return post_halt("join reply: a view without this node");
  log()->info("admitted in view {} ({} members)", view->id().value, view->size());
  View first = std::move(view).value();
  std::map<ShardId, NodeId> sources;
  for (const ShardSource& source : accepted.sources) sources[source.shard] = source.source;
  (void)post_task([this, first, previous, sources] {
    if (manager_) return;  // the restart leader installed on its own meanwhile
    Status installed = install_first(first, previous, sources);
    if (!installed.is_ok()) halt("cannot install the admitting view: " + installed.to_string());
  });
}

Status GroupNode::Impl::post_task(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_.load()) return unavailable("the group node is stopped");
    tasks_.push_back(std::move(task));
  }
  wake_.notify_one();
  return Status::ok();
}

void GroupNode::Impl::post_halt(const std::string& reason) {
  (void)post_task([this, reason] { halt(reason); });
}

// ---- the leader's side ----

void GroupNode::Impl::on_request(MembershipMessage request, MembershipService::Reply reply) {
  Status posted = post_task([this, request = std::move(request), reply]() mutable {
    if (auto* join = std::get_if<JoinRequest>(&request)) return on_join(*join, reply);
    if (auto* leave = std::get_if<LeaveRequest>(&request)) return on_leave(*leave, reply);
    if (auto* restart = std::get_if<RestartRequest>(&request)) return on_restart(*restart, reply);
    reply(Refused{"not a request"});
  });
  if (!posted.is_ok()) reply(Retry{"this node is stopping"});
}

// Common checks of a join or leave request; returns true when it was answered.
bool GroupNode::Impl::answer_if_not_leader(const std::string& cluster,
                                           const MembershipService::Reply& reply) {
  if (cluster != config_.cluster.name) {
    log()->warn("refused a request for cluster '{}' (this is '{}')", cluster,
                config_.cluster.name);
    reply(Refused{fmt::format("this node belongs to cluster '{}', not '{}'",
                              config_.cluster.name, cluster)});
    return true;
  }
  if (stopped_) {
    reply(Retry{"the contacted node has left the group"});
    return true;
  }
  if (!manager_) {
    reply(Retry{"the contacted node is not in a view yet"});
    return true;
  }
  const View& view = manager_->view();
  const Member& leader = view.member(manager_->membership().leader_rank());
  if (leader.id == self_.id) return false;
  if (leader.membership_port == 0) {
    reply(Retry{"the leader's membership port is unknown"});
  } else {
    reply(Redirect{leader.address.host, leader.membership_port});
  }
  return true;
}

void GroupNode::Impl::on_join(const JoinRequest& request, const MembershipService::Reply& reply) {
  if (request.protocol != kMembershipProtocol) {
    log()->warn("refused node {}: membership protocol {} (this build speaks {})",
                request.member.id.value, request.protocol, kMembershipProtocol);
    reply(Refused{fmt::format("membership protocol {} is not this build's {}", request.protocol,
                              kMembershipProtocol)});
    return;
  }
  if (answer_if_not_leader(request.cluster, reply)) return;
  NodeId joiner = request.member.id;
  Status queued = manager_->request_join(request.member);
  if (queued.code() == Code::already_exists) {
    manager_->request_removal(joiner, "asked to join again (restarted)");
    reply(Retry{fmt::format("node {} is still a member; removing the old incarnation first",
                            joiner.value)});
    return;
  }
  if (queued.code() == Code::invalid_argument) {
    log()->warn("refused node {}: {}", joiner.value, queued.message());
    reply(Refused{queued.message()});
    return;
  }
  if (!queued.is_ok()) {
    reply(Retry{queued.message()});
    return;
  }
  log()->info("node {} asks to join: queued for the next view", joiner.value);
  auto [slot, inserted] = pending_joins_.try_emplace(joiner.value, reply);
  if (!inserted) {
    slot->second(Retry{"superseded by a newer request"});
    slot->second = reply;
  }
}

void GroupNode::Impl::on_leave(const LeaveRequest& request,
                               const MembershipService::Reply& reply) {
  if (answer_if_not_leader(request.cluster, reply)) return;
  if (manager_->view().contains(request.node)) {
    log()->info("node {} leaves the group", request.node.value);
    manager_->request_removal(request.node, "left the group");
  }
  reply(LeaveDone{});
}

void GroupNode::Impl::answer_joiners(const View& view) {
  for (auto it = pending_joins_.begin(); it != pending_joins_.end();) {
    if (!view.contains(NodeId{it->first})) {
      ++it;
      continue;
    }
    JoinAccepted accepted;
    accepted.view = encode_view_record(ViewRecord::of(view));
    if (previous_view_) accepted.previous = encode_view_record(ViewRecord::of(*previous_view_));
    it->second(accepted);
    it = pending_joins_.erase(it);
  }
}

// ---- leaving ----

Status GroupNode::leave(std::chrono::milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  // Asked on the progress thread, after any install already queued there (the admitting
  // view of a joiner is announced before its manager exists).
  auto members = std::make_shared<std::promise<std::size_t>>();
  std::future<std::size_t> answer = members->get_future();
  Status posted = post([this, members] {
    bool in_view = impl_->manager_ && !impl_->stopped_;
    members->set_value(in_view ? impl_->manager_->view().size() : 0);
  });
  std::size_t size = 0;
  if (posted.is_ok() && answer.wait_until(deadline) == std::future_status::ready) {
    size = answer.get();
  }
  if (size == 0) {
    stop();
    return Status::ok();
  }
  if (size == 1) {
    log()->info("leaving: this node is the group's only member; stopping");
    stop();
    return Status::ok();
  }
  std::optional<fabric::PeerAddress> target;
  bool proposed = false;
  while (steady_clock::now() < deadline && status().phase != GroupPhase::stopped) {
    if (!proposed) proposed = impl_->propose_leave(target, deadline);
    pause(impl_->stopping_, milliseconds(20));
  }
  bool left = status().phase == GroupPhase::stopped;
  stop();
  if (!left) {
    return Status(Code::timed_out, "leave: no view without this node was installed in time");
  }
  return Status::ok();
}

// One attempt to get this node's removal proposed; true once the leader accepted it.
bool GroupNode::Impl::propose_leave(std::optional<fabric::PeerAddress>& target,
                                    steady_clock::time_point deadline) {
  GroupStatus now;
  {
    std::lock_guard lock(mutex_);
    now = status_;
  }
  if (now.leader == self_.id) {
    (void)post_task([this] {
      if (manager_) manager_->request_removal(self_.id, "left the group");
    });
    return true;
  }
  if (!target) {
    for (const auto& entry : now.members) {
      if (entry.member.id == now.leader && entry.member.membership_port != 0) {
        target = fabric::PeerAddress{entry.member.address.host, entry.member.membership_port};
      }
    }
    if (!target) return false;
  }
  auto remaining = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
  auto reply = membership_call(target->host, target->port,
                               LeaveRequest{config_.cluster.name, self_.id},
                               std::max(remaining, milliseconds(1)), secret_);
  if (reply.is_ok()) {
    if (std::holds_alternative<LeaveDone>(*reply)) return true;
    if (auto* to = std::get_if<Redirect>(&*reply)) {
      target = fabric::PeerAddress{to->host, to->port};
      return false;
    }
  }
  target.reset();
  pause(stopping_, kRetryPause);
  return false;
}

}  // namespace squall::core
