// Multi-process tests of LibfabricTransport over the real tcp provider on 127.0.0.1: this
// driver starts fabric_node processes (test/integration/fabric_node.cpp), wires them together
// through their stdin/stdout line protocol and checks what they report.
//
// Ports: every node binds port 0 and reports the port it got, so parallel runs never collide.
// Processes: each child dies with the driver (PR_SET_PDEATHSIG) and every child is killed and
// reaped when its test ends, passed or failed. Waits have a generous safety timeout so a broken
// build fails instead of hanging; assertions are on reported events and data, never on time.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "fabric/bootstrap_wire.hpp"

namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr auto kSafetyTimeout = std::chrono::seconds(120);

// One fabric_node child with pipes to its stdin and stdout; stderr goes to a log file.
class NodeProcess {
 public:
  NodeProcess(std::uint32_t id, const std::vector<std::string>& args) : id_(id) {
    char log_template[] = "/tmp/squall-fabric-node-XXXXXX";
    int log_fd = ::mkstemp(log_template);
    REQUIRE(log_fd >= 0);
    log_path_ = log_template;
    int to_child[2];
    int from_child[2];
    REQUIRE(::pipe2(to_child, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(from_child, O_CLOEXEC) == 0);
    std::vector<std::string> argv_strings = {SQUALL_FABRIC_NODE, "--id", std::to_string(id)};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& arg : argv_strings) argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_t parent = ::getpid();
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      // Child: only async-signal-safe calls until exec.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::dup2(to_child[0], 0);
      ::dup2(from_child[1], 1);
      ::dup2(log_fd, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    ::close(log_fd);
    stdin_fd_ = to_child[1];
    stdout_fd_ = from_child[0];
  }

  ~NodeProcess() {
    kill9();
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
    std::remove(log_path_.c_str());
  }

  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;

  std::uint32_t id() const { return id_; }

  // The next stdout line, or nullopt at EOF or when the safety timeout expires.
  std::optional<std::string> read_line() {
    auto deadline = SteadyClock::now() + kSafetyTimeout;
    while (true) {
      if (auto newline = buffer_.find('\n'); newline != std::string::npos) {
        std::string line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        transcript_ += line + "\n";
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                        SteadyClock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd descriptor{stdout_fd_, POLLIN, 0};
      if (::poll(&descriptor, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      ssize_t count = ::read(stdout_fd_, chunk, sizeof(chunk));
      if (count <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<std::size_t>(count));
    }
  }

  void write_line(const std::string& line) {
    std::string text = line + "\n";
    // The child may be gone (killed on purpose): never die of SIGPIPE here.
    ::signal(SIGPIPE, SIG_IGN);
    ssize_t written = ::write(stdin_fd_, text.data(), text.size());
    (void)written;
  }

  void close_stdin() {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    stdin_fd_ = -1;
  }

  void kill9() {
    if (reaped_) return;
    ::kill(pid_, SIGKILL);
    wait_exit();
  }

  // Reaps the child (killing it after the safety timeout); returns its raw wait status.
  int wait_exit() {
    if (reaped_) return status_;
    auto deadline = SteadyClock::now() + kSafetyTimeout;
    while (::waitpid(pid_, &status_, WNOHANG) == 0) {
      if (SteadyClock::now() > deadline) ::kill(pid_, SIGKILL);
      ::usleep(10'000);
    }
    reaped_ = true;
    return status_;
  }

  std::string diagnostics() const {
    std::ifstream log(log_path_);
    std::stringstream text;
    text << log.rdbuf();
    std::string stderr_text = text.str();
    if (stderr_text.size() > 4000) {
      stderr_text = "..." + stderr_text.substr(stderr_text.size() - 4000);
    }
    return fmt::format("--- node {} stdout:\n{}--- node {} stderr:\n{}", id_, transcript_, id_,
                       stderr_text);
  }

 private:
  std::uint32_t id_;
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string log_path_;
  std::string buffer_;
  std::string transcript_;
  bool reaped_ = false;
  int status_ = 0;
};

std::map<std::string, std::string> fields_of(const std::string& line) {
  std::map<std::string, std::string> fields;
  std::istringstream words(line);
  std::string word;
  while (words >> word) {
    if (auto equals = word.find('='); equals != std::string::npos) {
      fields[word.substr(0, equals)] = word.substr(equals + 1);
    }
  }
  return fields;
}

// n nodes with ids 1..n, all running `scenario`.
class Cluster {
 public:
  Cluster(const std::string& scenario, std::size_t size, std::vector<std::string> args) {
    args.insert(args.begin(), {"--scenario", scenario});
    for (std::uint32_t id = 1; id <= size; ++id) {
      nodes_.push_back(std::make_unique<NodeProcess>(id, args));
    }
    for (std::size_t index = 0; index < size; ++index) {
      std::string line = expect(index, "PORT");
      ports_.push_back(static_cast<std::uint16_t>(std::stoul(line.substr(5))));
    }
  }

  std::uint16_t port(std::size_t index) const { return ports_[index]; }
  NodeProcess& node(std::size_t index) { return *nodes_[index]; }

  void introduce() {
    for (std::size_t index = 0; index < nodes_.size(); ++index) {
      std::string peers = "PEERS";
      for (std::size_t other = 0; other < nodes_.size(); ++other) {
        if (other != index) peers += fmt::format(" {}:{}", other + 1, ports_[other]);
      }
      nodes_[index]->write_line(peers);
    }
  }

  // Reads node `index`'s lines until one starts with `prefix`; an ERROR line, EOF or the
  // safety timeout fails the test with every node's transcript and log.
  std::string expect(std::size_t index, const std::string& prefix) {
    while (true) {
      auto line = nodes_[index]->read_line();
      if (!line || line->rfind("ERROR", 0) == 0) {
        FAIL(fmt::format("node {} did not report {}: {}\n{}", index + 1, prefix,
                         line.value_or("(no more output)"), diagnostics()));
      }
      if (line->rfind(prefix, 0) == 0) return *line;
    }
  }

  // Tells the given nodes to exit and checks they say BYE and exit with status 0.
  void exit_all(const std::vector<std::size_t>& indexes) {
    for (std::size_t index : indexes) nodes_[index]->write_line("EXIT");
    for (std::size_t index : indexes) {
      auto bye = fields_of(expect(index, "BYE"));
      CHECK(bye["duplicates"] == "0");
      int status = nodes_[index]->wait_exit();
      INFO(diagnostics());
      CHECK(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 0);
    }
  }

  std::string diagnostics() const {
    std::string text;
    for (const auto& node : nodes_) text += node->diagnostics();
    return text;
  }

 private:
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
  std::vector<std::uint16_t> ports_;
};

// ---- raw bootstrap junk ----------------------------------------------------------------------

int connect_raw(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  return fd;
}

void send_and_close(std::uint16_t port, const squall::Bytes& bytes) {
  int fd = connect_raw(port);
  if (!bytes.empty()) {
    ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    (void)sent;  // the node may close first; that is its right
  }
  ::close(fd);
}

squall::fabric::Hello hello_from(std::uint32_t from, std::uint32_t to) {
  squall::fabric::Hello hello;
  hello.from = squall::NodeId(from);
  hello.to = squall::NodeId(to);
  hello.nonce = 1;
  hello.rx_depth = 16;
  hello.max_message_bytes = 4096;
  hello.provider = "tcp";
  hello.endpoint_name = squall::Bytes(16, std::byte{1});
  hello.control = {0, 128, 1, 0};
  return hello;
}

constexpr std::uint64_t kJunkPerRound = 9;

// Nine different wrong ways to talk to node `id`'s bootstrap port; each must be refused.
// Returns the descriptor of the silent connection (closed by the caller at the end).
int send_junk(std::uint16_t port, std::uint32_t id, std::mt19937_64& random) {
  using squall::Bytes;
  Bytes noise(1024);
  for (std::byte& b : noise) b = static_cast<std::byte>(random());
  send_and_close(port, noise);
  std::string http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  send_and_close(port, Bytes(reinterpret_cast<const std::byte*>(http.data()),
                             reinterpret_cast<const std::byte*>(http.data()) + http.size()));
  Bytes valid = squall::fabric::encode_hello(hello_from(0, id));
  Bytes huge(valid.begin(), valid.begin() + 16);
  huge[8] = huge[9] = huge[10] = std::byte{0xFF};
  huge[11] = std::byte{0x7F};
  send_and_close(port, huge);
  send_and_close(port, Bytes(valid.begin(), valid.begin() + 26));      // truncated body
  Bytes corrupt = valid;
  corrupt.back() ^= std::byte{0x55};
  send_and_close(port, corrupt);                                        // bad checksum
  send_and_close(port, squall::fabric::encode_hello(hello_from(0, 99)));   // wrong node
  send_and_close(port, squall::fabric::encode_hello(hello_from(50, id)));  // wrong dialer
  send_and_close(port, {});                                             // connect, close
  return connect_raw(port);                                             // silent
}

}  // namespace

TEST_CASE("fabric processes: 1 GiB of random RMA writes lands intact and in order") {
  Cluster cluster("rma", 2, {"--bytes", std::to_string(1ULL << 30), "--seed", "20240601"});
  cluster.introduce();
  auto writer = fields_of(cluster.expect(0, "RESULT"));
  auto reader = fields_of(cluster.expect(1, "RESULT"));
  INFO(cluster.diagnostics());
  CHECK(writer["role"] == "writer");
  CHECK(reader["role"] == "reader");
  CHECK(reader["match"] == "1");
  CHECK(reader["hash"] == writer["hash"]);
  CHECK(reader["writes"] == writer["writes"]);
  CHECK(reader["regressions"] == "0");
  // Every 16th write carried an immediate, each checked for region, offset and length.
  std::uint64_t writes = std::stoull(writer["writes"]);
  CHECK(std::stoull(reader["immediates"]) == (writes + 15) / 16);
  UNSCOPED_INFO("torn 16-byte pairs observed by the reader: " << reader["torn_pairs"]);
  cluster.exit_all({0, 1});
}

TEST_CASE("fabric processes: ordered messages, writes and immediates among three nodes") {
  Cluster cluster("messages", 3, {"--messages", "3000", "--seed", "7"});
  cluster.introduce();
  for (std::size_t index = 0; index < 3; ++index) {
    auto result = fields_of(cluster.expect(index, "RESULT"));
    INFO("node " << index + 1);
    CHECK(result["messages"] == "6000");
    CHECK(result["immediates"] == "1500");
  }
  cluster.exit_all({0, 1, 2});
}

TEST_CASE("fabric processes: kill -9 of one of three nodes is reported once to each survivor") {
  Cluster cluster("kill", 3, {});
  cluster.introduce();
  for (std::size_t index = 0; index < 3; ++index) cluster.expect(index, "CONNECTED");
  cluster.node(2).kill9();  // node 3, in the middle of its traffic
  for (std::size_t index = 0; index < 2; ++index) {
    std::string failed = cluster.expect(index, "PEER_FAILED");
    CHECK(failed.rfind("PEER_FAILED 3 ", 0) == 0);
    auto result = fields_of(cluster.expect(index, "RESULT"));
    CHECK(result["failed"] == "3");
    CHECK(result["reports"] == "1");
    CHECK(result["survivors"] == "1");
  }
  cluster.exit_all({0, 1});
}

TEST_CASE("fabric processes: garbage on the bootstrap port is refused, nodes keep working") {
  Cluster cluster("messages", 2,
                  {"--messages", "500", "--expect-refused", std::to_string(2 * kJunkPerRound),
                   "--hello-timeout-ms", "300"});
  std::mt19937_64 random(99);
  std::vector<int> silent;
  // Before the nodes know each other, then again while they exchange messages.
  for (std::size_t index = 0; index < 2; ++index) {
    silent.push_back(send_junk(cluster.port(index), static_cast<std::uint32_t>(index + 1),
                               random));
  }
  cluster.introduce();
  for (std::size_t index = 0; index < 2; ++index) cluster.expect(index, "CONNECTED");
  for (std::size_t index = 0; index < 2; ++index) {
    silent.push_back(send_junk(cluster.port(index), static_cast<std::uint32_t>(index + 1),
                               random));
  }
  for (std::size_t index = 0; index < 2; ++index) {
    auto result = fields_of(cluster.expect(index, "RESULT"));
    CHECK(result["messages"] == "500");
    CHECK(std::stoull(result["refused"]) >= 2 * kJunkPerRound);
  }
  for (int fd : silent) ::close(fd);
  cluster.exit_all({0, 1});
}
