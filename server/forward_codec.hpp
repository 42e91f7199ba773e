// The typed requests of KvBackend as HTTP requests to another node, and that node's answers
// back as typed results (the REST contract of docs/api.md in both directions).
#pragma once

#include "common/base64.hpp"

#include "server/http_types.hpp"
#include "server/kv_backend.hpp"

namespace squall::server {

HttpRequest forward_request(const PutRequest& request);
HttpRequest forward_request(const DeleteRequest& request);
HttpRequest forward_request(const GetRequest& request);
HttpRequest forward_request(const ListRequest& request);
HttpRequest forward_request(const HistoryRequest& request);

// An answer's error as a Status (400 invalid_argument, 404 not_found, 410 out_of_range, 503
// unavailable, anything else internal io_error).
Status answer_status(const HttpResponse& response);

Result<WriteResult> parse_write_answer(const HttpResponse& response);
Result<GetResult> parse_get_answer(const HttpResponse& response);
Result<ListResult> parse_list_answer(const HttpResponse& response);
Result<HistoryResult> parse_history_answer(const HttpResponse& response);

using ::squall::base64_decode;  // common/base64.hpp

}  // namespace squall::server
