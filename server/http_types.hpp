// The HTTP request/response types of the server and the handler contract.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <boost/beast/http.hpp>

namespace squall::server {

// Bodies are raw bytes held in a std::string (values are arbitrary bytes, not text).
using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

// Beast's string_view (Boost's in this version) as a std::string_view.
inline std::string_view to_std(boost::beast::string_view text) {
  return {text.data(), text.size()};
}

// Sends the response of one request. Copyable; call it exactly once, from any thread. If
// every copy is destroyed without a call, the client gets a 500 (a lost completion must not
// wedge the connection). The session sets the HTTP version, keep-alive and Content-Length.
class HttpResponder {
 public:
  using SendFn = std::function<void(HttpResponse)>;

  HttpResponder() = default;
  explicit HttpResponder(SendFn send);

  void operator()(HttpResponse response) const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// Called on a server thread for each complete, well-formed request. Must not block: slow
// work is handed off, and `respond` is called when it completes.
using HttpHandler = std::function<void(HttpRequest request, HttpResponder respond)>;

}  // namespace squall::server
