#include "test/server/sse_client.hpp"

#include <string_view>

namespace squall::server::testing {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

namespace {

constexpr std::size_t kReadBytes = 64 * 1024;

// "name: value" -> value when `line` has that field name.
bool field(std::string_view line, std::string_view name, std::string& value) {
  if (!line.starts_with(name) || line.size() < name.size() + 1 || line[name.size()] != ':') {
    return false;
  }
  std::string_view rest = line.substr(name.size() + 1);
  if (rest.starts_with(' ')) rest.remove_prefix(1);
  value.assign(rest);
  return true;
}

SseBlock parse_block(std::string_view text) {
  SseBlock block;
  block.raw.assign(text);
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.starts_with(':')) {
      std::string_view comment = line.substr(1);
      if (comment.starts_with(' ')) comment.remove_prefix(1);
      block.comments.emplace_back(comment);
      continue;
    }
    if (field(line, "id", block.id) || field(line, "event", block.event)) continue;
    field(line, "data", block.data);
  }
  return block;
}

}  // namespace

SseClient::SseClient(std::uint16_t port, int receive_buffer_bytes,
                     std::chrono::milliseconds deadline)
    : stream_(io_), deadline_(deadline) {
  beast::error_code error;
  stream_.socket().open(net::ip::tcp::v4(), error);
  if (!error && receive_buffer_bytes > 0) {
    stream_.socket().set_option(net::socket_base::receive_buffer_size(receive_buffer_bytes),
                                error);
  }
  stream_.expires_after(deadline_);
  stream_.async_connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                        [&error](beast::error_code result) { error = result; });
  io_.restart();
  io_.run();
  failed_ = static_cast<bool>(error);
}

std::optional<Response> SseClient::open(const std::string& target, const Headers& headers) {
  if (failed_) return std::nullopt;
  http::request<http::empty_body> request{http::verb::get, target, 11};
  request.set(http::field::host, "127.0.0.1");
  request.set(http::field::accept, "text/event-stream");
  for (const auto& [name, value] : headers) request.set(name, value);
  beast::error_code error;
  stream_.expires_after(deadline_);
  http::async_write(stream_, request,
                    [&error](beast::error_code result, std::size_t) { error = result; });
  io_.restart();
  io_.run();
  if (error) return std::nullopt;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64ULL << 20);
  http::async_read_header(stream_, buffer_, parser,
                          [&error](beast::error_code result, std::size_t) { error = result; });
  io_.restart();
  io_.run();
  if (error) return std::nullopt;
  if (parser.get().result() != http::status::ok || !parser.chunked()) {
    http::async_read(stream_, buffer_, parser,
                     [&error](beast::error_code result, std::size_t) { error = result; });
    io_.restart();
    io_.run();
    if (error) return std::nullopt;
    return parser.release();
  }
  // The stream: whatever followed the header is the start of the chunked body.
  const std::string_view rest(static_cast<const char*>(buffer_.data().data()), buffer_.size());
  raw_.assign(rest);
  pending_.assign(rest);
  buffer_.consume(buffer_.size());
  decode();
  return parser.release();
}

bool SseClient::read_more() {
  if (failed_ || closed_) return false;
  std::string chunk(kReadBytes, '\0');
  beast::error_code error;
  std::size_t bytes = 0;
  stream_.expires_at(until_);
  stream_.async_read_some(net::buffer(chunk), [&](beast::error_code result, std::size_t n) {
    error = result;
    bytes = n;
  });
  io_.restart();
  io_.run();
  chunk.resize(bytes);
  raw_ += chunk;
  pending_ += chunk;
  decode();
  if (error == beast::error::timeout) failed_ = true;
  if (error) closed_ = true;
  return !error;
}

void SseClient::decode() {
  while (!ended_ && !failed_ && decode_chunk()) {
  }
  split_blocks();
}

// Moves one complete chunk from pending_ to body_; false when none is complete (or framing
// is broken: then failed_).
bool SseClient::decode_chunk() {
  const std::size_t line_end = pending_.find("\r\n");
  if (line_end == std::string::npos) return false;
  std::size_t size = 0;
  try {
    size = std::stoul(pending_.substr(0, line_end), nullptr, 16);
  } catch (const std::exception&) {
    failed_ = true;
    return false;
  }
  if (pending_.size() < line_end + 2 + size + 2) return false;
  if (pending_.compare(line_end + 2 + size, 2, "\r\n") != 0) {
    failed_ = true;
    return false;
  }
  body_.append(pending_, line_end + 2, size);
  pending_.erase(0, line_end + 2 + size + 2);
  if (size == 0) ended_ = true;
  return true;
}

void SseClient::split_blocks() {
  for (;;) {
    const std::size_t end = body_.find("\n\n", split_);
    if (end == std::string::npos) return;
    blocks_.push_back(parse_block(std::string_view(body_).substr(split_, end - split_)));
    split_ = end + 2;
  }
}

bool SseClient::read_blocks(std::size_t count) {
  split_blocks();
  until_ = std::chrono::steady_clock::now() + deadline_;
  while (blocks_.size() < count && !ended_ && read_more()) {
  }
  return blocks_.size() >= count;
}

bool SseClient::read_events(std::size_t count) {
  until_ = std::chrono::steady_clock::now() + deadline_;
  while (events().size() < count && !ended_ && read_more()) {
  }
  return events().size() >= count;
}

bool SseClient::read_to_end() {
  until_ = std::chrono::steady_clock::now() + deadline_;
  while (read_more()) {
  }
  return ended_ && closed_ && !failed_;
}

std::vector<SseBlock> SseClient::events() const {
  std::vector<SseBlock> result;
  for (const SseBlock& block : blocks_) {
    if (block.is_event()) result.push_back(block);
  }
  return result;
}

std::string SseClient::last_id() const {
  for (auto it = blocks_.rbegin(); it != blocks_.rend(); ++it) {
    if (!it->id.empty()) return it->id;
  }
  return {};
}

void SseClient::close() {
  beast::error_code ignored;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  stream_.socket().close(ignored);
  closed_ = true;
}

}  // namespace squall::server::testing
