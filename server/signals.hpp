// The daemon's signals and its readiness notification.
//
// SIGTERM and SIGINT ask for a graceful stop, SIGHUP for reopening the log file and reloading
// the REST TLS certificate (server/tls.hpp) and the token files (server/auth.hpp). They are
// blocked in every thread (block_daemon_signals() before any thread starts, so all inherit
// the mask) and taken synchronously by the main thread with wait_for_signal().
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "common/status.hpp"

namespace squall::server {

enum class DaemonSignal : std::uint8_t {
  none,       // the wait timed out
  terminate,  // SIGTERM or SIGINT
  reopen,     // SIGHUP: reopen the log, reload TLS certificates and token files
};

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread. Call first in main().
Status block_daemon_signals();
// Waits up to `timeout` for one of them.
DaemonSignal wait_for_signal(std::chrono::milliseconds timeout);

// The sd_notify protocol without libsystemd: sends `state` (e.g. "READY=1") as one datagram
// to the unix socket named by $NOTIFY_SOCKET ('@' first: the abstract namespace). ok without
// doing anything when the variable is unset.
Status notify_service_manager(std::string_view state);

}  // namespace squall::server
