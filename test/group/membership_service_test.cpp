#include <catch2/catch.hpp>

#include <boost/asio.hpp>
#include <thread>

#include "core/membership_service.hpp"

namespace squall::core {
namespace {

using std::chrono::milliseconds;

std::unique_ptr<MembershipService> start_echo(MembershipServiceOptions options = {}) {
  auto service = MembershipService::start(options, [](MembershipMessage request,
                                                      MembershipService::Reply reply) {
    if (auto* leave = std::get_if<LeaveRequest>(&request)) {
      reply(Retry{"leave of " + std::to_string(leave->node.value)});
    } else {
      reply(Refused{"only leaves here"});
    }
  });
  REQUIRE(service.is_ok());
  return std::move(service).value();
}

TEST_CASE("a request gets its reply", "[membership_service]") {
  auto service = start_echo();
  auto reply = membership_call("127.0.0.1", service->port(), LeaveRequest{"c", NodeId{4}},
                               milliseconds(5000));
  REQUIRE(reply.is_ok());
  REQUIRE(std::holds_alternative<Retry>(*reply));
  CHECK(std::get<Retry>(*reply).reason == "leave of 4");
}

TEST_CASE("a reply may come later from another thread", "[membership_service]") {
  std::vector<std::thread> workers;
  std::mutex mutex;
  auto service = MembershipService::start(
      {}, [&](MembershipMessage, MembershipService::Reply reply) {
        std::lock_guard lock(mutex);
        workers.emplace_back([reply] {
          std::this_thread::sleep_for(milliseconds(50));
          reply(LeaveDone{});
        });
      });
  REQUIRE(service.is_ok());
  auto reply = membership_call("127.0.0.1", (*service)->port(), LeaveRequest{"c", NodeId{1}},
                               milliseconds(5000));
  REQUIRE(reply.is_ok());
  CHECK(std::holds_alternative<LeaveDone>(*reply));
  std::lock_guard lock(mutex);
  for (auto& worker : workers) worker.join();
}

TEST_CASE("nobody listening is unavailable, silence is timed_out", "[membership_service]") {
  std::uint16_t port = 0;
  {
    auto service = start_echo();
    port = service->port();
  }
  auto refused = membership_call("127.0.0.1", port, LeaveDone{}, milliseconds(2000));
  CHECK(refused.status().code() == Code::unavailable);

  auto silent = MembershipService::start({}, [](MembershipMessage, MembershipService::Reply) {});
  REQUIRE(silent.is_ok());
  auto waited = membership_call("127.0.0.1", (*silent)->port(), LeaveDone{}, milliseconds(200));
  CHECK(waited.status().code() == Code::timed_out);
}

TEST_CASE("junk connections are refused and the service keeps answering",
          "[membership_service]") {
  MembershipServiceOptions options;
  options.request_timeout_ms = 200;
  auto service = start_echo(options);
  namespace asio = boost::asio;
  asio::io_context io;
  std::vector<std::string> junk = {"GET / HTTP/1.1\r\n\r\n", std::string(16, '\xff'),
                                   std::string(3, 'x')};
  for (const std::string& bytes : junk) {
    asio::ip::tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), service->port()});
    asio::write(socket, asio::buffer(bytes));
    char byte = 0;
    boost::system::error_code error;
    socket.read_some(asio::buffer(&byte, 1), error);  // closed by the service (or timeout)
    CHECK(error);
  }
  CHECK(service->refused() >= 2);
  auto reply = membership_call("127.0.0.1", service->port(), LeaveRequest{"c", NodeId{9}},
                               milliseconds(5000));
  REQUIRE(reply.is_ok());
  CHECK(std::holds_alternative<Retry>(*reply));
}

TEST_CASE("a client with another cluster secret is refused, and learns why",
          "[membership_service]") {
  MembershipServiceOptions options;
  options.secret = "the-cluster-secret-0123";
  auto service = start_echo(options);
  auto right = membership_call("127.0.0.1", service->port(), LeaveRequest{"c", NodeId{1}},
                               milliseconds(5000), options.secret);
  REQUIRE(right.is_ok());
  CHECK(std::holds_alternative<Retry>(*right));
  for (std::string_view secret : {std::string_view{}, std::string_view{"wrong-secret-0123456"}}) {
    auto wrong = membership_call("127.0.0.1", service->port(), LeaveRequest{"c", NodeId{1}},
                                 milliseconds(5000), secret);
    REQUIRE_FALSE(wrong.is_ok());
    CHECK(wrong.status().code() == Code::corruption);
    CHECK(wrong.status().message().find("authentication failed") != std::string::npos);
  }
  CHECK(service->refused() == 2);
}

}  // namespace
}  // namespace squall::core
