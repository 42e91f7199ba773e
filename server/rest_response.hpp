// Building the REST API's responses: JSON bodies, the error body of the contract
// ({"error": code, "message": text}) and the mapping from Status codes to HTTP statuses.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/base64.hpp"
#include "common/status.hpp"
#include "common/version.hpp"
#include "server/http_types.hpp"

namespace squall::server {

using HttpStatus = boost::beast::http::status;

// `body` serialized (invalid UTF-8 replaced, never thrown), Content-Type application/json.
HttpResponse json_response(HttpStatus status, const nlohmann::json& body);

// The contract's error body. `code` is one of the contract's codes ("bad_request", ...).
HttpResponse error_response(HttpStatus status, std::string_view code, std::string_view message);

// A backend error: invalid_argument 400, not_found 404, out_of_range 410, the transient
// codes 503 with Retry-After, anything else 500.
HttpResponse status_response(const Status& status, std::uint32_t retry_after_s);

// 503 unavailable with Retry-After.
HttpResponse unavailable_response(std::string_view message, std::uint32_t retry_after_s);

// 412 with "current_version": the version, or null when the key is absent or deleted.
HttpResponse precondition_failed_response(std::optional<Version> current_version);

// 405 with Allow.
HttpResponse method_not_allowed_response(std::string_view allow);

// "\"<version>\"", the ETag of a version.
std::string etag(Version version);

using ::squall::base64_encode;  // common/base64.hpp

}  // namespace squall::server
