// The HTTP request/response types of the server and the handler contract.
#pragma once

#include <cstdint>
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

// The body of a streaming response (Server-Sent Events), produced on demand by the
// connection that took it over. Every member function is called on the connection's strand,
// one at a time; the connection owns the source and destroys it when the stream ends, the
// client goes away or the server stops (possibly on another thread, never concurrently with
// a call). Backpressure: the connection asks for more only after the previous bytes were
// written to the socket, so a client that stops reading stops the source being drained.
class HttpStreamSource {
 public:
  enum class Next : std::uint8_t {
    data,  // `out` holds bytes to send (not empty)
    wait,  // nothing now: the source calls `wake` when there may be
    end,   // the stream is over: the connection ends the body and closes
  };

  virtual ~HttpStreamSource() = default;
  // Called once, before any other call. `wake` may be called from any thread, any number of
  // times (also after the connection is gone: then it does nothing); it must not be called
  // with a lock held that the source's own calls take.
  virtual void start(std::function<void()> wake) = 0;
  // Appends the next bytes to `out` (empty on entry).
  virtual Next next(std::string& out) = 0;
  // The stream has been idle (nothing written) for heartbeat_ms(): appends bytes to send
  // that keep it alive (an SSE comment), or nothing.
  virtual void heartbeat(std::string& out) = 0;
  // How long the stream may be idle before heartbeat(); 0: never.
  virtual std::uint32_t heartbeat_ms() const = 0;
};

// Sends the response of one request. Copyable; call it (or stream()) exactly once, from any
// thread. If every copy is destroyed without a call, the client gets a 500 (a lost
// completion must not wedge the connection). The session sets the HTTP version, keep-alive
// and Content-Length.
class HttpResponder {
 public:
  using SendFn = std::function<void(HttpResponse)>;
  using StreamFn = std::function<void(HttpResponse, std::unique_ptr<HttpStreamSource>)>;

  HttpResponder() = default;
  // `stream` may be empty: then stream() answers 500 (a responder that cannot stream).
  explicit HttpResponder(SendFn send, StreamFn stream = {});

  void operator()(HttpResponse response) const;
  // Answers with `header` (its body is ignored) and a chunked body read from `source`; the
  // connection closes when the stream ends. Counts as the one answer.
  void stream(HttpResponse header, std::unique_ptr<HttpStreamSource> source) const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// Called on a server thread for each complete, well-formed request. Must not block: slow
// work is handed off, and `respond` is called when it completes.
using HttpHandler = std::function<void(HttpRequest request, HttpResponder respond)>;

}  // namespace squall::server
