// The key-value routes of RestApi: GET/PUT/DELETE /v1/kv/{key}, GET /v1/kv, GET /v1/history.
#include <fmt/format.h>

#include "server/rest_api.hpp"
#include "server/rest_response.hpp"

namespace squall::server {
namespace http = boost::beast::http;

namespace {

void set_version_headers(HttpResponse& response, Version version, std::uint64_t timestamp_us) {
  response.set(http::field::etag, etag(version));
  response.set("Squall-Version", std::to_string(version));
  response.set("Squall-Timestamp-Us", std::to_string(timestamp_us));
}

HttpResponse value_response(const GetResult& result) {
  HttpResponse response{HttpStatus::ok, 11};
  response.set(http::field::content_type, "application/octet-stream");
  set_version_headers(response, result.version, result.timestamp_us);
  response.body() = result.value;
  return response;
}

HttpResponse written_response(const std::string& key, const WriteResult& result, bool put) {
  nlohmann::json body = {
      {"key", key}, {"version", result.version}, {"timestamp_us", result.timestamp_us}};
  if (put) body["shard"] = result.shard.value;
  HttpResponse response =
      json_response(put && result.created ? HttpStatus::created : HttpStatus::ok, body);
  set_version_headers(response, result.version, result.timestamp_us);
  return response;
}

// The answer to a write's completion.
HttpResponse write_answer(const std::string& key, const Result<WriteResult>& result, bool put,
                          std::uint32_t retry_after_s) {
  if (!result.is_ok()) return status_response(result.status(), retry_after_s);
  switch (result.value().outcome) {
    case WriteOutcome::written: return written_response(key, result.value(), put);
    case WriteOutcome::precondition_failed:
      return precondition_failed_response(result.value().current_version);
    case WriteOutcome::not_found:
      return error_response(HttpStatus::not_found, "not_found", "the key does not exist");
  }
  SQUALL_UNREACHABLE("write outcome {}", static_cast<int>(result.value().outcome));
}

nlohmann::json list_json(const ListResult& result) {
  nlohmann::json items = nlohmann::json::array();
  for (const ListItem& item : result.items) {
    nlohmann::json entry = {{"key", item.key},
                            {"version", item.version},
                            {"timestamp_us", item.timestamp_us},
                            {"size", item.size_bytes}};
    if (item.value) entry["value_base64"] = base64_encode(*item.value);
    items.push_back(std::move(entry));
  }
  return {{"items", std::move(items)},
          {"next", result.next ? nlohmann::json(*result.next) : nlohmann::json(nullptr)}};
}

nlohmann::json history_json(const std::string& key, const HistoryResult& result) {
  nlohmann::json versions = nlohmann::json::array();
  for (const HistoryVersion& version : result.versions) {
    versions.push_back({{"version", version.version},
                        {"timestamp_us", version.timestamp_us},
                        {"op", version.deleted ? "delete" : "put"},
                        {"size", version.size_bytes}});
  }
  return {{"key", key},
          {"versions", std::move(versions)},
          {"next", result.next ? nlohmann::json(*result.next) : nlohmann::json(nullptr)}};
}

// The header's value, and whether the request has it.
std::pair<std::string_view, bool> header(const HttpRequest& request, http::field field) {
  const auto found = request.find(field);
  if (found == request.end()) return {{}, false};
  return {to_std(found->value()), true};
}

// The request's precondition. A header given on several lines is one list (RFC 9110 5.3),
// and lists of versions are not supported: refused rather than reading only the first line.
Result<Precondition> precondition_of(const HttpRequest& request, bool allow_if_none_match) {
  for (http::field field : {http::field::if_match, http::field::if_none_match}) {
    if (request.count(field) > 1) {
      return invalid_argument(fmt::format("{} given more than once (lists are not supported)",
                                          to_std(http::to_string(field))));
    }
  }
  const auto [if_match, has_if_match] = header(request, http::field::if_match);
  const auto [if_none_match, has_if_none_match] = header(request, http::field::if_none_match);
  return parse_precondition(if_match, has_if_match, if_none_match, has_if_none_match,
                            allow_if_none_match);
}

}  // namespace

Result<std::string> RestApi::decode_key(std::string_view encoded,
                                        const HttpResponder& respond) const {
  auto key = percent_decode(encoded, false);
  if (!key.is_ok()) {
    respond(error_response(HttpStatus::bad_request, "bad_request", key.status().message()));
    return key.status();
  }
  const Status valid = validate_key(key.value(), limits_.max_key_bytes);
  if (valid.code() == Code::out_of_range) {
    respond(error_response(HttpStatus::uri_too_long, "uri_too_long", valid.message()));
    return valid;
  }
  if (!valid.is_ok()) {
    respond(error_response(HttpStatus::bad_request, "bad_request", valid.message()));
    return valid;
  }
  return key;
}

void RestApi::get_key(std::string key, const Query& query, const HttpResponder& respond) {
  auto at = query.read_point();
  if (!at.is_ok()) return respond(status_response(at.status(), 0));
  auto consistency = query.consistency();
  if (!consistency.is_ok()) return respond(status_response(consistency.status(), 0));
  GetRequest request{std::move(key), at.value(), consistency.value()};
  backend_.get(std::move(request), [respond, retry = backend_.retry_after_s()](
                                       Result<GetResult> result) {
    if (!result.is_ok()) return respond(status_response(result.status(), retry));
    respond(value_response(result.value()));
  });
}

void RestApi::put_key(std::string key, HttpRequest& request, const HttpResponder& respond) {
  auto precondition = precondition_of(request, true);
  if (!precondition.is_ok()) return respond(status_response(precondition.status(), 0));
  PutRequest put{key, std::move(request.body()), precondition.value()};
  backend_.put(std::move(put), [respond, key = std::move(key), retry = backend_.retry_after_s()](
                                   Result<WriteResult> result) {
    respond(write_answer(key, result, true, retry));
  });
}

void RestApi::delete_key(std::string key, const HttpRequest& request,
                         const HttpResponder& respond) {
  auto precondition = precondition_of(request, false);
  if (!precondition.is_ok()) return respond(status_response(precondition.status(), 0));
  DeleteRequest remove{key, precondition.value()};
  backend_.remove(std::move(remove),
                  [respond, key = std::move(key), retry = backend_.retry_after_s()](
                      Result<WriteResult> result) {
                    respond(write_answer(key, result, false, retry));
                  });
}

void RestApi::list_keys(const Query& query, const HttpResponder& respond) {
  ListRequest request;
  auto prefix = query.text("prefix");
  auto start_after = query.text("start_after");
  auto limit = query.limit(limits_.default_list_limit, limits_.max_list_limit);
  auto at = query.read_point();
  auto consistency = query.consistency();
  auto values = query.flag("values", false);
  auto shard = query.number("shard");  // a node's per-shard page (docs/consistency.md)
  for (const Status* status : {&prefix.status(), &start_after.status(), &limit.status(),
                               &at.status(), &consistency.status(), &values.status(),
                               &shard.status()}) {
    if (!status->is_ok()) return respond(status_response(*status, 0));
  }
  request.prefix = prefix.value().value_or("");
  request.start_after = start_after.value().value_or("");
  if (request.prefix.size() > limits_.max_key_bytes ||
      request.start_after.size() > limits_.max_key_bytes) {
    return respond(error_response(HttpStatus::bad_request, "bad_request",
                                  "prefix and start_after must not exceed the key limit"));
  }
  request.limit = limit.value();
  request.at = at.value();
  request.consistency = consistency.value();
  request.values = values.value();
  if (shard.value()) {
    if (*shard.value() > UINT32_MAX) {
      return respond(status_response(invalid_argument("shard out of range"), 0));
    }
    request.shard = ShardId{static_cast<std::uint32_t>(*shard.value())};
  }
  backend_.list(std::move(request), [respond, retry = backend_.retry_after_s()](
                                        Result<ListResult> result) {
    if (!result.is_ok()) return respond(status_response(result.status(), retry));
    respond(json_response(HttpStatus::ok, list_json(result.value())));
  });
}

void RestApi::history(std::string key, const Query& query, const HttpResponder& respond) {
  auto limit = query.limit(limits_.default_list_limit, limits_.max_list_limit);
  if (!limit.is_ok()) return respond(status_response(limit.status(), 0));
  auto before = query.number("before");
  if (!before.is_ok()) return respond(status_response(before.status(), 0));
  HistoryRequest request{key, before.value(), limit.value()};
  backend_.history(std::move(request),
                   [respond, key = std::move(key), retry = backend_.retry_after_s()](
                       Result<HistoryResult> result) {
                     if (!result.is_ok()) return respond(status_response(result.status(), retry));
                     respond(json_response(HttpStatus::ok, history_json(key, result.value())));
                   });
}

}  // namespace squall::server
