// The operations routes of RestApi: GET /v1/cluster, /healthz, /readyz, /metrics.
#include "server/rest_api.hpp"
#include "server/rest_response.hpp"

namespace squall::server {
namespace http = boost::beast::http;

namespace {

nlohmann::json cluster_json(const ClusterInfo& info) {
  nlohmann::json members = nlohmann::json::array();
  for (const ClusterMember& member : info.members) {
    members.push_back({{"id", member.id.value},
                       {"address", member.address},
                       {"rest", member.rest},
                       {"state", member.state}});
  }
  nlohmann::json shards = nlohmann::json::array();
  for (const ClusterShard& shard : info.shards) {
    nlohmann::json ids = nlohmann::json::array();
    for (NodeId id : shard.members) ids.push_back(id.value);
    shards.push_back({{"id", shard.id.value},
                      {"members", std::move(ids)},
                      {"delivered_version", shard.delivered_version},
                      {"persisted_version", shard.persisted_version}});
  }
  return {{"cluster", info.cluster},
          {"self", info.self.value},
          {"view",
           {{"id", info.view_id.value}, {"leader", info.leader.value}, {"members", members}}},
          {"shards", std::move(shards)}};
}

}  // namespace

void RestApi::cluster(const HttpResponder& respond) {
  backend_.cluster_info([respond, retry = backend_.retry_after_s()](Result<ClusterInfo> info) {
    if (!info.is_ok()) return respond(status_response(info.status(), retry));
    respond(json_response(HttpStatus::ok, cluster_json(info.value())));
  });
}

void RestApi::healthz(const HttpResponder& respond) {
  respond(json_response(HttpStatus::ok, {{"status", "ok"}}));
}

void RestApi::readyz(const HttpResponder& respond) {
  if (!backend_.ready()) {
    return respond(unavailable_response("not in a view with quorum", backend_.retry_after_s()));
  }
  respond(json_response(HttpStatus::ok, {{"status", "ready"}}));
}

void RestApi::metrics(const HttpResponder& respond) {
  HttpResponse response{HttpStatus::ok, 11};
  response.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  response.body() = registry_.render();
  respond(std::move(response));
}

}  // namespace squall::server
