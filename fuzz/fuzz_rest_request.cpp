// Fuzz target: HTTP requests as a client sends them: raw bytes through Beast's request parser
// (with the server's limits) into RestApi's routing, validation and handlers, over an
// in-memory backend that answers at once (fuzz/memory_backend.hpp). Several requests may
// follow each other in one input (a pipelined connection), so a PUT can be read back.
// Properties: every parsed request gets exactly one answer, never a 500 (the backend never
// fails), with a JSON body whenever the answer says application/json; what reaches the
// backend obeys the KvBackend contract (checked by the backend).
#include <optional>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "fuzz/fuzz_util.hpp"
#include "fuzz/memory_backend.hpp"
#include "server/metrics.hpp"
#include "server/rest_api.hpp"

namespace {

using namespace squall;
using namespace squall::server;
namespace http = boost::beast::http;

constexpr std::size_t kMaxRequests = 8;
constexpr std::uint32_t kHeaderLimitBytes = 32 * 1024;  // config rest.max_header_bytes default
constexpr std::uint64_t kBodyLimitBytes = 64 * 1024;

// Parses one request from the front of `input`; consumes what the parser used. nullopt when the
// bytes are not a complete, well-formed request (the server would answer 400 or close).
std::optional<HttpRequest> parse_one(std::string_view& input) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(kHeaderLimitBytes);
  parser.body_limit(kBodyLimitBytes);
  parser.eager(true);
  boost::beast::error_code error;
  while (!parser.is_done() && !input.empty()) {
    const std::size_t used = parser.put(boost::asio::buffer(input.data(), input.size()), error);
    input.remove_prefix(used);
    if (error == http::error::need_more) break;
    if (error) return std::nullopt;
    if (used == 0) break;
  }
  if (!parser.is_done()) {
    parser.put_eof(error);
    if (error || !parser.is_done()) return std::nullopt;
  }
  return parser.release();
}

void check_answer(const HttpResponse& response) {
  const unsigned status = response.result_int();
  FUZZ_CHECK(status >= 200 && status < 600, "status {}", status);
  FUZZ_CHECK(status != 500, "500 for a request: {}", response.body());
  const auto type = to_std(response[http::field::content_type]);
  if (type.starts_with("application/json")) {
    FUZZ_CHECK(nlohmann::json::accept(response.body()), "a JSON answer that is not JSON: {}",
               response.body());
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::silence_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input = fuzz::input_text(data, size);
  RestLimits limits;
  limits.max_key_bytes = 64;
  limits.max_list_limit = 50;
  limits.default_list_limit = 10;
  fuzz::MemoryBackend backend(limits.max_key_bytes);
  fuzz::FuzzWatch watch;
  MetricsRegistry metrics;
  RestApi api(backend, metrics, limits, &watch);
  for (std::size_t count = 0; count < kMaxRequests && !input.empty(); ++count) {
    auto request = parse_one(input);
    if (!request) break;
    std::size_t answers = 0;
    std::optional<HttpResponse> answer;
    HttpResponder respond(
        [&](HttpResponse response) {
          ++answers;
          answer = std::move(response);
        },
        [&](HttpResponse header, std::unique_ptr<HttpStreamSource>) {
          ++answers;
          answer = std::move(header);
        });
    api.handle(std::move(*request), respond);
    FUZZ_CHECK(answers == 1, "{} answers to one request", answers);
    check_answer(*answer);
  }
  return 0;
}
