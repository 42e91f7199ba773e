#include "test/server/test_client.hpp"

#include <catch2/catch.hpp>

namespace squall::server::testing {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

TestClient::TestClient(std::uint16_t port, std::chrono::milliseconds deadline)
    : stream_(io_), deadline_(deadline) {
  beast::error_code error;
  stream_.expires_after(deadline_);
  stream_.async_connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                        [&error](beast::error_code result) { error = result; });
  run();
  REQUIRE_FALSE(error);
}

void TestClient::run() {
  io_.restart();
  io_.run();
}

Response TestClient::request(http::verb method, std::string target, std::string body,
                             const Headers& headers) {
  auto response = try_request(method, std::move(target), std::move(body), headers);
  REQUIRE(response.has_value());
  return std::move(*response);
}

std::optional<Response> TestClient::try_request(http::verb method, std::string target,
                                                std::string body, const Headers& headers) {
  http::request<http::string_body> request{method, target, 11};
  request.set(http::field::host, "127.0.0.1");
  for (const auto& [name, value] : headers) request.set(name, value);
  request.body() = std::move(body);
  if (method != http::verb::get || !request.body().empty()) request.prepare_payload();
  beast::error_code error;
  stream_.expires_after(deadline_);
  http::async_write(stream_, request,
                    [&error](beast::error_code result, std::size_t) { error = result; });
  run();
  if (error) return std::nullopt;
  Response response;
  if (!read_response(response)) return std::nullopt;
  return response;
}

bool TestClient::send_raw(std::string_view bytes) {
  beast::error_code error;
  stream_.expires_after(deadline_);
  net::async_write(stream_, net::buffer(bytes.data(), bytes.size()),
                   [&error](beast::error_code result, std::size_t) { error = result; });
  run();
  return !error;
}

void TestClient::shutdown_send() {
  beast::error_code ignored;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
}

bool TestClient::read_response(Response& response) {
  http::response_parser<http::string_body> parser;
  parser.body_limit(64ULL << 20);
  beast::error_code error;
  stream_.expires_after(deadline_);
  http::async_read(stream_, buffer_, parser,
                   [&error](beast::error_code result, std::size_t) { error = result; });
  run();
  if (error) return false;
  response = parser.release();
  return true;
}

bool TestClient::wait_closed(std::string* received) {
  std::string data(static_cast<const char*>(buffer_.data().data()), buffer_.size());
  buffer_.consume(buffer_.size());
  std::vector<char> chunk(64 * 1024);
  stream_.expires_after(deadline_);
  for (;;) {
    beast::error_code error;
    std::size_t bytes = 0;
    stream_.async_read_some(net::buffer(chunk), [&](beast::error_code result, std::size_t n) {
      error = result;
      bytes = n;
    });
    run();
    data.append(chunk.data(), bytes);
    if (error) {
      if (received != nullptr) *received = std::move(data);
      return error != beast::error::timeout;
    }
  }
}

}  // namespace squall::server::testing
