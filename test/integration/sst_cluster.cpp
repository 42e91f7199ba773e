#include "sst_cluster.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <chrono>

#include <fmt/format.h>

namespace squall::integration {

std::uint64_t monotonic_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

std::uint64_t monotonic_us() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

namespace {

std::string join_ids(const std::vector<std::uint32_t>& ids) {
  std::string text;
  for (std::uint32_t id : ids) text += (text.empty() ? "" : ",") + std::to_string(id);
  return text;
}

}  // namespace

Result<std::unique_ptr<Cluster>> Cluster::start(const ClusterOptions& options) {
  std::unique_ptr<Cluster> cluster(new Cluster(options));
  for (std::uint32_t id : options.ids) {
    std::vector<std::string> argv = {options.program, "--id", std::to_string(id), "--members",
                                     join_ids(options.ids)};
    argv.insert(argv.end(), options.common_args.begin(), options.common_args.end());
    auto process = ChildProcess::spawn(argv);
    if (!process.is_ok()) return process.status();
    cluster->nodes_.push_back(Node{std::move(process).value(), {}, false});
  }
  std::uint64_t deadline = monotonic_ms() + options.start_timeout_ms;
  SQUALL_TRY(cluster->port_exchange(deadline));
  for (std::size_t index = 0; index < cluster->size(); ++index) {
    std::uint64_t now = monotonic_ms();
    auto ready = cluster->wait_event(index, "ready", deadline > now ? deadline - now : 0);
    if (!ready.is_ok()) {
      return ready.status().with_context(fmt::format("node {} start", cluster->id(index)));
    }
  }
  return cluster;
}

Status Cluster::port_exchange(std::uint64_t deadline_ms) {
  std::string peers = "PEERS";
  for (std::size_t index = 0; index < size(); ++index) {
    std::uint64_t now = monotonic_ms();
    auto port = wait_event(index, "port", deadline_ms > now ? deadline_ms - now : 0);
    if (!port.is_ok()) return port.status().with_context(fmt::format("node {}", id(index)));
    peers += fmt::format(" {}:{}", id(index), (*port)["port"].get<std::uint32_t>());
  }
  for (Node& node : nodes_) SQUALL_TRY(node.process->write_line(peers));
  return Status::ok();
}

Status Cluster::go() {
  for (Node& node : nodes_) {
    if (!node.killed) SQUALL_TRY(node.process->write_line("GO"));
  }
  return Status::ok();
}

Status Cluster::collect(std::uint64_t wait_ms) {
  std::vector<int> fds;
  for (Node& node : nodes_) {
    if (!node.process->output_closed()) fds.push_back(node.process->stdout_fd());
  }
  if (fds.empty()) return Status::ok();
  wait_readable(fds, wait_ms);
  for (std::size_t index = 0; index < size(); ++index) {
    Node& node = nodes_[index];
    while (auto line = node.process->try_read_line()) {
      auto parsed = nlohmann::json::parse(*line, nullptr, false);
      if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("event")) {
        return corruption(fmt::format("node {} printed a non-event line: {}", id(index), *line));
      }
      node.events.push_back(std::move(parsed));
    }
  }
  return Status::ok();
}

Result<nlohmann::json> Cluster::wait_event(std::size_t index, const std::string& name,
                                           std::uint64_t timeout_ms, const Filter& filter) {
  std::uint64_t deadline = monotonic_ms() + timeout_ms;
  std::size_t seen = 0;
  while (true) {
    const std::vector<nlohmann::json>& events = nodes_.at(index).events;
    for (; seen < events.size(); ++seen) {
      const nlohmann::json& event = events[seen];
      std::string kind = event["event"].get<std::string>();
      if (kind == "error") {
        return corruption(fmt::format("node {}: {}", id(index), event.value("what", "?")));
      }
      if (kind == name && (!filter || filter(event))) return event;
    }
    if (nodes_[index].process->output_closed()) {
      nodes_[index].process->wait_exit(1000);
      return unavailable(fmt::format("node {} ended ({}) before a '{}' event", id(index),
                                     nodes_[index].process->describe_exit(), name));
    }
    std::uint64_t now = monotonic_ms();
    if (now >= deadline) {
      return Status{Code::timed_out,
                    fmt::format("node {}: no '{}' event in {} ms", id(index), name, timeout_ms)};
    }
    SQUALL_TRY(collect(std::min<std::uint64_t>(deadline - now, 100)));
  }
}

void Cluster::signal(std::size_t index, int signal_number) {
  Node& node = nodes_.at(index);
  if (signal_number == SIGKILL) node.killed = true;
  node.process->signal(signal_number);
  if (signal_number == SIGKILL) node.process->wait_exit(5000);
}

Status Cluster::stop(std::uint64_t timeout_ms) {
  for (Node& node : nodes_) {
    if (!node.killed) (void)node.process->write_line("EXIT");
  }
  std::uint64_t deadline = monotonic_ms() + timeout_ms;
  std::string unclean;
  for (std::size_t index = 0; index < size(); ++index) {
    Node& node = nodes_[index];
    std::uint64_t now = monotonic_ms();
    auto status = node.process->wait_exit(deadline > now ? deadline - now : 0);
    if (!status) {
      node.process->signal(SIGKILL);
      node.process->wait_exit(5000);
    }
    // Keep what the node printed last (its bye line) for the caller.
    (void)collect(0);
    bool clean = status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
    if (!node.killed && !clean) {
      unclean += fmt::format(" node {} ({})", id(index), node.process->describe_exit());
    }
  }
  if (!unclean.empty()) return unavailable("did not exit cleanly:" + unclean);
  return Status::ok();
}

}  // namespace squall::integration
