// GroupNode: total restart (docs/membership.md, "Total restart"). Nodes whose log ends in a
// view of several members tell those members what they hold (RestartRequest); the
// lowest-ranked member of that view that is up collects the reports and, once
// core::plan_restart() accepts them (a majority of the view, every shard represented),
// installs the restart view and answers every reporter with it and the per-shard sources.
// A member that is running again treats a RestartRequest as a join.
#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <future>
#include <thread>

#include "common/log.hpp"
#include "core/group_node_impl.hpp"

namespace squall::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr milliseconds kRestartRound{300};
constexpr milliseconds kRestartCallTimeout{2000};
constexpr auto kRestartLogPeriod = std::chrono::seconds(5);

std::shared_ptr<spdlog::logger> log() { return logger("group"); }

}  // namespace

// Joiner thread: the report of this node, computed on the progress thread.
Result<RestartRequest> GroupNode::Impl::own_restart_request(const ViewRecord& last) {
  auto promise = std::make_shared<std::promise<Result<RestartRequest>>>();
  auto future = promise->get_future();
  SQUALL_TRY(post_task([this, promise, last] {
    auto view = restore_view(last);
    if (!view.is_ok()) return promise->set_value(view.status());
    RestartRequest request{config_.cluster.name, kMembershipProtocol, self_,
                           encode_view_record(last), {}};
    RestartReport report{self_, view->id(), {}};
    for (ShardId shard : ready_shards_for(*view)) {
      Version applied = machines_(shard).applied_version();
      request.shards.push_back({shard, applied});
      report.applied[shard] = applied;
    }
    restart_last_ = std::move(view).value();
    restart_reports_[self_.id.value] = std::move(report);
    promise->set_value(std::move(request));
  }));
  return future.get();
}

void GroupNode::Impl::restart_loop(const ViewRecord& last) {
  auto request = own_restart_request(last);
  if (!request.is_ok()) return post_halt("restart: " + request.status().to_string());
  std::vector<fabric::PeerAddress> candidates = join_candidates();
  log()->info("restarting: view {} had {} members; waiting for a majority of them",
              last.id.value, last.members.size());
  auto next_log = steady_clock::now();
  while (!stopping_.load()) {
    for (const fabric::PeerAddress& target : candidates) {
      if (stopping_.load()) return;
      if (restart_call(target, *request)) return;
    }
    (void)post_task([this] { try_lead_restart(); });
    if (steady_clock::now() >= next_log) {
      next_log = steady_clock::now() + kRestartLogPeriod;
      std::lock_guard lock(mutex_);
      log()->info("restart: still waiting ({})", restart_waiting_for_);
    }
    std::this_thread::sleep_for(kRestartRound);
    std::lock_guard lock(mutex_);
    if (status_.phase != GroupPhase::joining) return;
  }
}

// One RestartRequest to `target`, following one redirect. True once this node has a view.
bool GroupNode::Impl::restart_call(fabric::PeerAddress target, const RestartRequest& request) {
  for (int hop = 0; hop < 2; ++hop) {
    auto reply =
        membership_call(target.host, target.port, request, kRestartCallTimeout, secret_);
    if (reply.status().code() == Code::corruption) {
      post_halt(fmt::format("restart via {}:{}: {}", target.host, target.port,
                            reply.status().message()));
      return true;
    }
    if (!reply.is_ok()) return false;
    if (auto* accepted = std::get_if<JoinAccepted>(&*reply)) {
      accept_join(*accepted);
      return true;
    }
    if (auto* refused = std::get_if<Refused>(&*reply)) {
      post_halt(fmt::format("restart refused by {}:{}: {}", target.host, target.port,
                            refused->reason));
      return true;
    }
    auto* redirect = std::get_if<Redirect>(&*reply);
    if (redirect == nullptr) return false;
    target = fabric::PeerAddress{redirect->host, redirect->port};
  }
  return false;
}

// Progress thread: a RestartRequest arrived.
void GroupNode::Impl::on_restart(const RestartRequest& request,
                                 const MembershipService::Reply& reply) {
  if (manager_) {
    if (restart_view_ && manager_->view().id() == restart_view_->id() &&
        manager_->view().contains(request.member.id)) {
      reply(restart_acceptance());
      return;
    }
    on_join(JoinRequest{request.cluster, request.protocol, request.member}, reply);
    return;
  }
  if (request.cluster != config_.cluster.name || request.protocol != kMembershipProtocol) {
    on_join(JoinRequest{request.cluster, request.protocol, request.member}, reply);
    return;
  }
  auto record = decode_view_record(request.last_view);
  if (!record.is_ok()) {
    reply(Refused{"restart request: " + record.status().to_string()});
    return;
  }
  RestartReport report{request.member, record->id, {}};
  for (const ShardProgress& shard : request.shards) report.applied[shard.shard] = shard.applied;
  restart_reports_[request.member.id.value] = std::move(report);
  try_lead_restart();
  if (manager_ && restart_view_ && restart_view_->contains(request.member.id)) {
    reply(restart_acceptance());
  } else {
    reply(Retry{restart_last_ ? "restart: " + restart_waiting_for_
                              : std::string("this node is not in a view yet")});
  }
}

JoinAccepted GroupNode::Impl::restart_acceptance() const {
  JoinAccepted accepted;
  accepted.view = encode_view_record(ViewRecord::of(*restart_view_));
  accepted.previous = encode_view_record(ViewRecord::of(*restart_last_));
  for (const auto& [shard, source] : restart_sources_) accepted.sources.push_back({shard, source});
  return accepted;
}

// Progress thread: leads the restart when this node is the lowest-ranked member of the last
// view among those that reported, and the reports suffice.
void GroupNode::Impl::try_lead_restart() {
  if (manager_ || stopped_ || !restart_last_) return;
  const View& last = *restart_last_;
  std::size_t my_rank = *last.rank_of(self_.id);
  std::vector<RestartReport> reports;
  for (const auto& [id, report] : restart_reports_) {
    auto rank = last.rank_of(report.member.id);
    if (rank && *rank < my_rank) {
      set_waiting(fmt::format("node {} leads the restart", report.member.id.value));
      return;
    }
    reports.push_back(report);
  }
  std::optional<View> before;
  if (auto record = log_->view_before(last.id())) {
    auto view = restore_view(*record);
    if (view.is_ok()) before = std::move(view).value();
  }
  auto plan = plan_restart(last, reports, before ? &*before : nullptr);
  if (!plan.is_ok()) {
    set_waiting(plan.status().message());
    return;
  }
  log()->info("leading the restart: view {} with {} member(s)", plan->view.id().value,
              plan->view.size());
  restart_view_ = plan->view;
  restart_sources_ = plan->sources;
  Status installed = install_first(plan->view, last, plan->sources);
  if (!installed.is_ok()) halt("cannot install the restart view: " + installed.to_string());
}

namespace {

std::string ready_path(const config::Config& config) { return config.node.data_dir + "/ready"; }

// "view <id>" then "shard <id>" lines; a missing or unreadable file reads as view 0.
std::pair<std::uint32_t, std::vector<ShardId>> read_ready(const std::string& path) {
  std::ifstream in(path);
  std::string word;
  std::uint32_t view = 0;
  std::vector<ShardId> shards;
  if (!(in >> word >> view) || word != "view") return {0, {}};
  std::uint32_t shard = 0;
  while (in >> word >> shard && word == "shard") shards.push_back(ShardId{shard});
  return {view, shards};
}

Status write_durably(const std::string& path, const std::string& text) {
  std::string temporary = path + ".tmp";
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return io_error(fmt::format("{}: {}", temporary, std::strerror(errno)));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(temporary.c_str(), path.c_str()) != 0) {
    return io_error(fmt::format("{}: {}", path, std::strerror(errno)));
  }
  std::string dir = path.substr(0, path.find_last_of('/'));
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    (void)::fsync(dir_fd);
    ::close(dir_fd);
  }
  return Status::ok();
}

}  // namespace

// Progress thread, after each step: records durably which shards hold their state in the
// current view, whenever that changes (a view change, a finished state transfer).
void GroupNode::Impl::record_readiness() {
  const View& view = manager_->view();
  std::vector<ShardId> ready;
  for (ShardId shard : view.shards_of(self_.id)) {
    if (manager_->shard_ready(shard)) ready.push_back(shard);
  }
  if (view.id().value == ready_view_ && ready == ready_shards_) return;
  std::string text = fmt::format("view {}\n", view.id().value);
  for (ShardId shard : ready) text += fmt::format("shard {}\n", shard.value);
  Status written = write_durably(ready_path(config_), text);
  if (!written.is_ok()) {
    log()->error("cannot record shard readiness: {}", written.to_string());
    return;
  }
  ready_view_ = view.id().value;
  ready_shards_ = std::move(ready);
}

// The shards this node may represent in a restart from `last`: those recorded ready in
// `last`, or — if the record is older (a crash right after installing `last`) — those ready
// in the recorded view that it kept serving in `last` (a replica keeps its state across views).
std::vector<ShardId> GroupNode::Impl::ready_shards_for(const View& last) const {
  auto [view, shards] = read_ready(ready_path(config_));
  std::vector<ShardId> served = last.shards_of(self_.id);
  std::vector<ShardId> out;
  if (view > last.id().value) return out;
  for (ShardId shard : shards) {
    if (std::find(served.begin(), served.end(), shard) != served.end()) out.push_back(shard);
  }
  return out;
}

void GroupNode::Impl::set_waiting(std::string why) {
  std::lock_guard lock(mutex_);
  restart_waiting_for_ = std::move(why);
}

}  // namespace squall::core
