// The two HTTP dialects the load generator speaks, as pure functions: building a request for
// an operation and classifying its response. No I/O, so the tests check them byte for byte.
//
//   squall  docs/api.md: PUT/GET /v1/kv/<key>, If-Match / If-None-Match for conditional puts,
//           ?consistency=stable for stable reads, GET /v1/watch?prefix= (Server-Sent Events).
//   etcd    the etcd 3.4 JSON gateway: POST /v3/kv/put, /v3/kv/range (serializable=true for
//           stable reads), /v3/kv/txn for compare-and-swap on mod_revision, and POST /v3/watch
//           (a stream of newline-delimited JSON messages); keys and values in base64.
//
// A "version" is Squall's key version or etcd's mod_revision; 0 means "the key is absent" in
// both (etcd compares a missing key's mod_revision as 0; Squall's If-None-Match: *).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http.hpp>

#include "common/base64.hpp"
#include "common/status.hpp"

namespace squall::loadgen {

enum class Target : std::uint8_t { squall, etcd };
// put, linearizable get, stable (Squall) / serializable (etcd) get, conditional put.
enum class OpKind : std::uint8_t { put, get, stable_get, cas };
inline constexpr int kOpKinds = 4;

std::string_view target_name(Target target);
Result<Target> parse_target(std::string_view name);
std::string_view op_name(OpKind kind);
Result<OpKind> parse_op(std::string_view name);

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

using ::squall::base64_decode;  // common/base64.hpp
using ::squall::base64_encode;
// Percent-encodes a key for a Squall path (unreserved characters and '/' stay as they are).
std::string percent_encode_key(std::string_view key);
// The smallest key greater than every key starting with `prefix` (etcd's range_end); empty
// when there is none (prefix of 0xff bytes only).
std::string prefix_end(std::string_view prefix);

// A value prepared once per connection: etcd sends it base64-encoded, so large values are
// encoded once, not per request.
struct PreparedValue {
  std::string raw;
  std::string base64;
};
PreparedValue prepare_value(Target target, std::string raw);

// The request for one operation; `expected_version` is used by cas only (0: key absent).
HttpRequest build_request(Target target, OpKind kind, std::string_view host,
                          std::string_view key, const PreparedValue& value,
                          std::uint64_t expected_version);

// What an answer meant. ok and the two outcomes below are not errors: a cas that lost the
// race (cas_conflict) or a get of an absent key (not_found) are normal results a workload
// counts; `error` carries a short kind ("http_503", "bad_response", "short_value").
enum class Outcome : std::uint8_t { ok, not_found, cas_conflict, error };

struct Reply {
  Outcome outcome = Outcome::error;
  // The key's version after a put / cas, the version read by a get, the current version
  // reported by a failed cas (0: absent); none when the answer does not say.
  std::optional<std::uint64_t> version;
  std::string error;
};

// `expected_value_bytes` checks a get's value length (a damaged or foreign value is an
// error); pass none to skip the check.
Reply interpret_response(Target target, OpKind kind, const HttpResponse& response,
                         std::optional<std::size_t> expected_value_bytes);

// Watch streams.
HttpRequest build_watch_request(Target target, std::string_view host, std::string_view prefix);

// Every event value (decoded) found in one record of a watch stream — an SSE event block
// (Squall) or one JSON message line (etcd) — appended to `values`. A record with none (etcd's
// created message, SSE comments and keepalives) appends nothing.
Status values_of_record(Target target, std::string_view record,
                        std::vector<std::string>* values);

// Incremental parser of a watch stream's body: feed() the bytes as they arrive; each complete
// event's value goes to the callback.
class WatchStreamParser {
 public:
  explicit WatchStreamParser(Target target, std::size_t max_buffered_bytes = 64 << 20)
      : target_(target), max_buffered_bytes_(max_buffered_bytes) {}

  // Calls on_value(const std::string&) per event value; an error for a malformed record or
  // one over the buffer limit.
  template <typename OnValue>
  Status feed(std::string_view bytes, OnValue&& on_value) {
    pending_.append(bytes.data(), bytes.size());
    const std::string_view separator = target_ == Target::squall ? "\n\n" : "\n";
    std::size_t start = 0;
    while (true) {
      const std::size_t end = pending_.find(separator, start);
      if (end == std::string::npos) break;
      values_.clear();
      SQUALL_TRY(values_of_record(
          target_, std::string_view(pending_).substr(start, end - start), &values_));
      start = end + separator.size();
      if (values_.empty()) ++control_messages_;
      for (const std::string& value : values_) on_value(value);
    }
    pending_.erase(0, start);
    if (pending_.size() > max_buffered_bytes_) {
      return invalid_argument("watch stream: a record over the buffer limit");
    }
    return Status::ok();
  }
  // Records that carried no event (etcd created/progress, SSE comments and keepalives).
  std::uint64_t control_messages() const { return control_messages_; }

 private:
  Target target_;
  std::size_t max_buffered_bytes_;
  std::string pending_;
  std::vector<std::string> values_;
  std::uint64_t control_messages_ = 0;
};

}  // namespace squall::loadgen
