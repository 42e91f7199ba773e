// HttpClient: squallctl's blocking HTTP/1.1 client (Boost.Beast) over a list of endpoints.
//
// A request goes to the endpoint that answered last (the first one to begin with). When an
// endpoint cannot be reached (connection refused, name not resolved, connect timeout) the
// next one is tried, each at most once per request. A request that was sent but got no
// answer is only retried elsewhere when it is safe to repeat (GET); a write that may have
// taken effect is reported as unavailable instead of being applied twice.
//
// Every operation is bounded by timeout_ms (connect, and the whole exchange of one
// request). Not thread-safe: one client per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "common/status.hpp"
#include "config/config.hpp"

namespace squall::ctl {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// TLS and the bearer token of every request (docs/security.md).
struct ClientSecurity {
  bool tls = false;                      // https: every endpoint speaks TLS
  std::optional<std::string> ca_file;    // verify servers against it (unset: system CAs)
  std::optional<std::string> cert_file;  // client certificate (rest.tls.client_certs)
  std::optional<std::string> key_file;
  std::optional<std::string> token;      // sent as "Authorization: Bearer <token>"
};

struct HttpReply {
  unsigned status = 0;
  HeaderList headers;  // names as sent by the server
  std::string body;
  std::string endpoint;  // "host:port" that answered

  // The value of the first header named `name` (case-insensitive), if any.
  std::optional<std::string> header(std::string_view name) const;
};

// What an SSE stream reader is told, in order: the response head, then body bytes.
struct StreamHandlers {
  // Called once with the status and headers; the body is empty for a 200 (it streams to
  // on_data), else it is the error answer's body (at most 64 KiB). Return false to stop.
  std::function<bool(const HttpReply& head)> on_head;
  // Called with each piece of the (de-chunked) body. Return false to stop reading.
  std::function<bool(std::string_view bytes)> on_data;
};

enum class StreamEnd : std::uint8_t {
  stopped,  // a handler returned false
  closed,   // the server ended the response or closed the connection
  stalled,  // nothing arrived for idle_timeout_ms
};

class HttpClient {
 public:
  // Fails (invalid_argument) on the first request when a TLS file cannot be used.
  HttpClient(std::vector<config::HostPort> endpoints, std::uint32_t timeout_ms,
             ClientSecurity security = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and reads the whole answer (body at most max_body_bytes).
  // Errors: unavailable when no endpoint could be reached or the exchange failed;
  // timed_out when the answer did not arrive within timeout_ms.
  Result<HttpReply> request(std::string_view method, const std::string& target,
                            const std::string& body = {}, const HeaderList& headers = {});

  // Sends a GET and streams the answer to `handlers` until one of them stops, the server
  // ends it, or nothing arrives for idle_timeout_ms. Connecting fails over like request();
  // errors are those of request(), for the part before the head arrived.
  Result<StreamEnd> stream(const std::string& target, const HeaderList& headers,
                           std::uint32_t idle_timeout_ms, const StreamHandlers& handlers);

  // The endpoint requests go to first, as "host:port".
  std::string current_endpoint() const;
  // Makes the next request start with the endpoint after the current one (for a caller
  // that got an answer it should not wait out on this endpoint, e.g. a 503).
  void skip_current() { current_ = (current_ + 1) % endpoints_.size(); }
  const std::vector<config::HostPort>& endpoints() const { return endpoints_; }

  static constexpr std::uint64_t max_body_bytes = 64ULL << 20;

 private:
  struct Connection;
  using StreamParser =
      boost::beast::http::response_parser<boost::beast::http::buffer_body>;
  static constexpr std::size_t kMaxErrorBodyBytes = 64 * 1024;

  // Reads the body of a streamed answer piece by piece into on_data until it ends, on_data
  // returns false, or nothing arrives for idle_timeout_ms.
  static StreamEnd read_body(Connection& connection, StreamParser& parser,
                             std::uint32_t idle_timeout_ms,
                             const std::function<bool(std::string_view)>& on_data);
  // Connects to the current endpoint or the following ones; moves current_ to the one that
  // answered. Errors: unavailable, listing every endpoint's failure.
  Result<std::unique_ptr<Connection>> connect();

  std::vector<config::HostPort> endpoints_;
  std::size_t current_ = 0;
  std::uint32_t timeout_ms_;
  ClientSecurity security_;
  struct Tls;
  std::shared_ptr<Tls> tls_;  // the client context, built on first use
};

// Percent-encodes a key for a path (/v1/kv/{key}): every byte but the unreserved characters
// and '/' is escaped.
std::string encode_path(std::string_view key);
// Percent-encodes a query value: every byte but the unreserved characters is escaped.
std::string encode_query(std::string_view value);

}  // namespace squall::ctl
