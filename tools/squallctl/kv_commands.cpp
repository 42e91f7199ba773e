// put, cas, get, del, ls, history.
#include <algorithm>
#include <iostream>
#include <iterator>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/squallctl/commands.hpp"
#include "tools/squallctl/format.hpp"

namespace squall::ctl {
using nlohmann::json;

namespace {

Result<json> parse_json(const HttpReply& reply) {
  json body = json::parse(reply.body, nullptr, false);
  if (body.is_discarded()) {
    return Status(Code::corruption, reply.endpoint + ": the answer is not JSON");
  }
  return body;
}

// The fields of a value for JSON output: "value" when it is text, always "value_base64".
void add_value(json& out, const std::string& value) {
  if (is_utf8(value)) out["value"] = value;
  out["value_base64"] = base64_encode(value);
}

HeaderList condition_headers(Condition condition, std::uint64_t version) {
  switch (condition) {
    case Condition::none:
      return {};
    case Condition::version_is:
      return {{"If-Match", fmt::format("\"{}\"", version)}};
    case Condition::exists:
      return {{"If-Match", "*"}};
    case Condition::absent:
      return {{"If-None-Match", "*"}};
  }
  return {};
}

void print_write(Context& context, const json& body, std::string_view what) {
  if (context.json) {
    context.out << body.dump() << "\n";
    return;
  }
  context.out << fmt::format("{} {} version {} at {}\n", body.value("key", ""), what,
                             body.value("version", std::uint64_t{0}),
                             format_time_us(body.value("timestamp_us", std::uint64_t{0})));
}

}  // namespace

int report_error(Context& context, const HttpReply& reply) {
  json body = json::parse(reply.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) body = json::object();
  body["status"] = reply.status;
  body["endpoint"] = reply.endpoint;
  if (context.json) {
    context.err << body.dump() << "\n";
    return exit_code_for_status(reply.status);
  }
  std::string line = fmt::format("squallctl: {} {}: {}", reply.status,
                                 body.value("error", std::string("error")),
                                 body.value("message", std::string("(no message)")));
  if (reply.status == 412 && body.contains("current_version")) {
    const json& current = body["current_version"];
    line += current.is_null() ? " (the key does not exist)"
                              : fmt::format(" (current version {})", current.dump());
  }
  if (const auto retry = reply.header("Retry-After"); retry && reply.status == 503) {
    line += fmt::format(" (retry after {} s)", *retry);
  }
  context.err << line << "\n";
  return exit_code_for_status(reply.status);
}

int report_error(Context& context, const Status& status) {
  if (context.json) {
    context.err << json{{"error", std::string(code_name(status.code()))},
                        {"message", status.message()}}.dump()
                << "\n";
  } else {
    context.err << "squallctl: " << status.message() << "\n";
  }
  return exit_code_for(status);
}

int cmd_put(Context& context, WriteOptions options) {
  if (options.value == "-") {
    options.value.assign(std::istreambuf_iterator<char>(context.in),
                         std::istreambuf_iterator<char>());
  }
  auto reply = context.client.request("PUT", "/v1/kv/" + encode_path(options.key),
                                      options.value,
                                      condition_headers(options.condition, options.version));
  if (!reply.is_ok()) return report_error(context, reply.status());
  if (reply->status != 200 && reply->status != 201) return report_error(context, *reply);
  auto body = parse_json(*reply);
  if (!body.is_ok()) return report_error(context, body.status());
  print_write(context, *body, reply->status == 201 ? "created" : "updated");
  return kExitOk;
}

int cmd_delete(Context& context, const WriteOptions& options) {
  auto reply = context.client.request("DELETE", "/v1/kv/" + encode_path(options.key), {},
                                      condition_headers(options.condition, options.version));
  if (!reply.is_ok()) return report_error(context, reply.status());
  if (reply->status != 200) return report_error(context, *reply);
  auto body = parse_json(*reply);
  if (!body.is_ok()) return report_error(context, body.status());
  print_write(context, *body, "deleted");
  return kExitOk;
}

int cmd_get(Context& context, const GetOptions& options) {
  std::string target = "/v1/kv/" + encode_path(options.key);
  std::string query;
  if (options.version) query += fmt::format("&version={}", *options.version);
  if (options.at) {
    auto at = parse_time_us(*options.at);
    if (!at.is_ok()) {
      context.err << "squallctl: --at: " << at.status().message() << "\n";
      return kExitUsage;
    }
    query += fmt::format("&at={}", *at);
  }
  if (options.stable) query += "&consistency=stable";
  if (!query.empty()) target += "?" + query.substr(1);
  auto reply = context.client.request("GET", target);
  if (!reply.is_ok()) return report_error(context, reply.status());
  if (reply->status != 200) return report_error(context, *reply);
  if (!context.json) {
    context.out << reply->body;
    return kExitOk;
  }
  json out{{"key", options.key}};
  const auto version = parse_version(reply->header("Squall-Version").value_or(""));
  out["version"] = version.is_ok() ? *version : 0;
  const auto timestamp = parse_version(reply->header("Squall-Timestamp-Us").value_or(""));
  out["timestamp_us"] = timestamp.is_ok() ? *timestamp : 0;
  add_value(out, reply->body);
  context.out << out.dump() << "\n";
  return kExitOk;
}

namespace {

void print_items(Context& context, const json& items) {
  std::size_t width = 3;
  for (const auto& item : items) {
    width = std::max(width, std::min<std::size_t>(item.value("key", "").size(), 60));
  }
  context.out << fmt::format("{:<{}}  {:>20}  {:>10}  {}\n", "KEY", width, "VERSION", "SIZE",
                             "TIME");
  for (const auto& item : items) {
    context.out << fmt::format("{:<{}}  {:>20}  {:>10}  {}\n", item.value("key", ""), width,
                               item.value("version", std::uint64_t{0}),
                               item.value("size", std::uint64_t{0}),
                               format_time_us(item.value("timestamp_us", std::uint64_t{0})));
  }
}

}  // namespace

int cmd_list(Context& context, const ListOptions& options) {
  json items = json::array();
  json next = nullptr;
  std::string start_after;
  do {
    const std::uint64_t wanted = options.all
                                     ? options.page_size
                                     : std::min(options.page_size, options.limit - items.size());
    std::string target = fmt::format("/v1/kv?prefix={}&limit={}", encode_query(options.prefix),
                                     wanted);
    if (!start_after.empty()) target += "&start_after=" + encode_query(start_after);
    auto reply = context.client.request("GET", target);
    if (!reply.is_ok()) return report_error(context, reply.status());
    if (reply->status != 200) return report_error(context, *reply);
    auto body = parse_json(*reply);
    if (!body.is_ok()) return report_error(context, body.status());
    const std::size_t before = items.size();
    for (auto& item : (*body)["items"]) items.push_back(std::move(item));
    next = (*body)["next"];
    if (next.is_string()) start_after = next.get<std::string>();
    // An empty page cannot make progress; the contract never sends one with a `next`.
    if (items.size() == before) break;
  } while (next.is_string() && (options.all || items.size() < options.limit));
  if (context.json) {
    context.out << json{{"items", items}, {"next", next}}.dump() << "\n";
  } else {
    print_items(context, items);
    if (next.is_string()) {
      context.err << fmt::format("({} keys shown; more follow: use --all or a larger --limit)\n",
                                 items.size());
    }
  }
  return kExitOk;
}

int cmd_history(Context& context, const HistoryOptions& options) {
  json versions = json::array();
  json next = nullptr;
  do {
    const std::uint64_t wanted = std::min(options.page_size, options.limit - versions.size());
    std::string target =
        fmt::format("/v1/history/{}?limit={}", encode_path(options.key), wanted);
    if (next.is_number()) target += fmt::format("&before={}", next.get<std::uint64_t>());
    auto reply = context.client.request("GET", target);
    if (!reply.is_ok()) return report_error(context, reply.status());
    if (reply->status != 200) return report_error(context, *reply);
    auto body = parse_json(*reply);
    if (!body.is_ok()) return report_error(context, body.status());
    const std::size_t before = versions.size();
    for (auto& version : (*body)["versions"]) versions.push_back(std::move(version));
    next = (*body)["next"];
    if (versions.size() == before) break;  // no progress (see cmd_list)
  } while (next.is_number() && versions.size() < options.limit);
  if (context.json) {
    context.out << json{{"key", options.key}, {"versions", versions}, {"next", next}}.dump()
                << "\n";
    return kExitOk;
  }
  context.out << fmt::format("{:>20}  {:<6}  {:>10}  {}\n", "VERSION", "OP", "SIZE", "TIME");
  for (const auto& version : versions) {
    context.out << fmt::format("{:>20}  {:<6}  {:>10}  {}\n",
                               version.value("version", std::uint64_t{0}),
                               version.value("op", ""), version.value("size", std::uint64_t{0}),
                               format_time_us(version.value("timestamp_us", std::uint64_t{0})));
  }
  if (next.is_number()) context.err << "(older versions follow: use a larger --limit)\n";
  return kExitOk;
}

}  // namespace squall::ctl
