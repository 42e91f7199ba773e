#include "sst_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>

namespace squall::integration {
namespace {

constexpr std::size_t kMaxLineBytes = 1 << 20;  // a longer line is a broken child

std::uint64_t now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

Status errno_status(const char* what) {
  return io_error(fmt::format("{}: {}", what, std::strerror(errno)));
}

// In the child between fork and exec: only async-signal-safe calls.
[[noreturn]] void exec_child(int in_read, int out_write, pid_t parent, char** argv) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
  ::dup2(in_read, STDIN_FILENO);
  ::dup2(out_write, STDOUT_FILENO);
  ::execv(argv[0], argv);
  ::_exit(127);
}

}  // namespace

Result<std::unique_ptr<ChildProcess>> ChildProcess::spawn(const std::vector<std::string>& argv) {
  SQUALL_ASSERT(!argv.empty(), "spawn needs a program");
  std::vector<char*> raw;
  for (const std::string& arg : argv) raw.push_back(const_cast<char*>(arg.c_str()));
  raw.push_back(nullptr);
  int in_pipe[2];
  int out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) return errno_status("pipe");
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    ::close(in_pipe[0]);
    ::close(in_pipe[1]);
    return errno_status("pipe");
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) exec_child(in_pipe[0], out_pipe[1], parent, raw.data());
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  if (pid < 0) {
    Status status = errno_status("fork");
    ::close(in_pipe[1]);
    ::close(out_pipe[0]);
    return status;
  }
  // A dead child must surface as an error from write_line, not as SIGPIPE killing us.
  ::signal(SIGPIPE, SIG_IGN);
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, in_pipe[1], out_pipe[0]));
}

ChildProcess::~ChildProcess() {
  if (!reaped()) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (in_fd_ >= 0) ::close(in_fd_);
  ::close(out_fd_);
}

Status ChildProcess::write_line(const std::string& line) {
  if (in_fd_ < 0) return unavailable("stdin closed");
  std::string data = line + "\n";
  std::size_t written = 0;
  while (written < data.size()) {
    ssize_t count = ::write(in_fd_, data.data() + written, data.size() - written);
    if (count < 0 && errno == EINTR) continue;
    if (count < 0) return unavailable(fmt::format("write to child: {}", std::strerror(errno)));
    written += static_cast<std::size_t>(count);
  }
  return Status::ok();
}

void ChildProcess::close_stdin() {
  if (in_fd_ >= 0) ::close(in_fd_);
  in_fd_ = -1;
}

void ChildProcess::fill(std::uint64_t timeout_ms) {
  if (eof_) return;
  pollfd descriptor{out_fd_, POLLIN, 0};
  int ready = ::poll(&descriptor, 1, static_cast<int>(timeout_ms));
  if (ready <= 0) return;
  char chunk[4096];
  ssize_t count = ::read(out_fd_, chunk, sizeof(chunk));
  if (count < 0 && errno == EINTR) return;
  if (count <= 0) {
    eof_ = true;
    return;
  }
  buffer_.append(chunk, static_cast<std::size_t>(count));
  SQUALL_ASSERT(buffer_.size() < kMaxLineBytes, "child output line over {} bytes",
                kMaxLineBytes);
}

std::optional<std::string> ChildProcess::take_line() {
  auto newline = buffer_.find('\n');
  if (newline == std::string::npos) return std::nullopt;
  std::string line = buffer_.substr(0, newline);
  buffer_.erase(0, newline + 1);
  return line;
}

std::optional<std::string> ChildProcess::try_read_line() {
  if (auto line = take_line()) return line;
  fill(0);
  return take_line();
}

Result<std::string> ChildProcess::read_line(std::uint64_t timeout_ms) {
  std::uint64_t deadline = now_ms() + timeout_ms;
  while (true) {
    if (auto line = take_line()) return *line;
    if (eof_) return unavailable(fmt::format("child {} closed its output", pid_));
    std::uint64_t now = now_ms();
    if (now >= deadline) return Status{Code::timed_out, "no line from child"};
    fill(deadline - now);
  }
}

void ChildProcess::signal(int signal_number) {
  if (!reaped()) ::kill(pid_, signal_number);
}

std::optional<int> ChildProcess::wait_exit(std::uint64_t timeout_ms) {
  if (reaped()) return status_;
  std::uint64_t deadline = now_ms() + timeout_ms;
  while (true) {
    int status = 0;
    pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      status_ = status;
      return status_;
    }
    if (now_ms() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

std::string ChildProcess::describe_exit() const {
  if (!status_) return "running";
  if (WIFEXITED(*status_)) return fmt::format("exit {}", WEXITSTATUS(*status_));
  if (WIFSIGNALED(*status_)) return fmt::format("signal {}", WTERMSIG(*status_));
  return fmt::format("wait status {}", *status_);
}

void wait_readable(const std::vector<int>& fds, std::uint64_t timeout_ms) {
  std::vector<pollfd> descriptors;
  for (int fd : fds) descriptors.push_back({fd, POLLIN, 0});
  ::poll(descriptors.data(), descriptors.size(), static_cast<int>(timeout_ms));
}

}  // namespace squall::integration
