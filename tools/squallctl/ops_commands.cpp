// cluster and status.
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/squallctl/commands.hpp"
#include "tools/squallctl/format.hpp"

namespace squall::ctl {
using nlohmann::json;

namespace {

std::string join_ids(const json& ids) {
  std::string out;
  for (const auto& id : ids) {
    if (!out.empty()) out += ",";
    out += id.dump();
  }
  return out;
}

void print_cluster(std::ostream& out, const json& body, const std::string& endpoint) {
  const json& view = body["view"];
  out << fmt::format("cluster {}: view {}, leader {}, answered by node {} ({})\n",
                     body.value("cluster", "?"), view.value("id", std::uint64_t{0}),
                     view.value("leader", std::uint64_t{0}), body.value("self", std::uint64_t{0}),
                     endpoint);
  out << fmt::format("\n{:>6}  {:<10}  {:<24}  {}\n", "MEMBER", "STATE", "ADDRESS", "REST");
  for (const auto& member : view["members"]) {
    out << fmt::format("{:>6}  {:<10}  {:<24}  {}\n", member.value("id", std::uint64_t{0}),
                       member.value("state", ""), member.value("address", ""),
                       member.value("rest", ""));
  }
  out << fmt::format("\n{:>6}  {:<16}  {:>20}  {:>20}\n", "SHARD", "MEMBERS", "DELIVERED",
                     "PERSISTED");
  for (const auto& shard : body["shards"]) {
    out << fmt::format("{:>6}  {:<16}  {:>20}  {:>20}\n", shard.value("id", std::uint64_t{0}),
                       join_ids(shard["members"]),
                       shard.value("delivered_version", std::uint64_t{0}),
                       shard.value("persisted_version", std::uint64_t{0}));
  }
}

// One endpoint's health: {"endpoint", "reachable", "healthy", "ready", and from its
// /v1/cluster "self", "view", "members", or "error"}.
json probe(const config::HostPort& endpoint, std::uint32_t timeout_ms) {
  HttpClient client({endpoint}, timeout_ms);
  json out{{"endpoint", endpoint.to_string()}, {"reachable", false}, {"healthy", false},
           {"ready", false}};
  auto health = client.request("GET", "/healthz");
  if (!health.is_ok()) {
    out["error"] = health.status().message();
    return out;
  }
  out["reachable"] = true;
  out["healthy"] = health->status == 200;
  auto ready = client.request("GET", "/readyz");
  out["ready"] = ready.is_ok() && ready->status == 200;
  auto cluster = client.request("GET", "/v1/cluster");
  if (cluster.is_ok() && cluster->status == 200) {
    const json body = json::parse(cluster->body, nullptr, false);
    if (body.is_object() && body.contains("view")) {
      out["self"] = body.value("self", std::uint64_t{0});
      out["view"] = body["view"].value("id", std::uint64_t{0});
      out["members"] = body["view"]["members"].size();
    }
  } else if (cluster.is_ok()) {
    out["error"] = fmt::format("/v1/cluster answered {}", cluster->status);
  }
  return out;
}

std::string probe_line(const json& node) {
  std::string line = fmt::format("{:<22}", node["endpoint"].get<std::string>());
  if (!node["reachable"].get<bool>()) {
    return line + "  unreachable: " + node.value("error", "");
  }
  line += node["healthy"].get<bool>() ? "  healthy" : "  unhealthy";
  line += node["ready"].get<bool>() ? "  ready    " : "  not ready";
  if (node.contains("self")) {
    line += fmt::format("  node {}  view {}  members {}", node["self"].get<std::uint64_t>(),
                        node["view"].get<std::uint64_t>(),
                        node["members"].get<std::uint64_t>());
  }
  if (node.contains("error")) line += "  (" + node["error"].get<std::string>() + ")";
  return line;
}

}  // namespace

int cmd_cluster(Context& context) {
  auto reply = context.client.request("GET", "/v1/cluster");
  if (!reply.is_ok()) return report_error(context, reply.status());
  if (reply->status != 200) return report_error(context, *reply);
  const json body = json::parse(reply->body, nullptr, false);
  if (!body.is_object() || !body.contains("view") || !body["view"].is_object()) {
    return report_error(context, Status(Code::corruption, reply->endpoint +
                                                              ": /v1/cluster is not as expected"));
  }
  if (context.json) {
    context.out << body.dump() << "\n";
  } else {
    print_cluster(context.out, body, reply->endpoint);
  }
  return kExitOk;
}

int cmd_status(Context& context, std::uint32_t timeout_ms) {
  json nodes = json::array();
  bool all_ready = true;
  for (const auto& endpoint : context.client.endpoints()) {
    json node = probe(endpoint, timeout_ms);
    all_ready = all_ready && node["ready"].get<bool>();
    nodes.push_back(std::move(node));
  }
  if (context.json) {
    context.out << json{{"endpoints", nodes}, {"all_ready", all_ready}}.dump() << "\n";
  } else {
    for (const auto& node : nodes) context.out << probe_line(node) << "\n";
  }
  return all_ready ? kExitOk : kExitUnavailable;
}

}  // namespace squall::ctl
