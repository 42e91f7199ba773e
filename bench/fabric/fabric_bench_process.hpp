// Child processes for bench_fabric: the echo server (this binary again) and fi_pingpong.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace squall::fabric::bench {

// A child with pipes to its stdin and stdout (stderr inherited, or /dev/null when `quiet`).
// The child dies with this process (PR_SET_PDEATHSIG); the destructor kills and reaps it.
class ChildProcess {
 public:
  explicit ChildProcess(const std::vector<std::string>& argv, bool quiet = false);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The next stdout line; "" at EOF or after two minutes of silence.
  std::string read_line();
  // Everything until EOF (at most two minutes).
  std::string read_all();
  void write_line(const std::string& line);
  // Reaps the child, killing it after two minutes; returns its exit code (-1: killed).
  int wait();

 private:
  bool fill();

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string buffer_;
  bool reaped_ = false;
  int exit_code_ = -1;
};

struct PingpongResult {
  double latency_us = 0;  // fi_pingpong's usec/xfer: one-way
  double mb_per_s = 0;    // fi_pingpong's MB/sec
};

// Runs an fi_pingpong server and client on loopback for one size; nullopt (with a message on
// stderr) when fi_pingpong is missing or fails.
std::optional<PingpongResult> run_fi_pingpong(const std::string& provider,
                                              const std::string& domain, std::size_t size,
                                              std::size_t iterations);

}  // namespace squall::fabric::bench
