// The commands of squallctl. Each returns its exit code (format.hpp) after printing its
// result on `out` (human-readable, or JSON with `json`) and any error on `err`.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

#include "tools/squallctl/http_client.hpp"

namespace squall::ctl {

struct Context {
  HttpClient& client;
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
  bool json = false;
};

// Prints the error answer `reply` on err and returns its exit code.
int report_error(Context& context, const HttpReply& reply);
// Prints a transport failure on err and returns its exit code.
int report_error(Context& context, const Status& status);

enum class Condition : std::uint8_t { none, version_is, absent, exists };

struct WriteOptions {
  std::string key;
  std::string value;  // "-": read the value from `in`
  Condition condition = Condition::none;
  std::uint64_t version = 0;  // Condition::version_is
};

struct GetOptions {
  std::string key;
  std::optional<std::uint64_t> version;
  std::optional<std::string> at;  // parse_time_us()
  bool stable = false;
};

struct ListOptions {
  std::string prefix;
  std::uint64_t limit = 100;  // keys printed at most, unless `all`
  bool all = false;
  std::uint64_t page_size = 1000;  // keys per request (the server's default maximum: 10000)
};

struct HistoryOptions {
  std::string key;
  std::uint64_t limit = 100;  // versions printed at most
  std::uint64_t page_size = 1000;  // versions per request
};

struct WatchOptions {
  std::optional<std::string> key;     // exactly one of key and prefix
  std::optional<std::string> prefix;
  std::string start = "now";          // "now" or "oldest"; ignored with a cursor
  std::optional<std::string> cursor;
  bool values = true;
  std::uint64_t count = 0;            // stop after this many events; 0: never
  std::uint32_t idle_timeout_ms = 45000;   // silence (keepalives included) that ends a stream
  std::uint32_t retry_timeout_ms = 60000;  // give up reconnecting after this long
};

int cmd_put(Context& context, WriteOptions options);  // put and cas
int cmd_get(Context& context, const GetOptions& options);
int cmd_delete(Context& context, const WriteOptions& options);
int cmd_list(Context& context, const ListOptions& options);
int cmd_history(Context& context, const HistoryOptions& options);
int cmd_watch(Context& context, const WatchOptions& options);
int cmd_cluster(Context& context);
// Asks every endpoint separately (healthz, readyz, cluster); 0 when all are ready, else 4.
int cmd_status(Context& context, std::uint32_t timeout_ms);

}  // namespace squall::ctl
