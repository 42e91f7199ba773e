#include "server/signals.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include <fmt/format.h>

namespace squall::server {

namespace {

sigset_t daemon_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

}  // namespace

Status block_daemon_signals() {
  const sigset_t set = daemon_signals();
  const int error = pthread_sigmask(SIG_BLOCK, &set, nullptr);
  if (error != 0) return io_error(fmt::format("pthread_sigmask: {}", std::strerror(error)));
  return Status::ok();
}

DaemonSignal wait_for_signal(std::chrono::milliseconds timeout) {
  const sigset_t set = daemon_signals();
  const auto count = timeout.count();
  timespec wait{static_cast<time_t>(count / 1000), static_cast<long>((count % 1000) * 1000000)};
  const int signal = sigtimedwait(&set, nullptr, &wait);
  if (signal == SIGTERM || signal == SIGINT) return DaemonSignal::terminate;
  if (signal == SIGHUP) return DaemonSignal::reopen;
  return DaemonSignal::none;
}

Status notify_service_manager(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return Status::ok();
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::size_t length = std::strlen(path);
  if (length >= sizeof(address.sun_path)) return invalid_argument("NOTIFY_SOCKET is too long");
  std::memcpy(address.sun_path, path, length);
  if (path[0] == '@') address.sun_path[0] = '\0';  // abstract namespace
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return io_error(fmt::format("notify socket: {}", std::strerror(errno)));
  const auto size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length);
  const ssize_t sent = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                              reinterpret_cast<const sockaddr*>(&address), size);
  const int error = errno;
  close(fd);
  if (sent < 0) return io_error(fmt::format("notify {}: {}", path, std::strerror(error)));
  return Status::ok();
}

}  // namespace squall::server
