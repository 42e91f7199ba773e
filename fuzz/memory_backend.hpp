// MemoryBackend: a KvBackend for the REST fuzz target that answers every call at once, in the
// calling thread, from a map in memory, so a fuzzed request is parsed, routed and answered
// within one run, deterministically. It keeps every version of every key (no retention) and
// checks what the REST layer hands it against the KvBackend contract (validated keys, limits
// in range). FuzzWatch refuses every subscription after the watch route parsed the request.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "fuzz/fuzz_util.hpp"
#include "server/kv_backend.hpp"
#include "server/rest_parse.hpp"
#include "server/watch_backend.hpp"

namespace squall::fuzz {

class MemoryBackend final : public server::KvBackend {
 public:
  explicit MemoryBackend(std::size_t max_key_bytes) : max_key_bytes_(max_key_bytes) {}

  void put(server::PutRequest request, server::Callback<server::WriteResult> done) override {
    check_key(request.key);
    done(write(request.key, &request.value, request.precondition));
  }
  void remove(server::DeleteRequest request,
              server::Callback<server::WriteResult> done) override {
    check_key(request.key);
    FUZZ_CHECK(request.precondition.kind != server::Precondition::Kind::absent,
               "a delete with If-None-Match reached the backend");
    done(write(request.key, nullptr, request.precondition));
  }
  void get(server::GetRequest request, server::Callback<server::GetResult> done) override {
    check_key(request.key);
    const Version* version = latest(request.key);
    if (version == nullptr || deleted(request.key)) return done(not_found("no such key"));
    const auto& entry = keys_[request.key].back();
    done(server::GetResult{entry.version, entry.version * 10, entry.value});
  }
  void list(server::ListRequest request, server::Callback<server::ListResult> done) override {
    FUZZ_CHECK(request.limit >= 1, "list limit 0 reached the backend");
    server::ListResult result;
    for (auto it = keys_.upper_bound(request.start_after); it != keys_.end(); ++it) {
      if (!it->first.starts_with(request.prefix) || deleted(it->first)) continue;
      if (result.items.size() == request.limit) {
        result.next = result.items.back().key;
        break;
      }
      const auto& entry = it->second.back();
      result.items.push_back({it->first, entry.version, entry.version * 10,
                              entry.value.size(), std::nullopt});
      if (request.values) result.items.back().value = entry.value;
    }
    done(std::move(result));
  }
  void history(server::HistoryRequest request,
               server::Callback<server::HistoryResult> done) override {
    check_key(request.key);
    FUZZ_CHECK(request.limit >= 1, "history limit 0 reached the backend");
    auto found = keys_.find(request.key);
    if (found == keys_.end()) return done(not_found("no such key"));
    server::HistoryResult result;
    for (auto it = found->second.rbegin(); it != found->second.rend(); ++it) {
      if (request.before && it->version >= *request.before) continue;
      if (result.versions.size() == request.limit) {
        result.next = result.versions.back().version;
        break;
      }
      result.versions.push_back({it->version, it->version * 10, it->deleted, it->value.size()});
    }
    done(std::move(result));
  }
  void cluster_info(server::Callback<server::ClusterInfo> done) override {
    server::ClusterInfo info;
    info.cluster = "fuzz";
    info.members.push_back({NodeId{0}, "127.0.0.1:7000", "127.0.0.1:8080", "active"});
    info.shards.push_back({ShardId{0}, {NodeId{0}}, next_version_, next_version_});
    done(std::move(info));
  }
  bool ready() const override { return true; }

 private:
  struct Entry {
    Version version = 0;
    bool deleted = false;
    std::string value;
  };

  void check_key(const std::string& key) const {
    FUZZ_CHECK(server::validate_key(key, max_key_bytes_).is_ok(),
               "an invalid key reached the backend");
  }
  const Version* latest(const std::string& key) const {
    auto found = keys_.find(key);
    return found == keys_.end() ? nullptr : &found->second.back().version;
  }
  bool deleted(const std::string& key) const {
    auto found = keys_.find(key);
    return found == keys_.end() || found->second.back().deleted;
  }

  Result<server::WriteResult> write(const std::string& key, const std::string* value,
                                    const server::Precondition& precondition) {
    using Kind = server::Precondition::Kind;
    const bool exists = !deleted(key);
    server::WriteResult result;
    if (exists) result.current_version = *latest(key);
    const bool holds = precondition.kind == Kind::none ||
                       (precondition.kind == Kind::exists && exists) ||
                       (precondition.kind == Kind::absent && !exists) ||
                       (precondition.kind == Kind::version_is && exists &&
                        *latest(key) == precondition.version);
    if (!holds) {
      result.outcome = server::WriteOutcome::precondition_failed;
      return result;
    }
    if (value == nullptr && !exists) {
      result.outcome = server::WriteOutcome::not_found;
      return result;
    }
    result.version = ++next_version_;
    result.timestamp_us = result.version * 10;
    result.created = !exists;
    keys_[key].push_back({result.version, value == nullptr, value ? *value : std::string()});
    return result;
  }

  std::size_t max_key_bytes_;
  std::map<std::string, std::vector<Entry>> keys_;
  Version next_version_ = 0;
};

class FuzzWatch final : public server::WatchBackend {
 public:
  Result<std::unique_ptr<kvstore::Watcher>> subscribe(const kvstore::Topic&,
                                                      const kvstore::WatchStart&,
                                                      kvstore::WatchOptions) override {
    return unavailable("fuzz: no watch streams");
  }
};

}  // namespace squall::fuzz
