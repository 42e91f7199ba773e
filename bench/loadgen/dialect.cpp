#include "bench/loadgen/dialect.hpp"

#include <array>
#include <charconv>

#include <nlohmann/json.hpp>

namespace squall::loadgen {

namespace http = boost::beast::http;
using nlohmann::json;

namespace {



std::optional<std::uint64_t> parse_u64(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    return std::nullopt;
  }
  return value;
}

// etcd's gateway writes int64 fields as JSON strings; accept numbers too.
std::optional<std::uint64_t> json_u64(const json& object, const char* field) {
  const auto found = object.find(field);
  if (found == object.end()) return std::nullopt;
  if (found->is_string()) return parse_u64(found->get_ref<const std::string&>());
  if (found->is_number_unsigned()) return found->get<std::uint64_t>();
  return std::nullopt;
}

// The version in a Squall ETag: "<v>" with the quotes.
std::optional<std::uint64_t> etag_version(const HttpResponse& response) {
  const auto found = response.find(http::field::etag);
  if (found == response.end()) return std::nullopt;
  std::string_view text(found->value().data(), found->value().size());
  if (text.size() < 2 || text.front() != '"' || text.back() != '"') return std::nullopt;
  return parse_u64(text.substr(1, text.size() - 2));
}

Reply error_reply(std::string kind) {
  Reply reply;
  reply.outcome = Outcome::error;
  reply.error = std::move(kind);
  return reply;
}

Reply ok_reply(Outcome outcome, std::optional<std::uint64_t> version) {
  Reply reply;
  reply.outcome = outcome;
  reply.version = version;
  return reply;
}

std::string http_error(unsigned status) { return "http_" + std::to_string(status); }

std::size_t base64_decoded_size(std::string_view text) {
  std::size_t size = text.size() / 4 * 3;
  if (!text.empty() && text.back() == '=') --size;
  if (text.size() >= 2 && text[text.size() - 2] == '=') --size;
  return size;
}

Reply interpret_squall(OpKind kind, const HttpResponse& response,
                       std::optional<std::size_t> expected_value_bytes) {
  const unsigned status = response.result_int();
  if (kind == OpKind::get || kind == OpKind::stable_get) {
    if (status == 404) return ok_reply(Outcome::not_found, std::nullopt);
    if (status != 200) return error_reply(http_error(status));
    if (expected_value_bytes && response.body().size() != *expected_value_bytes) {
      return error_reply("short_value");
    }
    return ok_reply(Outcome::ok, etag_version(response));
  }
  if (status == 200 || status == 201) return ok_reply(Outcome::ok, etag_version(response));
  if (kind == OpKind::cas && status == 412) {
    const json body = json::parse(response.body(), nullptr, false);
    if (body.is_discarded() || !body.is_object()) return error_reply("bad_response");
    const auto current = body.find("current_version");
    if (current == body.end()) return error_reply("bad_response");
    if (current->is_null()) return ok_reply(Outcome::cas_conflict, 0);
    if (!current->is_number_unsigned()) return error_reply("bad_response");
    return ok_reply(Outcome::cas_conflict, current->get<std::uint64_t>());
  }
  return error_reply(http_error(status));
}

Reply interpret_etcd_range(const json& body, std::optional<std::size_t> expected_value_bytes) {
  const auto kvs = body.find("kvs");
  if (kvs == body.end() || !kvs->is_array() || kvs->empty()) {
    return ok_reply(Outcome::not_found, std::nullopt);
  }
  const json& kv = kvs->front();
  const auto revision = json_u64(kv, "mod_revision");
  if (!revision) return error_reply("bad_response");
  if (expected_value_bytes) {
    const auto value = kv.find("value");
    const std::size_t size =
        value != kv.end() && value->is_string()
            ? base64_decoded_size(value->get_ref<const std::string&>())
            : 0;
    if (size != *expected_value_bytes) return error_reply("short_value");
  }
  return ok_reply(Outcome::ok, revision);
}

// A failed txn: the failure branch's range tells the key's current mod_revision.
Reply interpret_etcd_txn_failure(const json& body) {
  const auto responses = body.find("responses");
  if (responses == body.end() || !responses->is_array() || responses->empty()) {
    return error_reply("bad_response");
  }
  const auto range = responses->front().find("response_range");
  if (range == responses->front().end()) return error_reply("bad_response");
  const Reply read = interpret_etcd_range(*range, std::nullopt);
  if (read.outcome == Outcome::error) return read;
  return ok_reply(Outcome::cas_conflict, read.version.value_or(0));
}

Reply interpret_etcd(OpKind kind, const HttpResponse& response,
                     std::optional<std::size_t> expected_value_bytes) {
  const unsigned status = response.result_int();
  if (status != 200) return error_reply(http_error(status));
  const json body = json::parse(response.body(), nullptr, false);
  if (body.is_discarded() || !body.is_object()) return error_reply("bad_response");
  const auto header = body.find("header");
  if (header == body.end() || !header->is_object()) return error_reply("bad_response");
  switch (kind) {
    case OpKind::put:
      return ok_reply(Outcome::ok, json_u64(*header, "revision"));
    case OpKind::get:
    case OpKind::stable_get:
      return interpret_etcd_range(body, expected_value_bytes);
    case OpKind::cas: {
      const auto succeeded = body.find("succeeded");
      if (succeeded != body.end() && succeeded->is_boolean() && succeeded->get<bool>()) {
        return ok_reply(Outcome::ok, json_u64(*header, "revision"));
      }
      return interpret_etcd_txn_failure(body);
    }
  }
  SQUALL_UNREACHABLE("op kind {}", static_cast<int>(kind));
}

HttpRequest base_request(http::verb verb, std::string target, std::string_view host) {
  HttpRequest request(verb, std::move(target), 11);
  request.set(http::field::host, std::string(host));
  request.keep_alive(true);
  return request;
}

HttpRequest etcd_post(std::string_view path, std::string_view host, std::string body) {
  HttpRequest request = base_request(http::verb::post, std::string(path), host);
  request.set(http::field::content_type, "application/json");
  request.body() = std::move(body);
  request.prepare_payload();
  return request;
}

HttpRequest build_squall(OpKind kind, std::string_view host, std::string_view key,
                         const PreparedValue& value, std::uint64_t expected_version) {
  std::string target = "/v1/kv/" + percent_encode_key(key);
  if (kind == OpKind::get || kind == OpKind::stable_get) {
    if (kind == OpKind::stable_get) target += "?consistency=stable";
    HttpRequest request = base_request(http::verb::get, std::move(target), host);
    return request;
  }
  HttpRequest request = base_request(http::verb::put, std::move(target), host);
  if (kind == OpKind::cas) {
    if (expected_version == 0) {
      request.set(http::field::if_none_match, "*");
    } else {
      request.set(http::field::if_match, "\"" + std::to_string(expected_version) + "\"");
    }
  }
  request.set(http::field::content_type, "application/octet-stream");
  request.body() = value.raw;
  request.prepare_payload();
  return request;
}

HttpRequest build_etcd(OpKind kind, std::string_view host, std::string_view key,
                       const PreparedValue& value, std::uint64_t expected_version) {
  const std::string key64 = base64_encode(key);
  switch (kind) {
    case OpKind::put:
      return etcd_post("/v3/kv/put", host,
                       "{\"key\":\"" + key64 + "\",\"value\":\"" + value.base64 + "\"}");
    case OpKind::get:
    case OpKind::stable_get:
      return etcd_post("/v3/kv/range", host,
                       "{\"key\":\"" + key64 + "\"" +
                           (kind == OpKind::stable_get ? ",\"serializable\":true}" : "}"));
    case OpKind::cas:
      return etcd_post(
          "/v3/kv/txn", host,
          "{\"compare\":[{\"key\":\"" + key64 +
              "\",\"result\":\"EQUAL\",\"target\":\"MOD\",\"mod_revision\":\"" +
              std::to_string(expected_version) + "\"}],\"success\":[{\"request_put\":{\"key\":\"" +
              key64 + "\",\"value\":\"" + value.base64 +
              "\"}}],\"failure\":[{\"request_range\":{\"key\":\"" + key64 +
              "\",\"keys_only\":true}}]}");
  }
  SQUALL_UNREACHABLE("op kind {}", static_cast<int>(kind));
}

}  // namespace

std::string_view target_name(Target target) {
  return target == Target::squall ? "squall" : "etcd";
}

Result<Target> parse_target(std::string_view name) {
  if (name == "squall") return Target::squall;
  if (name == "etcd") return Target::etcd;
  return invalid_argument("unknown target '" + std::string(name) + "' (squall or etcd)");
}

std::string_view op_name(OpKind kind) {
  switch (kind) {
    case OpKind::put: return "put";
    case OpKind::get: return "get";
    case OpKind::stable_get: return "stable_get";
    case OpKind::cas: return "cas";
  }
  SQUALL_UNREACHABLE("op kind {}", static_cast<int>(kind));
}

Result<OpKind> parse_op(std::string_view name) {
  for (int i = 0; i < kOpKinds; ++i) {
    if (op_name(static_cast<OpKind>(i)) == name) return static_cast<OpKind>(i);
  }
  return invalid_argument("unknown operation '" + std::string(name) +
                          "' (put, get, stable_get, cas)");
}

std::string percent_encode_key(std::string_view key) {
  static constexpr std::string_view kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(key.size());
  for (const char c : key) {
    const auto byte = static_cast<unsigned char>(c);
    const bool unreserved = (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') ||
                            (byte >= '0' && byte <= '9') || c == '-' || c == '_' || c == '.' ||
                            c == '~' || c == '/';
    if (unreserved) {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    }
  }
  return out;
}

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return end;
}

PreparedValue prepare_value(Target target, std::string raw) {
  PreparedValue value;
  if (target == Target::etcd) value.base64 = base64_encode(raw);
  value.raw = std::move(raw);
  return value;
}

HttpRequest build_request(Target target, OpKind kind, std::string_view host,
                          std::string_view key, const PreparedValue& value,
                          std::uint64_t expected_version) {
  return target == Target::squall ? build_squall(kind, host, key, value, expected_version)
                                  : build_etcd(kind, host, key, value, expected_version);
}

Reply interpret_response(Target target, OpKind kind, const HttpResponse& response,
                         std::optional<std::size_t> expected_value_bytes) {
  return target == Target::squall ? interpret_squall(kind, response, expected_value_bytes)
                                  : interpret_etcd(kind, response, expected_value_bytes);
}

HttpRequest build_watch_request(Target target, std::string_view host, std::string_view prefix) {
  if (target == Target::squall) {
    return base_request(http::verb::get, "/v1/watch?prefix=" + percent_encode_key(prefix), host);
  }
  return etcd_post("/v3/watch", host,
                   "{\"create_request\":{\"key\":\"" + base64_encode(prefix) +
                       "\",\"range_end\":\"" + base64_encode(prefix_end(prefix)) + "\"}}");
}

namespace {

// Appends the decoded base64 string that follows each `"<field>":"` in `text`.
Status decode_fields(std::string_view text, std::string_view field,
                     std::vector<std::string>* values) {
  const std::string needle = "\"" + std::string(field) + "\":\"";
  std::size_t at = 0;
  while ((at = text.find(needle, at)) != std::string_view::npos) {
    at += needle.size();
    const std::size_t end = text.find('"', at);
    if (end == std::string_view::npos) return invalid_argument("watch: unterminated value");
    auto decoded = base64_decode(text.substr(at, end - at));
    if (!decoded) return decoded.status();
    values->push_back(std::move(decoded).value());
    at = end + 1;
  }
  return Status::ok();
}

}  // namespace

Status values_of_record(Target target, std::string_view record,
                        std::vector<std::string>* values) {
  if (target == Target::etcd) {
    if (record.find("\"error\"") != std::string_view::npos) {
      return unavailable("etcd watch: " + std::string(record.substr(0, 200)));
    }
    // Every event's kv carries "value" (an absent field means an empty value: proto3 JSON
    // omits defaults); the key field is "key", never "value".
    return decode_fields(record, "value", values);
  }
  // An SSE event: lines "id:", "event:", "data:"; comments start with ':'.
  std::size_t line_start = 0;
  while (line_start < record.size()) {
    std::size_t line_end = record.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = record.size();
    const std::string_view line = record.substr(line_start, line_end - line_start);
    if (line.starts_with("data:")) SQUALL_TRY(decode_fields(line, "value_base64", values));
    line_start = line_end + 1;
  }
  return Status::ok();
}

}  // namespace squall::loadgen
