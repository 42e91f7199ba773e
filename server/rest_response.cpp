#include "server/rest_response.hpp"

#include <fmt/format.h>

namespace squall::server {
namespace http = boost::beast::http;

HttpResponse json_response(HttpStatus status, const nlohmann::json& body) {
  HttpResponse response{status, 11};
  response.set(http::field::content_type, "application/json");
  // Keys are validated UTF-8, but messages may quote raw input: replace, never throw.
  response.body() = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  response.body() += '\n';
  return response;
}

HttpResponse error_response(HttpStatus status, std::string_view code, std::string_view message) {
  return json_response(status, {{"error", code}, {"message", message}});
}

HttpResponse unavailable_response(std::string_view message, std::uint32_t retry_after_s) {
  HttpResponse response =
      error_response(HttpStatus::service_unavailable, "unavailable", message);
  response.set(http::field::retry_after, std::to_string(retry_after_s));
  return response;
}

HttpResponse status_response(const Status& status, std::uint32_t retry_after_s) {
  switch (status.code()) {
    case Code::invalid_argument:
      return error_response(HttpStatus::bad_request, "bad_request", status.message());
    case Code::not_found:
      return error_response(HttpStatus::not_found, "not_found", status.message());
    case Code::out_of_range:
      return error_response(HttpStatus::gone, "gone", status.message());
    case Code::precondition_failed:
      return precondition_failed_response(std::nullopt);
    case Code::unavailable:
    case Code::timed_out:
    case Code::aborted:
    case Code::would_block:
    case Code::no_space:
      return unavailable_response(status.to_string(), retry_after_s);
    default:
      return error_response(HttpStatus::internal_server_error, "internal", status.to_string());
  }
}

HttpResponse precondition_failed_response(std::optional<Version> current_version) {
  nlohmann::json body = {{"error", "precondition_failed"},
                         {"message", current_version ? "the key's current version differs"
                                                     : "the key does not exist"}};
  body["current_version"] =
      current_version ? nlohmann::json(*current_version) : nlohmann::json(nullptr);
  return json_response(HttpStatus::precondition_failed, body);
}

HttpResponse method_not_allowed_response(std::string_view allow) {
  HttpResponse response = error_response(HttpStatus::method_not_allowed, "method_not_allowed",
                                         fmt::format("allowed methods: {}", allow));
  response.set(http::field::allow, std::string(allow));
  return response;
}

std::string etag(Version version) { return fmt::format("\"{}\"", version); }

}  // namespace squall::server
