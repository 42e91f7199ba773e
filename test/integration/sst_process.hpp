// A child process with its stdin and stdout on pipes, for the multi-process SST/SMC and RDMC
// tests and benchmarks. Its stderr is inherited (logs land in the test output).
//
// Ownership: the object owns the process. The destructor kills it (SIGKILL works on stopped
// processes too) and reaps it, so a failing test never leaves a zombie or an orphan behind;
// the child also gets SIGKILL if the thread that spawned it dies (PR_SET_PDEATHSIG).
// Not thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace squall::integration {

class ChildProcess {
 public:
  // Starts argv[0] (a path) with the given arguments. io_error when fork/exec fails; a
  // program that cannot be executed exits with status 127.
  static Result<std::unique_ptr<ChildProcess>> spawn(const std::vector<std::string>& argv);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  int stdout_fd() const { return out_fd_; }

  // Writes `line` and a newline to the child's stdin. unavailable when the child is gone.
  Status write_line(const std::string& line);
  void close_stdin();

  // The next complete stdout line, waiting up to timeout_ms. timed_out when none arrived in
  // time; unavailable at end of output (the child exited or closed stdout).
  Result<std::string> read_line(std::uint64_t timeout_ms);
  // A complete line already read from the pipe, or whatever arrives without waiting.
  std::optional<std::string> try_read_line();
  bool output_closed() const { return eof_ && buffer_.empty(); }

  // kill(pid, signal) unless the child has been reaped.
  void signal(int signal_number);
  // Reaps the child if it exited within timeout_ms; returns its raw wait status.
  std::optional<int> wait_exit(std::uint64_t timeout_ms);
  bool reaped() const { return status_.has_value(); }
  // "exit 0", "signal 9", or "running".
  std::string describe_exit() const;

 private:
  ChildProcess(pid_t pid, int in_fd, int out_fd) : pid_(pid), in_fd_(in_fd), out_fd_(out_fd) {}
  // Reads what the pipe holds (waiting up to timeout_ms for the first bytes).
  void fill(std::uint64_t timeout_ms);
  std::optional<std::string> take_line();

  pid_t pid_;
  int in_fd_;
  int out_fd_;
  std::string buffer_;
  bool eof_ = false;
  std::optional<int> status_;
};

// Waits until one of `fds` is readable (or hung up), up to timeout_ms.
void wait_readable(const std::vector<int>& fds, std::uint64_t timeout_ms);

}  // namespace squall::integration
