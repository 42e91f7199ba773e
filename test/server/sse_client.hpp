// A Server-Sent Events client for the watch tests: one connection, a GET whose answer is
// either an ordinary response or a chunked event stream. The chunked framing is decoded here
// by hand (so tests see exactly the bytes the server framed) and the body is split into SSE
// blocks. Every read is bounded by a deadline: a wedged server fails the test instead of
// hanging it. Uses no test assertions (callable from any thread).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "test/server/test_client.hpp"

namespace squall::server::testing {

// One SSE block (the text between blank lines), by field.
struct SseBlock {
  std::string raw;                    // the block's text, without the blank line ending it
  std::string id;                     // "id:" value ("" when absent)
  std::string event;                  // "event:" value
  std::string data;                   // "data:" value
  std::vector<std::string> comments;  // ": ..." lines, without ": "
  bool is_event() const { return !event.empty(); }
};

class SseClient {
 public:
  // `receive_buffer_bytes` > 0 sets SO_RCVBUF before connecting (a small window makes a
  // client that does not read stall the server quickly).
  explicit SseClient(std::uint16_t port, int receive_buffer_bytes = 0,
                     std::chrono::milliseconds deadline = std::chrono::seconds(20));

  // Sends GET `target` and reads the answer's header; a non-streaming answer is read whole
  // (its body in the returned response). None on an I/O error or the deadline.
  std::optional<Response> open(const std::string& target, const Headers& headers = {});

  // Reads until `count` blocks have been received in all, the stream ends, or the deadline.
  // True when there are `count` blocks.
  bool read_blocks(std::size_t count);
  // Reads until at least `count` event blocks (with `event:`) have been received.
  bool read_events(std::size_t count);
  // Reads until the server ends the stream (last chunk) and closes the connection.
  bool read_to_end();

  const std::vector<SseBlock>& blocks() const { return blocks_; }
  std::vector<SseBlock> events() const;
  // The decoded body so far, and the raw bytes after the header (chunk framing included).
  const std::string& body() const { return body_; }
  const std::string& raw() const { return raw_; }
  bool ended() const { return ended_; }  // the last chunk arrived
  bool closed() const { return closed_; }
  // The id of the last block that carried one ("" when none).
  std::string last_id() const;
  void close();

 private:
  bool read_more();  // one read; false on error/EOF/deadline
  void decode();     // chunk framing -> body_, body_ -> blocks_
  bool decode_chunk();
  void split_blocks();

  boost::asio::io_context io_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::chrono::milliseconds deadline_;
  std::chrono::steady_clock::time_point until_;
  std::string raw_;       // bytes after the header
  std::string pending_;   // raw bytes not yet decoded
  std::string body_;      // decoded body
  std::size_t split_ = 0;  // body_ bytes already split into blocks
  std::vector<SseBlock> blocks_;
  bool ended_ = false;
  bool closed_ = false;
  bool failed_ = false;
};

}  // namespace squall::server::testing
