#include "tools/squallctl/http_client.hpp"

#include <array>
#include <cctype>
#include <limits>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/ssl.h>

namespace squall::ctl {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string percent_encode(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    const bool unreserved = std::isalnum(byte) != 0 || c == '-' || c == '.' || c == '_' ||
                            c == '~' || (keep_slash && c == '/');
    if (unreserved) {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0xF];
    }
  }
  return out;
}

Status io_status(const beast::error_code& error, const std::string& endpoint,
                 std::string_view what) {
  const std::string message = endpoint + ": " + std::string(what) + ": " + error.message();
  if (error == beast::error::timeout) return {Code::timed_out, message};
  return unavailable(message);
}

template <typename Fields>
HeaderList header_list(const Fields& fields) {
  HeaderList out;
  for (const auto& field : fields) {
    out.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  return out;
}

http::request<http::string_body> make_request(std::string_view method, const std::string& target,
                                              const std::string& host, const std::string& body,
                                              const HeaderList& headers,
                                              const std::optional<std::string>& token) {
  http::request<http::string_body> request;
  request.method_string(beast::string_view(method.data(), method.size()));
  request.target(target);
  request.version(11);
  request.set(http::field::host, host);
  request.set(http::field::user_agent, "squallctl");
  for (const auto& [name, value] : headers) request.set(name, value);
  if (token) request.set(http::field::authorization, "Bearer " + *token);
  request.body() = body;
  if (method != "GET" || !body.empty()) request.prepare_payload();
  return request;
}

}  // namespace

std::optional<std::string> HttpReply::header(std::string_view name) const {
  for (const auto& [field, value] : headers) {
    if (iequals(field, name)) return value;
  }
  return std::nullopt;
}

struct HttpClient::Tls {
  net::ssl::context context{net::ssl::context::tls_client};
};

// One connection, plain or TLS.
struct HttpClient::Connection {
  explicit Connection(net::ssl::context* tls_context) {
    if (tls_context != nullptr) {
      tls.emplace(io, *tls_context);
    } else {
      plain.emplace(io);
    }
  }
  // Runs the queued asynchronous operation to completion.
  void run() {
    io.restart();
    io.run();
  }
  beast::tcp_stream& tcp() { return tls ? tls->next_layer() : *plain; }
  // Calls `operation` with the stream requests travel on.
  template <typename Operation>
  void with_stream(Operation&& operation) {
    if (tls) {
      operation(*tls);
    } else {
      operation(*plain);
    }
  }
  net::io_context io;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  std::optional<beast::tcp_stream> plain;
  beast::flat_buffer buffer;
  std::string endpoint;
};

HttpClient::HttpClient(std::vector<config::HostPort> endpoints, std::uint32_t timeout_ms,
                       ClientSecurity security)
    : endpoints_(std::move(endpoints)), timeout_ms_(timeout_ms), security_(std::move(security)) {
  SQUALL_ASSERT(!endpoints_.empty(), "squallctl needs at least one endpoint");
}

namespace {

// TLS 1.2 or later; servers verified against `ca_file` (or the system's CAs).
Status setup_tls(net::ssl::context& context, const ClientSecurity& security) {
  beast::error_code error;
  context.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                          net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                          net::ssl::context::no_tlsv1_1,
                      error);
  if (security.ca_file) {
    context.load_verify_file(*security.ca_file, error);
    if (error) return invalid_argument("--cacert " + *security.ca_file + ": " + error.message());
  } else {
    context.set_default_verify_paths(error);
  }
  context.set_verify_mode(net::ssl::verify_peer, error);
  if (security.cert_file) {
    context.use_certificate_chain_file(*security.cert_file, error);
    if (error) return invalid_argument("--cert " + *security.cert_file + ": " + error.message());
    context.use_private_key_file(security.key_file.value_or(*security.cert_file),
                                 net::ssl::context::pem, error);
    if (error) return invalid_argument("--key: " + error.message());
  }
  return Status::ok();
}

// Verification of the server's certificate against the endpoint's host, and SNI for names.
void prepare(beast::ssl_stream<beast::tcp_stream>& stream, const std::string& host) {
  beast::error_code error;
  (void)net::ip::make_address(host, error);
  if (error) {
    SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(host.c_str()));
  }
  stream.set_verify_callback(net::ssl::host_name_verification(host), error);
}

}  // namespace

HttpClient::~HttpClient() = default;

std::string HttpClient::current_endpoint() const { return endpoints_[current_].to_string(); }

Result<std::unique_ptr<HttpClient::Connection>> HttpClient::connect() {
  if (security_.tls && tls_ == nullptr) {
    auto tls = std::make_shared<Tls>();
    SQUALL_TRY(setup_tls(tls->context, security_));
    tls_ = std::move(tls);
  }
  std::string failures;
  for (std::size_t attempt = 0; attempt < endpoints_.size(); ++attempt) {
    const std::size_t index = (current_ + attempt) % endpoints_.size();
    const config::HostPort& target = endpoints_[index];
    auto connection = std::make_unique<Connection>(tls_ ? &tls_->context : nullptr);
    connection->endpoint = target.to_string();
    beast::error_code error;
    tcp::resolver resolver(connection->io);
    const auto resolved = resolver.resolve(target.host, std::to_string(target.port), error);
    if (!error) {
      connection->tcp().expires_after(std::chrono::milliseconds(timeout_ms_));
      connection->tcp().async_connect(
          resolved, [&error](beast::error_code result, const tcp::endpoint&) { error = result; });
      connection->run();
    }
    if (!error && connection->tls) {
      prepare(*connection->tls, target.host);
      connection->tls->async_handshake(net::ssl::stream_base::client,
                                       [&error](beast::error_code result) { error = result; });
      connection->run();
    }
    if (!error) {
      current_ = index;
      return connection;
    }
    if (!failures.empty()) failures += "; ";
    failures += connection->endpoint + ": " + error.message();
  }
  return unavailable("no endpoint reachable (" + failures + ")");
}

Result<HttpReply> HttpClient::request(std::string_view method, const std::string& target,
                                      const std::string& body, const HeaderList& headers) {
  // A GET that failed after it was sent may be repeated on the next endpoint; a write not.
  const std::size_t attempts = method == "GET" ? endpoints_.size() : 1;
  Status last;
  for (std::size_t attempt = 0; attempt < attempts; ++attempt) {
    auto connected = connect();
    if (!connected.is_ok()) return connected.status();
    Connection& connection = *connected.value();
    auto request =
        make_request(method, target, connection.endpoint, body, headers, security_.token);
    beast::error_code error;
    connection.tcp().expires_after(std::chrono::milliseconds(timeout_ms_));
    connection.with_stream([&](auto& stream) {
      http::async_write(stream, request,
                        [&error](beast::error_code result, std::size_t) { error = result; });
    });
    connection.run();
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_body_bytes);
    if (!error) {
      connection.with_stream([&](auto& stream) {
        http::async_read(stream, connection.buffer, parser,
                         [&error](beast::error_code result, std::size_t) { error = result; });
      });
      connection.run();
    }
    if (!error) {
      auto response = parser.release();
      HttpReply reply;
      reply.status = response.result_int();
      reply.headers = header_list(response);
      reply.body = std::move(response.body());
      reply.endpoint = connection.endpoint;
      return reply;
    }
    last = io_status(error, connection.endpoint, "request failed");
    current_ = (current_ + 1) % endpoints_.size();
  }
  return last;
}

Result<StreamEnd> HttpClient::stream(const std::string& target, const HeaderList& headers,
                                     std::uint32_t idle_timeout_ms,
                                     const StreamHandlers& handlers) {
  auto connected = connect();
  if (!connected.is_ok()) return connected.status();
  Connection& connection = *connected.value();
  auto request = make_request("GET", target, connection.endpoint, {}, headers, security_.token);
  beast::error_code error;
  connection.tcp().expires_after(std::chrono::milliseconds(timeout_ms_));
  connection.with_stream([&](auto& stream) {
    http::async_write(stream, request,
                      [&error](beast::error_code result, std::size_t) { error = result; });
  });
  connection.run();
  StreamParser parser;
  // A stream has no end: no limit on the whole body; each piece read is bounded below.
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (!error) {
    connection.with_stream([&](auto& stream) {
      http::async_read_header(stream, connection.buffer, parser,
                              [&error](beast::error_code result, std::size_t) {
                                error = result;
                              });
    });
    connection.run();
  }
  if (error) return io_status(error, connection.endpoint, "watch request failed");
  HttpReply head;
  head.status = parser.get().result_int();
  head.headers = header_list(parser.get());
  head.endpoint = connection.endpoint;
  if (head.status != 200) {
    // An error answer is short and complete: the handler gets its body with the head.
    read_body(connection, parser, timeout_ms_, [&head](std::string_view bytes) {
      head.body.append(bytes);
      return head.body.size() < kMaxErrorBodyBytes;
    });
    return handlers.on_head(head) ? StreamEnd::closed : StreamEnd::stopped;
  }
  if (!handlers.on_head(head)) return StreamEnd::stopped;
  return read_body(connection, parser, idle_timeout_ms, handlers.on_data);
}

StreamEnd HttpClient::read_body(Connection& connection, StreamParser& parser,
                                std::uint32_t idle_timeout_ms,
                                const std::function<bool(std::string_view)>& on_data) {
  std::array<char, 16 * 1024> piece{};
  beast::error_code error;
  while (!parser.is_done()) {
    parser.get().body().data = piece.data();
    parser.get().body().size = piece.size();
    connection.tcp().expires_after(std::chrono::milliseconds(idle_timeout_ms));
    connection.with_stream([&](auto& stream) {
      http::async_read_some(stream, connection.buffer, parser,
                            [&error](beast::error_code result, std::size_t) {
                              error = result;
                            });
    });
    connection.run();
    const std::size_t received = piece.size() - parser.get().body().size;
    if (received > 0 && !on_data(std::string_view(piece.data(), received))) {
      return StreamEnd::stopped;
    }
    if (error == http::error::need_buffer) continue;
    if (error == beast::error::timeout) return StreamEnd::stalled;
    if (error) return StreamEnd::closed;
  }
  return StreamEnd::closed;
}

std::string encode_path(std::string_view key) { return percent_encode(key, true); }
std::string encode_query(std::string_view value) { return percent_encode(value, false); }

}  // namespace squall::ctl
