// DaemonCluster: squalld processes on loopback for end-to-end tests — generated configs with
// ports the kernel handed out (so tests run in parallel), data under a fresh temporary
// directory, start / SIGTERM / kill -9 / restart of each node, and a small HTTP client.
//
// Nothing here uses Catch2 assertions, so writer threads may call it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/beast/http.hpp>
#include <sys/types.h>

namespace squall::test {

using HttpAnswer = boost::beast::http::response<boost::beast::http::string_body>;
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// One request on a new connection; none on a connection failure or after `timeout`.
std::optional<HttpAnswer> http_call(std::uint16_t port, boost::beast::http::verb method,
                                    const std::string& target, const std::string& body = {},
                                    const HttpHeaders& headers = {},
                                    std::chrono::milliseconds timeout = std::chrono::seconds(15));
// The HTTP status, or 0 when there was no answer.
int status_of(const std::optional<HttpAnswer>& answer);

struct ClusterLayout {
  std::size_t nodes = 3;
  std::uint32_t shards = 1;
  std::uint32_t replicas = 3;
  std::vector<std::string> extra_yaml;  // lines appended to every node's config
  std::vector<std::string> layout_yaml;  // lines appended inside its `layout:` section
};

class DaemonCluster {
 public:
  explicit DaemonCluster(ClusterLayout layout);
  ~DaemonCluster();  // kills every node, removes the directory (kept when SQUALL_KEEP_TEST_DIRS)
  DaemonCluster(const DaemonCluster&) = delete;
  DaemonCluster& operator=(const DaemonCluster&) = delete;

  // Starts node i (0 is the contact) with extra environment variables.
  void start(std::size_t i, const std::vector<std::string>& environment = {});
  // Starts node 0, waits until it is ready, then starts the others and waits for a view
  // with every node. False on a timeout.
  bool start_all(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  bool wait_ready(std::size_t i, std::chrono::milliseconds timeout);
  // Until node i's /v1/cluster shows `members` members, every node ready.
  bool wait_view_size(std::size_t i, std::size_t members, std::chrono::milliseconds timeout);
  void kill9(std::size_t i);
  // SIGTERM and wait; the exit status (or -1 when it did not exit within the timeout).
  int terminate(std::size_t i, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Sends `signal` to node i (when it runs).
  void signal(std::size_t i, int signal_number);
  bool running(std::size_t i) const { return pids_.at(i) > 0; }

  std::size_t size() const { return layout_.nodes; }
  std::uint16_t rest_port(std::size_t i) const { return rest_ports_.at(i); }
  const std::string& config_path(std::size_t i) const { return config_paths_.at(i); }
  const std::string& directory() const { return directory_; }
  std::string log_tail(std::size_t i, std::size_t bytes = 4000) const;
  // Lines of every node's log that report a broken assertion (should be none).
  std::string assertion_failures() const;

 private:
  void write_config(std::size_t i);

  ClusterLayout layout_;
  std::string directory_;
  std::vector<std::uint16_t> rest_ports_;
  std::vector<std::uint16_t> membership_ports_;
  std::vector<std::uint16_t> state_transfer_ports_;
  std::vector<std::uint16_t> fabric_ports_;
  std::vector<std::string> config_paths_;
  std::vector<pid_t> pids_;
  std::vector<int> starts_;
};

// A free TCP port on 127.0.0.1 (bound once by the kernel, then released).
std::uint16_t free_port();
// The squalld binary under test.
std::string squalld_path();

}  // namespace squall::test
