// group_node_program: one GroupNode with a FileLogMachine per shard, driven over stdin/stdout
// by the multi-process group tests (group_cluster_test.cpp).
//
//   group_node_program --config FILE [--set key=value]...
// stdin, one command per line:
//   send <shard> <count>   queue <count> updates (16 bytes each) for the shard
//   log <shard>            print "LOG <shard> <entries> <checksum> <applied>"
//   status                 print "STATUS <phase> <view> <leader> <members> <voter stage>"
//   leave                  leave gracefully; print "LEFT ok" or "LEFT <error>"; exit
// stdout events: "VIEW <id> <member,member,...>" on every install, "STOPPED <reason>".
#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>

#include "common/log.hpp"
#include "config/config.hpp"
#include "core/group_node.hpp"
#include "file_log_machine.hpp"

namespace squall::testing {
namespace {

std::mutex output_mutex;

void say(const std::string& line) {
  std::lock_guard lock(output_mutex);
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

std::string members_of(const core::View& view) {
  std::string out;
  for (const auto& member : view.members()) {
    out += (out.empty() ? "" : ",") + std::to_string(member.id.value);
  }
  return out;
}

struct Program {
  config::Config config;
  std::map<std::uint32_t, std::unique_ptr<FileLogMachine>> machines;  // progress thread
  std::map<std::uint32_t, std::uint64_t> pending;                     // progress thread
  std::uint64_t sent = 0;
  std::unique_ptr<core::GroupNode> node;

  FileLogMachine& machine(ShardId shard) {
    auto& slot = machines[shard.value];
    if (!slot) {
      slot = std::make_unique<FileLogMachine>(config.node.data_dir + "/shard-" +
                                              std::to_string(shard.value) + ".log");
    }
    return *slot;
  }

  // Progress thread: sends what the groups accept now.
  void pump() {
    for (auto& [shard, count] : pending) {
      core::OrderedGroup* group = node->group(ShardId{shard});
      while (count > 0 && group != nullptr) {
        Bytes payload(16);
        std::uint64_t tag = (std::uint64_t{config.node.id.value} << 40) | sent;
        for (int i = 0; i < 8; ++i) payload[i] = static_cast<std::byte>(tag >> (8 * i));
        if (!group->send(payload).is_ok()) break;
        ++sent;
        --count;
      }
    }
  }

  void command(const std::string& line) {
    std::istringstream in(line);
    std::string verb;
    in >> verb;
    std::uint32_t shard = 0;
    if (verb == "send") {
      std::uint64_t count = 0;
      in >> shard >> count;
      (void)node->post([this, shard, count] { pending[shard] += count; });
    } else if (verb == "log") {
      in >> shard;
      (void)node->post([this, shard] {
        FileLogMachine& log = machine(ShardId{shard});
        say("LOG " + std::to_string(shard) + " " + std::to_string(log.size()) + " " +
            std::to_string(log.checksum()) + " " + std::to_string(log.applied_version()));
      });
    } else if (verb == "status") {
      core::GroupStatus status = node->status();
      say("STATUS " + std::string(core::name(status.phase)) + " " +
          std::to_string(status.view.value) + " " + std::to_string(status.leader.value) + " " +
          std::to_string(status.members.size()) + " " + std::to_string(status.voter_stage));
    } else if (verb == "leave") {
      Status left = node->leave(std::chrono::milliseconds(20000));
      say(left.is_ok() ? "LEFT ok" : "LEFT " + left.to_string());
      std::exit(0);
    }
  }
};

int run(int argc, char** argv) {
  std::string path;
  std::vector<std::string> overrides;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--config") path = argv[i + 1];
    if (flag == "--set") overrides.push_back(argv[i + 1]);
  }
  auto loaded = config::load_config_file(path, overrides);
  if (!loaded.is_ok()) {
    std::cerr << loaded.status().to_string() << "\n";
    return 2;
  }
  Program program;
  program.config = *loaded;
  (void)init_logging(program.config.logging.to_log_settings());
  core::GroupNodeCallbacks callbacks;
  callbacks.installed = [](const core::View& view) {
    say("VIEW " + std::to_string(view.id().value) + " " + members_of(view));
  };
  callbacks.stopped = [](const std::string& reason) { say("STOPPED " + reason); };
  auto node = core::GroupNode::start(
      program.config, [&program](ShardId shard) -> core::StateMachine& {
        return program.machine(shard);
      },
      callbacks);
  if (!node.is_ok()) {
    std::cerr << "start: " << node.status().to_string() << "\n";
    return 1;
  }
  program.node = std::move(node).value();
  std::string buffer;
  while (true) {
    pollfd fd{STDIN_FILENO, POLLIN, 0};
    if (::poll(&fd, 1, 1) > 0) {
      char chunk[4096];
      ssize_t got = ::read(STDIN_FILENO, chunk, sizeof chunk);
      if (got <= 0) break;
      buffer.append(chunk, static_cast<std::size_t>(got));
      std::size_t end = 0;
      while ((end = buffer.find('\n')) != std::string::npos) {
        program.command(buffer.substr(0, end));
        buffer.erase(0, end + 1);
      }
    }
    (void)program.node->post([&program] { program.pump(); });
  }
  program.node->stop();
  return 0;
}

}  // namespace
}  // namespace squall::testing

int main(int argc, char** argv) { return squall::testing::run(argc, argv); }
