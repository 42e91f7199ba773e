// A small HTTP client for the REST tests: Beast over one connection, every operation bounded
// by a deadline (a wedged server fails the test instead of hanging it), plus raw byte access
// for hostile input.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace squall::server::testing {

using Response = boost::beast::http::response<boost::beast::http::string_body>;
using Headers = std::vector<std::pair<std::string, std::string>>;

class TestClient {
 public:
  explicit TestClient(std::uint16_t port,
                      std::chrono::milliseconds deadline = std::chrono::seconds(20));

  // Sends a request and reads its response; none on an I/O error or the deadline. Uses no
  // test assertions, so other threads may call it (Catch2's are not thread-safe).
  std::optional<Response> try_request(boost::beast::http::verb method, std::string target,
                                      std::string body = {}, const Headers& headers = {});
  // try_request(), FAILing the test on an I/O error or the deadline.
  Response request(boost::beast::http::verb method, std::string target, std::string body = {},
                   const Headers& headers = {});
  Response get(std::string target) {
    return request(boost::beast::http::verb::get, std::move(target));
  }
  Response put(std::string target, std::string body, const Headers& headers = {}) {
    return request(boost::beast::http::verb::put, std::move(target), std::move(body), headers);
  }
  Response del(std::string target, const Headers& headers = {}) {
    return request(boost::beast::http::verb::delete_, std::move(target), {}, headers);
  }

  // Writes raw bytes; false when the connection failed.
  bool send_raw(std::string_view bytes);
  // Half-closes the connection: the server reads end-of-stream after what was sent.
  void shutdown_send();
  // Reads one response after raw writes; false on EOF, an error or the deadline.
  bool read_response(Response& response);
  // Reads until the server closes the connection (true) or the deadline passes (false);
  // `received` gets every byte read.
  bool wait_closed(std::string* received = nullptr);

 private:
  void run();

  boost::asio::io_context io_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::chrono::milliseconds deadline_;
};

}  // namespace squall::server::testing
