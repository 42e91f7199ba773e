#include "group_cluster.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace squall::testing {
namespace {

std::uint16_t pick_base_port() {
  // Distinct ranges per process so tests may run in parallel: 20 ports per node, 8 nodes;
  // below Linux's ephemeral range (32768+), where outgoing connections take their ports.
  auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  std::uint64_t slot = (static_cast<std::uint64_t>(::getpid()) * 7919 +
                        static_cast<std::uint64_t>(now)) % 75;
  return static_cast<std::uint16_t>(20000 + slot * 160);
}

// SQUALL_TEST_LOG=info (for instance) shows the nodes' logs; warn by default.
std::string log_level() {
  const char* level = std::getenv("SQUALL_TEST_LOG");
  return level != nullptr ? level : "warn";
}

}  // namespace

GroupCluster::GroupCluster(std::string extra) : extra_(std::move(extra)) {
  char pattern[] = "/tmp/squall-group-XXXXXX";
  root_ = ::mkdtemp(pattern);
  base_port_ = pick_base_port();
}

GroupCluster::~GroupCluster() {
  processes_.clear();
  std::error_code ignored;
  std::filesystem::remove_all(root_, ignored);
}

std::string GroupCluster::render(std::uint32_t id, const std::string& cluster_name,
                                 const std::string& secret) const {
  std::uint16_t base = static_cast<std::uint16_t>(base_port_ + 20 * id);
  std::string secret_line;
  if (!secret.empty()) {
    std::string path = fmt::format("{}/secret{}", root_, id);
    std::ofstream(path) << secret << "\n";
    secret_line = fmt::format("  secret_file: \"{}\"\n", path);
  }
  return fmt::format(
      "cluster:\n  name: {}\n{}node:\n  id: {}\n  data_dir: \"{}/node{}\"\n"
      "  address: 127.0.0.1\ncontact:\n  address: 127.0.0.1\n  port: {}\n"
      "ports:\n  membership: {}\n  state_transfer: {}\n  fabric: {}\n"
      "timeouts:\n  heartbeat_ms: 20\n  failure_timeout_ms: 1000\n  join_timeout_ms: 20000\n"
      "rest:\n  listen: \"127.0.0.1:{}\"\nlogging:\n  level: {}\n{}",
      cluster_name, secret_line, id, root_, id, base_port_, base, base + 1, base + 2, base + 3, log_level(), extra_);
}

void GroupCluster::start(std::uint32_t id, const std::string& cluster_name,
                         const std::string& secret) {
  std::string path = fmt::format("{}/node{}.yaml", root_, id);
  std::ofstream(path) << render(id, cluster_name, secret);
  auto child = integration::ChildProcess::spawn({SQUALL_GROUP_NODE_PATH, "--config", path});
  if (!child.is_ok()) throw std::runtime_error(child.status().to_string());
  processes_[id] = std::move(child).value();
  states_[id] = NodeState{};
}

void GroupCluster::kill(std::uint32_t id, int signal_number) {
  processes_.at(id)->signal(signal_number);
  if (signal_number == SIGKILL) {
    (void)processes_.at(id)->wait_exit(5000);
    processes_.erase(id);
  }
}

void GroupCluster::kill_all(const std::vector<std::uint32_t>& ids) {
  for (std::uint32_t id : ids) processes_.at(id)->signal(SIGKILL);
  for (std::uint32_t id : ids) {
    (void)processes_.at(id)->wait_exit(5000);
    processes_.erase(id);
  }
}

bool GroupCluster::running(std::uint32_t id) const { return processes_.contains(id); }

void GroupCluster::command(std::uint32_t id, const std::string& line) {
  (void)processes_.at(id)->write_line(line);
}

void GroupCluster::consume(std::uint32_t id, const std::string& line) {
  lines_[id].push_back(line);
  if (std::getenv("SQUALL_TEST_LOG") != nullptr) std::fprintf(stderr, "node %u: %s\n", id, line.c_str());
  std::istringstream in(line);
  std::string verb;
  in >> verb;
  if (verb == "VIEW") {
    std::string members;
    in >> states_[id].view >> members;
    states_[id].members.clear();
    std::istringstream list(members);
    std::string item;
    while (std::getline(list, item, ',')) {
      states_[id].members.push_back(static_cast<std::uint32_t>(std::stoul(item)));
    }
  } else if (verb == "STOPPED") {
    states_[id].stopped = line.substr(8);
  } else if (verb == "STATUS") {
    std::string phase;
    std::uint32_t view = 0;
    std::uint32_t leader = 0;
    std::size_t members = 0;
    in >> phase >> view >> leader >> members >> states_[id].voter_stage;
  } else if (verb == "LOG") {
    last_log_[id] = line;
  }
}

void GroupCluster::drain(std::uint64_t wait_ms) {
  std::vector<int> fds;
  for (auto& [id, child] : processes_) fds.push_back(child->stdout_fd());
  integration::wait_readable(fds, wait_ms);
  for (auto& [id, child] : processes_) {
    while (auto line = child->try_read_line()) consume(id, *line);
  }
}

bool GroupCluster::await_view(const std::vector<std::uint32_t>& nodes,
                              const std::vector<std::uint32_t>& members,
                              std::uint64_t timeout_ms) {
  std::vector<std::uint32_t> wanted = members;
  std::sort(wanted.begin(), wanted.end());
  return await(
      [&] {
        for (std::uint32_t id : nodes) {
          std::vector<std::uint32_t> have = states_[id].members;
          std::sort(have.begin(), have.end());
          if (have != wanted) return false;
        }
        return true;
      },
      timeout_ms);
}

std::map<std::uint32_t, std::string> GroupCluster::await_logs(
    const std::vector<std::uint32_t>& nodes, std::uint32_t shard, std::size_t entries,
    std::uint64_t timeout_ms) {
  auto entries_of = [](const std::string& line) {
    std::istringstream in(line);
    std::string verb;
    std::size_t shard_field = 0;
    std::size_t count = 0;
    in >> verb >> shard_field >> count;
    return count;
  };
  std::uint64_t waited = 0;
  while (true) {
    for (std::uint32_t id : nodes) {
      last_log_.erase(id);
      command(id, fmt::format("log {}", shard));
    }
    await([&] {
      for (std::uint32_t id : nodes) {
        if (!last_log_.contains(id)) return false;
      }
      return true;
    }, 5000);
    bool all = true;
    for (std::uint32_t id : nodes) {
      all = all && last_log_.contains(id) && entries_of(last_log_[id]) >= entries;
    }
    if (all || waited >= timeout_ms) break;
    drain(100);
    waited += 100;
  }
  std::map<std::uint32_t, std::string> logs;
  for (std::uint32_t id : nodes) logs[id] = last_log_[id];
  return logs;
}

bool GroupCluster::await_all_voters(const std::vector<std::uint32_t>& nodes,
                                    std::uint64_t timeout_ms) {
  for (std::uint64_t waited = 0; waited < timeout_ms; waited += 100) {
    for (std::uint32_t id : nodes) states_[id].voter_stage = 0;
    for (std::uint32_t id : nodes) command(id, "status");
    bool all = await(
        [&] {
          for (std::uint32_t id : nodes) {
            if (states_[id].voter_stage != 2) return false;
          }
          return true;
        },
        100);
    if (all) return true;
  }
  return false;
}

std::vector<std::string> GroupCluster::lines(std::uint32_t id) const {
  auto found = lines_.find(id);
  return found == lines_.end() ? std::vector<std::string>{} : found->second;
}

}  // namespace squall::testing
