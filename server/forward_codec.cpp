#include "server/forward_codec.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "server/rest_parse.hpp"

namespace squall::server {
namespace http = boost::beast::http;

namespace {

HttpRequest make_request(http::verb verb, std::string target) {
  HttpRequest request{verb, target, 11};
  request.set(http::field::user_agent, "squalld-forward");
  return request;
}

void set_precondition(HttpRequest& request, const Precondition& precondition) {
  switch (precondition.kind) {
    case Precondition::Kind::none: break;
    case Precondition::Kind::version_is:
      request.set(http::field::if_match, fmt::format("\"{}\"", precondition.version));
      break;
    case Precondition::Kind::exists: request.set(http::field::if_match, "*"); break;
    case Precondition::Kind::absent: request.set(http::field::if_none_match, "*"); break;
  }
}

std::string read_point_query(ReadPoint at) {
  switch (at.kind) {
    case ReadPoint::Kind::latest: return {};
    case ReadPoint::Kind::version: return fmt::format("&version={}", at.value);
    case ReadPoint::Kind::time: return fmt::format("&at={}", at.value);
  }
  return {};
}

std::string_view consistency_name(Consistency consistency) {
  return consistency == Consistency::stable ? "stable" : "linearizable";
}

std::string key_path(std::string_view route, const std::string& key) {
  return fmt::format("{}{}", route, percent_encode(key, true));
}

Result<nlohmann::json> json_body(const HttpResponse& response) {
  nlohmann::json body = nlohmann::json::parse(response.body(), nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return io_error("a forwarded request's answer is not a JSON object");
  }
  return body;
}

Result<std::uint64_t> header_u64(const HttpResponse& response, std::string_view name) {
  auto found = response.find(boost::beast::string_view(name.data(), name.size()));
  if (found == response.end()) return io_error(fmt::format("answer without {}", name));
  auto value = parse_u64(to_std(found->value()));
  if (!value) return io_error(fmt::format("answer with a bad {}", name));
  return value.value();
}

}  // namespace

HttpRequest forward_request(const PutRequest& request) {
  HttpRequest out = make_request(http::verb::put, key_path("/v1/kv/", request.key));
  set_precondition(out, request.precondition);
  out.body() = request.value;
  out.prepare_payload();
  return out;
}

HttpRequest forward_request(const DeleteRequest& request) {
  HttpRequest out = make_request(http::verb::delete_, key_path("/v1/kv/", request.key));
  set_precondition(out, request.precondition);
  out.prepare_payload();
  return out;
}

HttpRequest forward_request(const GetRequest& request) {
  std::string target = fmt::format("{}?consistency={}{}", key_path("/v1/kv/", request.key),
                                   consistency_name(request.consistency),
                                   read_point_query(request.at));
  HttpRequest out = make_request(http::verb::get, std::move(target));
  out.prepare_payload();
  return out;
}

HttpRequest forward_request(const ListRequest& request) {
  std::string target = fmt::format(
      "/v1/kv?prefix={}&start_after={}&limit={}&consistency={}&values={}{}",
      percent_encode(request.prefix, false), percent_encode(request.start_after, false),
      request.limit, consistency_name(request.consistency), request.values ? "true" : "false",
      read_point_query(request.at));
  if (request.shard) target += fmt::format("&shard={}", request.shard->value);
  HttpRequest out = make_request(http::verb::get, std::move(target));
  out.prepare_payload();
  return out;
}

HttpRequest forward_request(const HistoryRequest& request) {
  std::string target = fmt::format("{}?limit={}", key_path("/v1/history/", request.key),
                                   request.limit);
  if (request.before) target += fmt::format("&before={}", *request.before);
  HttpRequest out = make_request(http::verb::get, std::move(target));
  out.prepare_payload();
  return out;
}

Status answer_status(const HttpResponse& response) {
  std::string message = "forwarded";
  if (auto body = json_body(response); body.is_ok() && body->contains("message") &&
                                       (*body)["message"].is_string()) {
    message = (*body)["message"].get<std::string>();
  }
  switch (response.result()) {
    case http::status::bad_request: return invalid_argument(message);
    case http::status::not_found: return not_found(message);
    case http::status::gone: return Status(Code::out_of_range, message);
    case http::status::service_unavailable: return unavailable(message);
    default:
      return io_error(fmt::format("forwarded request answered {}: {}",
                                  response.result_int(), message));
  }
}

Result<WriteResult> parse_write_answer(const HttpResponse& response) {
  WriteResult result;
  const unsigned status = response.result_int();
  if (status == 404) {
    result.outcome = WriteOutcome::not_found;
    return result;
  }
  if (status != 200 && status != 201 && status != 412) return answer_status(response);
  auto body = json_body(response);
  if (!body) return body.status();
  try {
    if (status == 412) {
      result.outcome = WriteOutcome::precondition_failed;
      const auto& current = body->at("current_version");
      if (!current.is_null()) result.current_version = current.get<Version>();
      return result;
    }
    result.created = status == 201;
    result.version = body->at("version").get<Version>();
    result.timestamp_us = body->at("timestamp_us").get<std::uint64_t>();
    if (body->contains("shard")) result.shard = ShardId{body->at("shard").get<std::uint32_t>()};
  } catch (const nlohmann::json::exception& error) {
    return io_error(fmt::format("malformed forwarded answer: {}", error.what()));
  }
  return result;
}

Result<GetResult> parse_get_answer(const HttpResponse& response) {
  if (response.result_int() != 200) return answer_status(response);
  GetResult result;
  auto version = header_u64(response, "Squall-Version");
  if (!version) return version.status();
  auto timestamp = header_u64(response, "Squall-Timestamp-Us");
  if (!timestamp) return timestamp.status();
  result.version = version.value();
  result.timestamp_us = timestamp.value();
  result.value = response.body();
  return result;
}

Result<ListResult> parse_list_answer(const HttpResponse& response) {
  if (response.result_int() != 200) return answer_status(response);
  auto body = json_body(response);
  if (!body) return body.status();
  ListResult result;
  try {
    for (const auto& item : body->at("items")) {
      ListItem out;
      out.key = item.at("key").get<std::string>();
      out.version = item.at("version").get<Version>();
      out.timestamp_us = item.at("timestamp_us").get<std::uint64_t>();
      out.size_bytes = item.at("size").get<std::uint64_t>();
      if (item.contains("value_base64")) {
        auto value = base64_decode(item.at("value_base64").get<std::string>());
        if (!value) return io_error("malformed value in a forwarded list");
        out.value = std::move(value).value();
      }
      result.items.push_back(std::move(out));
    }
    const auto& next = body->at("next");
    if (!next.is_null()) result.next = next.get<std::string>();
  } catch (const nlohmann::json::exception& error) {
    return io_error(fmt::format("malformed forwarded list: {}", error.what()));
  }
  return result;
}

Result<HistoryResult> parse_history_answer(const HttpResponse& response) {
  if (response.result_int() != 200) return answer_status(response);
  auto body = json_body(response);
  if (!body) return body.status();
  HistoryResult result;
  try {
    for (const auto& version : body->at("versions")) {
      result.versions.push_back(HistoryVersion{version.at("version").get<Version>(),
                                               version.at("timestamp_us").get<std::uint64_t>(),
                                               version.at("op").get<std::string>() == "delete",
                                               version.at("size").get<std::uint64_t>()});
    }
    const auto& next = body->at("next");
    if (!next.is_null()) result.next = next.get<Version>();
  } catch (const nlohmann::json::exception& error) {
    return io_error(fmt::format("malformed forwarded history: {}", error.what()));
  }
  return result;
}

}  // namespace squall::server
