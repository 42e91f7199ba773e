#include "test/integration/daemon_cluster.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace squall::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

bool port_is_free(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  const bool free = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  close(fd);
  return free;
}

}  // namespace

std::uint16_t free_port() {
  // Below the kernel's ephemeral range (32768+), in a window chosen by the process id so tests
  // running in parallel (one process each) start far apart; each candidate is checked.
  static std::uint32_t next = 20000 + (static_cast<std::uint32_t>(getpid()) % 240) * 50;
  for (int tries = 0; tries < 2000; ++tries) {
    const std::uint32_t port = next++;
    if (next >= 32000) next = 20000;
    if (port_is_free(static_cast<std::uint16_t>(port))) return static_cast<std::uint16_t>(port);
  }
  std::abort();
}

std::string squalld_path() { return SQUALLD_PATH; }

std::optional<HttpAnswer> http_call(std::uint16_t port, http::verb method,
                                    const std::string& target, const std::string& body,
                                    const HttpHeaders& headers,
                                    std::chrono::milliseconds timeout) {
  net::io_context io;
  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  http::request<http::string_body> request{method, target, 11};
  request.set(http::field::host, "127.0.0.1");
  for (const auto& [name, value] : headers) request.set(name, value);
  request.body() = body;
  if (method != http::verb::get || !body.empty()) request.prepare_payload();
  http::response_parser<http::string_body> parser;
  parser.body_limit(64ULL << 20);
  beast::error_code failure;
  stream.expires_after(timeout);
  stream.async_connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                       [&](beast::error_code error) {
                         if (error) {
                           failure = error;
                           return;
                         }
                         http::async_write(stream, request, [&](beast::error_code werror,
                                                                std::size_t) {
                           if (werror) {
                             failure = werror;
                             return;
                           }
                           http::async_read(stream, buffer, parser,
                                            [&](beast::error_code rerror, std::size_t) {
                                              failure = rerror;
                                            });
                         });
                       });
  io.run();
  if (failure) return std::nullopt;
  return parser.release();
}

int status_of(const std::optional<HttpAnswer>& answer) {
  return answer ? static_cast<int>(answer->result_int()) : 0;
}

DaemonCluster::DaemonCluster(ClusterLayout layout) : layout_(std::move(layout)) {
  std::string pattern = (std::filesystem::temp_directory_path() / "squalld-test-XXXXXX").string();
  char* made = mkdtemp(pattern.data());
  if (made == nullptr) std::abort();
  directory_ = made;
  for (std::size_t i = 0; i < layout_.nodes; ++i) {
    membership_ports_.push_back(free_port());
    state_transfer_ports_.push_back(free_port());
    fabric_ports_.push_back(free_port());
    rest_ports_.push_back(free_port());
    config_paths_.push_back(fmt::format("{}/node{}.yaml", directory_, i + 1));
    pids_.push_back(-1);
    starts_.push_back(0);
  }
  for (std::size_t i = 0; i < layout_.nodes; ++i) write_config(i);
}

DaemonCluster::~DaemonCluster() {
  for (std::size_t i = 0; i < pids_.size(); ++i) {
    if (pids_[i] > 0) kill9(i);
  }
  if (std::getenv("SQUALL_KEEP_TEST_DIRS") == nullptr) {
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }
}

void DaemonCluster::write_config(std::size_t i) {
  std::ofstream out(config_paths_[i]);
  out << fmt::format(
      "cluster:\n  name: e2e\n"
      "node:\n  id: {}\n  data_dir: \"{}/data{}\"\n  address: 127.0.0.1\n"
      "contact:\n  address: 127.0.0.1\n  port: {}\n"
      "ports:\n  membership: {}\n  state_transfer: {}\n  fabric: {}\n"
      "transport:\n  provider: tcp\n  domain: lo\n"
      // Kills are seen at once (the connections close); a long silence bound keeps a
      // loaded machine (2 shared cores) from suspecting live nodes.
      "timeouts:\n  heartbeat_ms: 100\n  failure_timeout_ms: 4000\n"
      "  join_timeout_ms: 30000\n  request_timeout_ms: 10000\n"
      "rest:\n  listen: \"127.0.0.1:{}\"\n"
      "layout:\n  shards: {}\n  replicas_per_shard: {}\n",
      i + 1, directory_, i + 1, membership_ports_[0], membership_ports_[i],
      state_transfer_ports_[i], fabric_ports_[i], rest_ports_[i], layout_.shards,
      layout_.replicas);
  for (const std::string& line : layout_.layout_yaml) out << "  " << line << "\n";
  for (const std::string& line : layout_.extra_yaml) out << line << "\n";
  out << "logging:\n  level: info\n";  // last: tests may append logging keys
}

void DaemonCluster::start(std::size_t i, const std::vector<std::string>& environment) {
  if (pids_[i] > 0) return;
  const std::string log = fmt::format("{}/node{}.log", directory_, i + 1);
  const std::string binary = squalld_path();
  const std::string config = config_paths_[i];
  const pid_t pid = fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    for (const std::string& variable : environment) {
      const auto equals = variable.find('=');
      setenv(variable.substr(0, equals).c_str(), variable.substr(equals + 1).c_str(), 1);
    }
    execl(binary.c_str(), binary.c_str(), "--config", config.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  pids_[i] = pid;
  ++starts_[i];
}

bool DaemonCluster::wait_ready(std::size_t i, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (pids_[i] <= 0) return false;
    if (waitpid(pids_[i], &status, WNOHANG) == pids_[i]) {  // it exited: not coming up
      pids_[i] = -1;
      return false;
    }
    auto answer = http_call(rest_ports_[i], http::verb::get, "/readyz", {}, {},
                            std::chrono::seconds(2));
    if (status_of(answer) == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

bool DaemonCluster::wait_view_size(std::size_t i, std::size_t members,
                                   std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto answer = http_call(rest_ports_[i], http::verb::get, "/v1/cluster", {}, {},
                            std::chrono::seconds(2));
    if (status_of(answer) == 200) {
      auto body = nlohmann::json::parse(answer->body(), nullptr, false);
      if (!body.is_discarded() && body["view"]["members"].size() == members) {
        bool all_ready = true;
        for (std::size_t j = 0; j < pids_.size(); ++j) {
          if (pids_[j] > 0 && !wait_ready(j, std::chrono::milliseconds(1))) all_ready = false;
        }
        if (all_ready) return true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

bool DaemonCluster::start_all(std::chrono::milliseconds timeout) {
  start(0);
  if (!wait_ready(0, timeout)) return false;
  for (std::size_t i = 1; i < layout_.nodes; ++i) start(i);
  return wait_view_size(0, layout_.nodes, timeout);
}

void DaemonCluster::kill9(std::size_t i) {
  if (pids_[i] <= 0) return;
  kill(pids_[i], SIGKILL);
  int status = 0;
  waitpid(pids_[i], &status, 0);
  pids_[i] = -1;
}

void DaemonCluster::signal(std::size_t i, int signal_number) {
  if (pids_[i] > 0) kill(pids_[i], signal_number);
}

int DaemonCluster::terminate(std::size_t i, std::chrono::milliseconds timeout) {
  if (pids_[i] <= 0) return -1;
  kill(pids_[i], SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    const pid_t done = waitpid(pids_[i], &status, WNOHANG);
    if (done == pids_[i]) {
      pids_[i] = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill9(i);
  return -1;
}

std::string DaemonCluster::log_tail(std::size_t i, std::size_t bytes) const {
  std::ifstream in(fmt::format("{}/node{}.log", directory_, i + 1));
  std::stringstream text;
  text << in.rdbuf();
  std::string all = text.str();
  return all.size() > bytes ? all.substr(all.size() - bytes) : all;
}

std::string DaemonCluster::assertion_failures() const {
  std::string out;
  for (std::size_t i = 0; i < layout_.nodes; ++i) {
    std::ifstream in(fmt::format("{}/node{}.log", directory_, i + 1));
    std::string line;
    while (std::getline(in, line)) {
      if (line.find("assertion") != std::string::npos ||
          line.find("ASSERT") != std::string::npos) {
        out += fmt::format("node{}: {}\n", i + 1, line);
      }
    }
  }
  return out;
}

}  // namespace squall::test
