#include "bench/fabric/fabric_bench_process.hpp"

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
#include <sstream>
#include <thread>

namespace squall::fabric::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr auto kSafetyTimeout = std::chrono::seconds(120);

// A port nobody listens on right now (fi_pingpong needs one for its control connection).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

// fi_pingpong abbreviates sizes with binary suffixes: "8", "4k", "256k", "1m".
std::optional<std::size_t> parse_size(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return std::nullopt;
  std::size_t value = std::stoul(text.substr(0, digits));
  std::string suffix = text.substr(digits);
  if (suffix.empty()) return value;
  if (suffix == "k") return value << 10;
  if (suffix == "m") return value << 20;
  if (suffix == "g") return value << 30;
  return std::nullopt;
}

// fi_pingpong prints a header line and one result line starting with the size.
std::optional<PingpongResult> parse_pingpong(const std::string& output, std::size_t size) {
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string bytes, sent, acked, total, time, mb, usec;
    if (!(words >> bytes >> sent >> acked >> total >> time >> mb >> usec)) continue;
    if (parse_size(bytes) != size) continue;
    try {
      return PingpongResult{std::stod(usec), std::stod(mb)};
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv, bool quiet) {
  int to_child[2];
  int from_child[2];
  if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(from_child, O_CLOEXEC) != 0) return;
  std::vector<std::string> copies = argv;
  std::vector<char*> pointers;
  for (std::string& arg : copies) pointers.push_back(arg.data());
  pointers.push_back(nullptr);
  int null_fd = quiet ? ::open("/dev/null", O_WRONLY | O_CLOEXEC) : -1;
  pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(to_child[0], 0);
    ::dup2(from_child[1], 1);
    if (null_fd >= 0) ::dup2(null_fd, 2);
    ::execvp(pointers[0], pointers.data());
    ::_exit(127);
  }
  if (null_fd >= 0) ::close(null_fd);
  ::close(to_child[0]);
  ::close(from_child[1]);
  stdin_fd_ = to_child[1];
  stdout_fd_ = from_child[0];
  if (pid_ < 0) reaped_ = true;
}

ChildProcess::~ChildProcess() {
  if (!reaped_) {
    ::kill(pid_, SIGKILL);
    wait();
  }
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
}

bool ChildProcess::fill() {
  pollfd descriptor{stdout_fd_, POLLIN, 0};
  auto timeout_ms = std::chrono::duration_cast<std::chrono::milliseconds>(kSafetyTimeout);
  if (stdout_fd_ < 0 || ::poll(&descriptor, 1, static_cast<int>(timeout_ms.count())) <= 0) {
    return false;
  }
  char chunk[4096];
  ssize_t count = ::read(stdout_fd_, chunk, sizeof(chunk));
  if (count <= 0) return false;
  buffer_.append(chunk, static_cast<std::size_t>(count));
  return true;
}

std::string ChildProcess::read_line() {
  while (buffer_.find('\n') == std::string::npos) {
    if (!fill()) return "";
  }
  auto newline = buffer_.find('\n');
  std::string line = buffer_.substr(0, newline);
  buffer_.erase(0, newline + 1);
  return line;
}

std::string ChildProcess::read_all() {
  while (fill()) {
  }
  return std::move(buffer_);
}

void ChildProcess::write_line(const std::string& line) {
  std::string text = line + "\n";
  ::signal(SIGPIPE, SIG_IGN);
  ssize_t written = ::write(stdin_fd_, text.data(), text.size());
  (void)written;
}

int ChildProcess::wait() {
  if (reaped_) return exit_code_;
  auto deadline = SteadyClock::now() + kSafetyTimeout;
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (SteadyClock::now() > deadline) ::kill(pid_, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  reaped_ = true;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return exit_code_;
}

std::optional<PingpongResult> run_fi_pingpong(const std::string& provider,
                                              const std::string& domain, std::size_t size,
                                              std::size_t iterations) {
  // The client cannot connect before the server listens, and the free port may be taken in
  // between: a few attempts with fresh ports.
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::string port = std::to_string(free_port());
    std::vector<std::string> common = {"fi_pingpong", "-p", provider, "-e", "msg", "-d", domain,
                                       "-I", std::to_string(iterations), "-S",
                                       std::to_string(size)};
    std::vector<std::string> server_argv = common;
    server_argv.insert(server_argv.end(), {"-B", port});
    ChildProcess server(server_argv, true);
    std::this_thread::sleep_for(std::chrono::milliseconds(200 * (attempt + 1)));
    std::vector<std::string> client_argv = common;
    client_argv.insert(client_argv.end(), {"-P", port, "127.0.0.1"});
    ChildProcess client(client_argv, true);
    std::string output = client.read_all();
    int code = client.wait();
    server.wait();
    auto result = parse_pingpong(output, size);
    if (code == 0 && result) return result;
  }
  std::fprintf(stderr, "\nbench_fabric: fi_pingpong failed for %zu bytes (is libfabric-bin "
               "installed?)\n", size);
  return std::nullopt;
}

}  // namespace squall::fabric::bench
